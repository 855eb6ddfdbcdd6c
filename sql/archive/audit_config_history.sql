-- The audit trail of bookmark changes made by operators (`auditstream bookmark set`): who moved
-- which server's bookmark, from where to where, when and why. Never updated, never deleted.
CREATE TABLE IF NOT EXISTS audit_config_history (
  seq          BIGINT UNSIGNED  NOT NULL AUTO_INCREMENT,
  server_uuid  VARCHAR(64)      CHARACTER SET ascii NOT NULL,
  changed_at   DATETIME(6)      NOT NULL,
  db_user      VARCHAR(288)     NOT NULL,
  os_user      VARCHAR(255)     NULL,
  old_ts       DATETIME         NULL,
  old_id       BIGINT UNSIGNED  NULL,
  new_ts       DATETIME         NOT NULL,
  new_id       BIGINT UNSIGNED  NOT NULL,
  reason       TEXT             NOT NULL,
  PRIMARY KEY (seq),
  KEY ix_server (server_uuid, changed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
