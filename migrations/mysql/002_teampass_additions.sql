-- tp-ws additions to an existing TeamPass database (and the second step of a full install).
-- Creates only what is missing; never alters a column TeamPass owns.
-- `{{prefix}}` is replaced by the table prefix. Statements end with `;` at end of line.
--
-- The events and tokens tables exist since TeamPass 3.1.7; older databases get them here.
-- The nullable `event_uuid` column and its unique index `idx_event_uuid` are added by
-- MysqlStore.migrate() after this file, with information_schema checks, because
-- `ADD COLUMN IF NOT EXISTS` is MariaDB-only and MySQL 8 must work too.

CREATE TABLE IF NOT EXISTS `{{prefix}}websocket_events` (
  `id` INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  `created_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  `event_type` VARCHAR(50) NOT NULL COMMENT 'Type of event (item_created, item_updated, etc.)',
  `target_type` ENUM('user', 'folder', 'kb', 'broadcast') NOT NULL COMMENT 'Target type for routing',
  `target_id` INT UNSIGNED NULL COMMENT 'Target ID (user_id or folder_id)',
  `payload` JSON NOT NULL COMMENT 'Event payload data',
  `processed` TINYINT(1) UNSIGNED DEFAULT 0 COMMENT 'Has this event been broadcast?',
  `processed_at` TIMESTAMP NULL DEFAULT NULL COMMENT 'When was this event processed',
  INDEX `idx_unprocessed` (`processed`, `created_at`),
  INDEX `idx_cleanup` (`processed`, `processed_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='WebSocket events queue for real-time notifications';

CREATE TABLE IF NOT EXISTS `{{prefix}}websocket_tokens` (
  `id` INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  `user_id` INT UNSIGNED NOT NULL,
  `token` VARCHAR(64) NOT NULL,
  `created_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  `expires_at` TIMESTAMP NOT NULL,
  `used` TINYINT(1) UNSIGNED DEFAULT 0,
  UNIQUE INDEX `idx_token` (`token`),
  INDEX `idx_user` (`user_id`),
  INDEX `idx_expires` (`expires_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}tpws_migrations` (
  `name` VARCHAR(191) NOT NULL PRIMARY KEY,
  `applied_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
