-- Least privileges for the archiver: AUDIT_ADMIN to call audit_log_read() and
-- audit_log_read_bookmark(), SELECT on the filter tables for the self-audit guard.
-- The bookmark table (audit_archive.audit_config) needs DML when it lives on this server
-- (the default); drop that grant when --bookmark-dsn points elsewhere.
-- Percona only: SYSTEM_VARIABLES_ADMIN lets the producer set the global read buffer to 4 MB
-- (without it the server's value is kept).
GRANT AUDIT_ADMIN ON *.* TO 'audituser'@'%';
GRANT SELECT ON mysql.audit_log_filter TO 'audituser'@'%';
GRANT SELECT ON mysql.audit_log_user TO 'audituser'@'%';
GRANT SELECT, INSERT, UPDATE ON audit_archive.audit_config TO 'audituser'@'%';
