-- The table the consumers write into. Rotation renames it to audit_data_<UTC ts> and puts a fresh
-- copy of the template in its place (one atomic RENAME TABLE), so it is always created LIKE the
-- template: a migration changes the template first (consumer/setup.py, add columns only).
CREATE TABLE IF NOT EXISTS audit_data LIKE audit_data_template;
