/**
 * TeamPass 3.1.7's `users` and `websocket_events` tables (MySQL), as its
 * upgrade script creates them: no 'kb' target, no `event_uuid`, no
 * `tpws_pos` — the database `tp-ws migrate` meets on an existing install.
 * `prefix` is the table prefix.
 */
export function teampass317Tables(prefix: string): string[] {
  return [
    `CREATE TABLE ${prefix}users (
      id int(12) NOT NULL AUTO_INCREMENT, login varchar(250) NOT NULL, pw varchar(250) NOT NULL,
      admin tinyint(1) NOT NULL DEFAULT '0', disabled tinyint(1) NOT NULL DEFAULT '0',
      name varchar(100) NULL, lastname varchar(100) NULL, PRIMARY KEY (id), UNIQUE KEY login (login)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
    `CREATE TABLE ${prefix}websocket_events (
      id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
      created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
      event_type VARCHAR(50) NOT NULL,
      target_type ENUM('user', 'folder', 'broadcast') NOT NULL,
      target_id INT UNSIGNED NULL,
      payload JSON NOT NULL,
      processed TINYINT(1) UNSIGNED DEFAULT 0,
      processed_at TIMESTAMP NULL,
      INDEX idx_unprocessed (processed, created_at),
      INDEX idx_cleanup (processed, processed_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  ];
}
