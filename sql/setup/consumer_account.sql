-- The consumers' account on the archive server (least privileges): rows and offsets in one
-- transaction, rotation (CREATE ... LIKE, RENAME needs ALTER and DROP on the old name, CREATE and
-- INSERT on the new), retention (DROP of verified rotated tables), and setup's migrations
-- (ALTER). No FILE privilege: LOAD DATA LOCAL reads the client's stream, not the server's disk.
-- `auditstream setup` substitutes the validated account name and passes the password as a
-- parameter; run it by hand with your own name and password.
CREATE USER IF NOT EXISTS 'auditstream'@'%' IDENTIFIED BY 'change-me';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX ON audit_archive.* TO 'auditstream'@'%';
