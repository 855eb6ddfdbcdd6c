-- Per audited server, the greatest (ts, id) archived so far, written in the same transaction as
-- the rows. It outlives rotation (audit_data is renamed, this table is not), so a producer
-- re-send whose first copy was rotated away is recognised: an event at or below the mark is
-- looked up in audit_data and the rotated tables before it is written (consumer/highwater.py).
CREATE TABLE IF NOT EXISTS audit_high_water (
  server_uuid      VARCHAR(64)      CHARACTER SET ascii NOT NULL,
  ts               DATETIME         NOT NULL,
  id               BIGINT UNSIGNED  NOT NULL,
  topic            VARCHAR(249)     CHARACTER SET ascii NOT NULL,
  kafka_partition  INT              NOT NULL,
  kafka_offset     BIGINT           NOT NULL,
  updated_at       DATETIME(6)      NOT NULL,
  PRIMARY KEY (server_uuid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
