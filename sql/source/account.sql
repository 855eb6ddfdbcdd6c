-- The archiver account on the audited server (run as an administrator; pick your own password
-- and host pattern). It reads the audit log and nothing else.
-- MySQL 8 syntax; the producer reads its password from AUDITSTREAM_SOURCE_PASSWORD or a file.
CREATE USER IF NOT EXISTS 'audituser'@'%' IDENTIFIED BY 'change-me';
