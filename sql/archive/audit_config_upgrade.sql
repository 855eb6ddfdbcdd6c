-- Columns an older audit_config (the predecessor's, or this project's first version) lacks.
-- `python -m producer setup` runs each statement only when its column is missing (MySQL 8 has
-- no ADD COLUMN IF NOT EXISTS).
ALTER TABLE audit_config ADD COLUMN chain CHAR(64) CHARACTER SET ascii NULL;
ALTER TABLE audit_config ADD COLUMN chain_seq BIGINT UNSIGNED NULL;
ALTER TABLE audit_config ADD COLUMN updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6);
ALTER TABLE audit_config ADD COLUMN checkpoint_seq BIGINT UNSIGNED NULL;
ALTER TABLE audit_config ADD COLUMN pending_skip BIGINT UNSIGNED NULL;
