-- One bookmark per audited server: the position {ts, id} of the last event the producer knows
-- the broker acknowledged. Written only after every event of a batch was acknowledged, so a
-- crash re-sends at most one batch. ts is DATETIME in UTC (never TIMESTAMP: no session time
-- zone, no 2038 limit); id is BIGINT UNSIGNED (Percona's counter is global).
-- chain/chain_seq: the server's hash chain at the bookmark (docs/tamper-evidence.md), written in
-- the same statement, so a restart continues the chain and a re-send repeats its hashes.
-- checkpoint_seq: the number of the last signed checkpoint stored (producer.seal); pending_skip:
-- the first audit_config_history row a producer has still to publish as a skip link.
-- The predecessor's table had the same name and key; CREATE ... IF NOT EXISTS keeps it and
-- archive/audit_config_upgrade adds the columns it lacks.
CREATE TABLE IF NOT EXISTS audit_config (
  server_uuid  VARCHAR(64)      CHARACTER SET ascii NOT NULL,
  ts           DATETIME         NOT NULL,
  id           BIGINT UNSIGNED  NOT NULL,
  chain        CHAR(64)         CHARACTER SET ascii NULL,
  chain_seq    BIGINT UNSIGNED  NULL,
  updated_at   DATETIME(6)      NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  checkpoint_seq BIGINT UNSIGNED NULL,
  pending_skip BIGINT UNSIGNED  NULL,
  PRIMARY KEY (server_uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
