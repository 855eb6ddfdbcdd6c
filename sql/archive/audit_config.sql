-- One bookmark per audited server: the position {ts, id} of the last event the producer knows
-- the broker acknowledged. Written only after every event of a batch was acknowledged, so a
-- crash re-sends at most one batch. ts is DATETIME in UTC (never TIMESTAMP: no session time
-- zone, no 2038 limit); id is BIGINT UNSIGNED (Percona's counter is global).
-- The predecessor's table had the same name and key; CREATE ... IF NOT EXISTS keeps it.
CREATE TABLE IF NOT EXISTS audit_config (
  server_uuid  VARCHAR(64)      CHARACTER SET ascii NOT NULL,
  ts           DATETIME         NOT NULL,
  id           BIGINT UNSIGNED  NOT NULL,
  updated_at   DATETIME(6)      NOT NULL,
  PRIMARY KEY (server_uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
