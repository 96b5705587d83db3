-- tp-ws delivery history: what a client's resume replays after a reconnect or a daemon restart
-- (the delivery history methods of src/store/store.ts).
-- Applied in both modes (full schema and an existing TeamPass database), after 002.
-- `{{prefix}}` is replaced by the table prefix. Statements end with `;` at end of line.
--
-- The events table's nullable `tpws_pos` column (a delivered event's position) and its
-- unique index `idx_tpws_pos` are added by MysqlStore.migrate() after the files, with
-- information_schema checks, as `event_uuid` is: `ADD COLUMN IF NOT EXISTS` is MariaDB-only.

-- One row per daemon start. A position is epoch_no × 2^32 + seq, so the numbers must only
-- grow (never reused: rows are never deleted). The epoch id compares byte for byte, not
-- case-insensitively as the database's default collation would.
CREATE TABLE IF NOT EXISTS `{{prefix}}tpws_epochs` (
  `epoch_no` INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  `epoch` VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  `started_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  UNIQUE INDEX `idx_epoch` (`epoch`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Named values tp-ws keeps: `history_floor`, the highest position retention deleted.
CREATE TABLE IF NOT EXISTS `{{prefix}}tpws_state` (
  `name` VARCHAR(64) NOT NULL PRIMARY KEY,
  `value` BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
