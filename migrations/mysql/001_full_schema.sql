-- tp-ws full schema for MySQL 8 / MariaDB 10.6+: an empty database without TeamPass.
-- Only the tables and columns tp-ws reads or writes, with TeamPass 3.2's own types
-- (TeamPass 3.2's own definitions), so the same queries run against this and a real TeamPass DB.
-- `{{prefix}}` is replaced by the table prefix. Statements end with `;` at end of line.
-- Applied only when `<prefix>users` does not exist (the `_full_` in the file name is what
-- tells MysqlStore.migrate() so); 002 runs after it in both modes.

CREATE TABLE IF NOT EXISTS `{{prefix}}websocket_events` (
  `id` INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  `created_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  `event_type` VARCHAR(50) NOT NULL COMMENT 'Type of event (item_created, item_updated, etc.)',
  `target_type` ENUM('user', 'folder', 'kb', 'broadcast') NOT NULL COMMENT 'Target type for routing',
  `target_id` INT UNSIGNED NULL COMMENT 'Target ID (user_id or folder_id)',
  `payload` JSON NOT NULL COMMENT 'Event payload data',
  `processed` TINYINT(1) UNSIGNED DEFAULT 0 COMMENT 'Has this event been broadcast?',
  `processed_at` TIMESTAMP NULL DEFAULT NULL COMMENT 'When was this event processed',
  `event_uuid` VARCHAR(64) NULL DEFAULT NULL COMMENT 'tp-ws: event id, the dedup key',
  INDEX `idx_unprocessed` (`processed`, `created_at`),
  INDEX `idx_cleanup` (`processed`, `processed_at`),
  UNIQUE INDEX `idx_event_uuid` (`event_uuid`)
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

CREATE TABLE IF NOT EXISTS `{{prefix}}users` (
  `id` INT(12) NOT NULL AUTO_INCREMENT,
  `login` VARCHAR(250) NOT NULL,
  `key_tempo` VARCHAR(100) NULL DEFAULT NULL,
  `admin` TINYINT(1) NOT NULL DEFAULT '0',
  `disabled` TINYINT(1) NOT NULL DEFAULT '0',
  `name` VARCHAR(100) NULL DEFAULT NULL,
  `lastname` VARCHAR(100) NULL DEFAULT NULL,
  `deleted_at` VARCHAR(30) NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `login` (`login`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}users_groups` (
  `increment_id` INT(12) NOT NULL AUTO_INCREMENT,
  `user_id` INT(12) NOT NULL,
  `group_id` INT(12) NOT NULL,
  `created_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`increment_id`),
  UNIQUE KEY `user_group_unique` (`user_id`, `group_id`),
  KEY `user_idx` (`user_id`),
  KEY `group_idx` (`group_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}users_roles` (
  `increment_id` INT(12) NOT NULL AUTO_INCREMENT,
  `user_id` INT(12) NOT NULL,
  `role_id` INT(12) NOT NULL,
  `source` ENUM('manual', 'ad', 'ldap', 'oauth2') NOT NULL DEFAULT 'manual',
  `created_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`increment_id`),
  UNIQUE KEY `user_role_source_unique` (`user_id`, `role_id`, `source`),
  KEY `user_idx` (`user_id`),
  KEY `role_idx` (`role_id`),
  KEY `source_idx` (`source`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}roles_values` (
  `increment_id` INT(12) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `role_id` INT(12) NOT NULL,
  `folder_id` INT(12) NOT NULL,
  `type` VARCHAR(5) NOT NULL DEFAULT 'R',
  KEY `role_id_idx` (`role_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}misc` (
  `increment_id` INT(12) NOT NULL AUTO_INCREMENT,
  `type` VARCHAR(50) NOT NULL,
  `intitule` VARCHAR(100) NOT NULL,
  `valeur` MEDIUMTEXT NOT NULL,
  `created_at` VARCHAR(255) NULL DEFAULT NULL,
  `updated_at` VARCHAR(255) NULL DEFAULT NULL,
  `is_encrypted` TINYINT(1) NOT NULL DEFAULT '0',
  PRIMARY KEY (`increment_id`),
  UNIQUE KEY `unique_type_intitule` (`type`, `intitule`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}items` (
  `id` INT(12) NOT NULL AUTO_INCREMENT,
  `label` VARCHAR(500) NOT NULL,
  `id_tree` VARCHAR(10) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- TeamPass's installer declares items_edition.timestamp as varchar(50) holding unix seconds;
-- keeping that type here makes the tests exercise the same string-vs-number comparison.
CREATE TABLE IF NOT EXISTS `{{prefix}}items_edition` (
  `increment_id` INT(12) NOT NULL AUTO_INCREMENT,
  `item_id` INT(11) NOT NULL,
  `user_id` INT(12) NOT NULL,
  `timestamp` VARCHAR(50) NOT NULL,
  KEY `item_id_idx` (`item_id`),
  PRIMARY KEY (`increment_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}kb` (
  `id` INT(12) NOT NULL AUTO_INCREMENT,
  `label` VARCHAR(200) NOT NULL,
  `deleted_at` DATETIME NULL DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}kb_edition` (
  `increment_id` INT(12) NOT NULL AUTO_INCREMENT,
  `kb_id` INT(12) NOT NULL,
  `user_id` INT(12) NOT NULL,
  `timestamp` INT(11) NOT NULL,
  KEY `kb_id_idx` (`kb_id`),
  PRIMARY KEY (`increment_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS `{{prefix}}tpws_migrations` (
  `name` VARCHAR(191) NOT NULL PRIMARY KEY,
  `applied_at` TIMESTAMP DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
