-- The archive database (name fixed by convention; a DSN may select another one).
CREATE DATABASE IF NOT EXISTS audit_archive CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
