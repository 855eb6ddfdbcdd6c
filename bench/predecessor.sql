-- The predecessor's tables (createAudit_Data.sql and audit_config), kept only so the baseline
-- benchmark measures the old design faithfully. Faults are intentional: ts TIMESTAMP, id INT,
-- query VARCHAR(40), PK (server_uuid, id, ts). The collation is the server default because
-- MariaDB has no utf8mb4_0900_ai_ci.
CREATE TABLE IF NOT EXISTS audit_config (
  server_uuid VARCHAR(45) NOT NULL PRIMARY KEY,
  ts          TIMESTAMP   NULL,
  id          INT         NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS audit_data_template (
  server_uuid         VARCHAR(45)  NOT NULL,
  id                  INT          NOT NULL,
  ts                  TIMESTAMP    NOT NULL,
  class               VARCHAR(20)  DEFAULT NULL,
  event               VARCHAR(80)  DEFAULT NULL,
  the_account         JSON         DEFAULT NULL,
  login_ip            VARCHAR(200) DEFAULT NULL,
  login_os            VARCHAR(200) DEFAULT NULL,
  login_user          VARCHAR(200) DEFAULT NULL,
  login_proxy         VARCHAR(200) DEFAULT NULL,
  connection_id       VARCHAR(80)  DEFAULT NULL,
  db                  VARCHAR(40)  DEFAULT NULL,
  status              INT          DEFAULT NULL,
  connection_type     VARCHAR(40)  DEFAULT NULL,
  connect_os          VARCHAR(40)  DEFAULT NULL,
  pid                 VARCHAR(40)  DEFAULT NULL,
  _client_name        VARCHAR(80)  DEFAULT NULL,
  _client_version     VARCHAR(80)  DEFAULT NULL,
  program_name        VARCHAR(80)  DEFAULT NULL,
  _platform           VARCHAR(80)  DEFAULT NULL,
  command             VARCHAR(40)  DEFAULT NULL,
  sql_command         VARCHAR(40)  DEFAULT NULL,
  command_status      VARCHAR(40)  DEFAULT NULL,
  query               VARCHAR(40)  DEFAULT NULL,
  query_status        INT          DEFAULT NULL,
  start_server_id     VARCHAR(400) DEFAULT NULL,
  server_os_version   VARCHAR(100) DEFAULT NULL,
  server_mysqlversion VARCHAR(100) DEFAULT NULL,
  args                JSON         DEFAULT NULL,
  account_host        VARCHAR(80)  DEFAULT NULL,
  mysql_version       VARCHAR(80)  DEFAULT NULL,
  the_os              VARCHAR(80)  DEFAULT NULL,
  the_os_ver          VARCHAR(80)  DEFAULT NULL,
  server_id           VARCHAR(80)  DEFAULT NULL,
  PRIMARY KEY (server_uuid, id, ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS audit_data LIKE audit_data_template;
