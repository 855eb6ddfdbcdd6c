-- Control events from the producers (gaps, heartbeats, kinds added later), so the archive shows
-- its own holes. Never rotated. (topic, kafka_partition, kafka_offset) identifies the message:
-- a replay after a crash cannot record an event twice. at is the producer's clock, UTC.
-- chain/chain_seq: a gap's tamper-evidence link (docs/tamper-evidence.md), NULL if unchained.
-- checkpoint_seq .. signature: a signed checkpoint; actor: who asked for a skip (control_event v3).
CREATE TABLE IF NOT EXISTS audit_control (
  topic               VARCHAR(249)     CHARACTER SET ascii NOT NULL,
  kafka_partition     INT              NOT NULL,
  kafka_offset        BIGINT           NOT NULL,
  server_uuid         VARCHAR(64)      CHARACTER SET ascii NOT NULL,
  kind                VARCHAR(32)      NOT NULL,
  at                  DATETIME(3)      NOT NULL,
  bookmark_timestamp  VARCHAR(32)      NULL,
  bookmark_id         BIGINT UNSIGNED  NULL,
  reason              VARCHAR(64)      NULL,
  from_timestamp      VARCHAR(32)      NULL,
  from_id             BIGINT UNSIGNED  NULL,
  to_timestamp        VARCHAR(32)      NULL,
  to_id               BIGINT UNSIGNED  NULL,
  events              BIGINT           NULL,
  size                BIGINT           NULL,
  sha256              CHAR(64)         CHARACTER SET ascii NULL,
  lag_seconds         DOUBLE           NULL,
  detail              MEDIUMTEXT       NULL,
  chain               CHAR(64)         CHARACTER SET ascii NULL,
  chain_seq           BIGINT UNSIGNED  NULL,
  checkpoint_seq      BIGINT UNSIGNED  NULL,
  signed_seq          BIGINT UNSIGNED  NULL,
  signed_chain        CHAR(64)         CHARACTER SET ascii NULL,
  key_id              CHAR(16)         CHARACTER SET ascii NULL,
  signature           VARCHAR(128)     CHARACTER SET ascii NULL,
  actor               VARCHAR(600)     NULL,
  PRIMARY KEY (topic, kafka_partition, kafka_offset),
  KEY ix_server_kind (server_uuid, kind, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
