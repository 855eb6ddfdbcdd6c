-- The rotation ledger: one row per rotated table, from the RENAME to the verified upload (and the
-- DROP, if retention says so). Every step reads its state here, so any step can crash and resume.
-- state moves forward only: rotated -> dumped -> uploaded -> verified -> dropped; 'missing' means
-- the rotated table vanished (dropped by hand) before its dump existed. stuck = 1: a step failed in
-- a way retrying cannot fix (e.g. a stored object differs from the manifest); an operator decides.
-- Timestamps are UTC (DATETIME, never TIMESTAMP). bookmarks: {server_uuid: {"min": [ts, id],
-- "max": [ts, id], "rows": n}}; objects: [{"name", "size", "sha256"}] as in manifest.json.
CREATE TABLE IF NOT EXISTS audit_rotation (
  table_name       VARCHAR(64)      CHARACTER SET ascii NOT NULL,
  state            VARCHAR(16)      CHARACTER SET ascii NOT NULL,
  stuck            TINYINT          NOT NULL DEFAULT 0,
  rotated_at       DATETIME(6)      NOT NULL,
  method           VARCHAR(16)      CHARACTER SET ascii NULL,
  target           VARCHAR(1024)    NULL,
  row_count        BIGINT UNSIGNED  NULL,
  total_bytes      BIGINT UNSIGNED  NULL,
  manifest_sha256  CHAR(64)         CHARACTER SET ascii NULL,
  bookmarks        LONGTEXT         NULL,
  objects          LONGTEXT         NULL,
  dumped_at        DATETIME(6)      NULL,
  uploaded_at      DATETIME(6)      NULL,
  verified_at      DATETIME(6)      NULL,
  dropped_at       DATETIME(6)      NULL,
  attempts         INT UNSIGNED     NOT NULL DEFAULT 0,
  next_attempt_at  DATETIME(6)      NULL,
  last_error       TEXT             NULL,
  updated_at       DATETIME(6)      NOT NULL,
  PRIMARY KEY (table_name),
  KEY ix_state (state, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- The rotation schedule's memory: the UTC period (a multiple of --rotate-interval since the epoch)
-- that the live audit_data belongs to. A scheduled rotation is due once the wall clock enters a
-- later period; event times play no part (a backfill of old events does not trigger one). One row:
-- written when a rotator first looks at an archive, and moved on by every rotation.
CREATE TABLE IF NOT EXISTS audit_rotation_period (
  id               TINYINT UNSIGNED NOT NULL,
  period_start     DATETIME(6)      NOT NULL,
  updated_at       DATETIME(6)      NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
