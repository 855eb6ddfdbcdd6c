-- The consumer group's positions, written in the same transaction as the rows they cover: this,
-- not Kafka's committed offset, is where a member resumes (Kafka's copy exists for lag tools).
-- next_offset NULL: nothing archived yet from this partition (start at its beginning).
-- A member updates a row only when it still holds the value it last read or wrote
-- (compare-and-set), so a member that lost its partition cannot move the offset back.
CREATE TABLE IF NOT EXISTS audit_offsets (
  topic            VARCHAR(249)     CHARACTER SET ascii NOT NULL,
  kafka_partition  INT              NOT NULL,
  next_offset      BIGINT           NULL,
  member           VARCHAR(255)     NULL,
  updated_at       DATETIME(6)      NOT NULL,
  PRIMARY KEY (topic, kafka_partition)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
