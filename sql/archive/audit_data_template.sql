-- One row per audit event. audit_data and every rotated audit_data_<UTC ts> are created LIKE it.
-- ts is DATETIME in UTC (never TIMESTAMP: no session time zone, no 2038 limit); id is the
-- server's counter (per second on Oracle, global on Percona). raw is the event exactly as
-- received, as text: the JSON type would re-order keys and normalise numbers. kafka_partition
-- and kafka_offset say where the consumer read it; chain/chain_seq are the tamper-evidence link
-- (docs/tamper-evidence.md), NULL when the producer does not chain. Change this file by adding
-- columns only: `consumer setup` adds them to the template and audit_data (consumer/setup.py).
CREATE TABLE IF NOT EXISTS audit_data_template (
  server_uuid           VARCHAR(64)      CHARACTER SET ascii NOT NULL,
  ts                    DATETIME         NOT NULL,
  id                    BIGINT UNSIGNED  NOT NULL,
  class                 VARCHAR(64)      NOT NULL,
  event                 VARCHAR(64)      NOT NULL,
  connection_id         BIGINT UNSIGNED  NULL,
  account_user          VARCHAR(255)     NULL,
  account_host          VARCHAR(255)     NULL,
  login_user            VARCHAR(255)     NULL,
  login_os              VARCHAR(255)     NULL,
  login_ip              VARCHAR(255)     NULL,
  login_proxy           VARCHAR(255)     NULL,
  connection_type       VARCHAR(32)      NULL,
  connection_status     INT              NULL,
  connection_db         VARCHAR(255)     NULL,
  connection_attributes JSON             NULL,
  command               VARCHAR(64)      NULL,
  sql_command           VARCHAR(64)      NULL,
  query                 LONGTEXT         NULL,
  status                INT              NULL,
  table_db              VARCHAR(255)     NULL,
  table_name            VARCHAR(255)     NULL,
  server_id             BIGINT UNSIGNED  NULL,
  os_version            VARCHAR(255)     NULL,
  mysql_version         VARCHAR(255)     NULL,
  startup_args          JSON             NULL,
  query_time            DOUBLE           NULL,
  rows_sent             BIGINT UNSIGNED  NULL,
  rows_examined         BIGINT UNSIGNED  NULL,
  bytes_received        BIGINT UNSIGNED  NULL,
  bytes_sent            BIGINT UNSIGNED  NULL,
  message_component     VARCHAR(255)     NULL,
  message_producer      VARCHAR(255)     NULL,
  message               MEDIUMTEXT       NULL,
  message_map           JSON             NULL,
  unix_time             BIGINT           NULL,
  raw                   LONGTEXT         NOT NULL,
  kafka_partition       INT              NULL,
  kafka_offset          BIGINT           NULL,
  chain                 CHAR(64)         CHARACTER SET ascii NULL,
  chain_seq             BIGINT UNSIGNED  NULL,
  PRIMARY KEY (server_uuid, ts, id),
  KEY ix_ts (ts),
  KEY ix_account (account_user, account_host, ts),
  KEY ix_class_event (class, event, ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
