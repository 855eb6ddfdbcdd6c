-- Rule-based filtering logs nothing until a filter is assigned. Log everyone, except the
-- archiver: without log_nothing its own reads are audited and it chases its own tail forever
-- (the producer refuses to start then, unless --allow-self-audit). Assignments apply to new
-- sessions only: reconnect the producer after changing them.
SELECT audit_log_filter_set_filter('log_all', '{ "filter": { "log": true } }');
SELECT audit_log_filter_set_user('%', 'log_all');
SELECT audit_log_filter_set_filter('log_nothing', '{ "filter": { "log": false } }');
SELECT audit_log_filter_set_user('audituser@%', 'log_nothing');
