-- tp-ws embedded store: the TeamPass-shaped tables (TeamPass 3.2's columns) for SQLite.
-- `{{prefix}}` is replaced by the configured table prefix (store.tablePrefix) before running.
-- Index names are global in SQLite, so each one carries the prefix and its table name.
-- Times are TEXT 'YYYY-MM-DD HH:MM:SS' in UTC (CURRENT_TIMESTAMP / datetime('now')),
-- matching TeamPass's second-resolution TIMESTAMP columns.

CREATE TABLE IF NOT EXISTS "{{prefix}}websocket_events" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  event_type TEXT NOT NULL,
  target_type TEXT NOT NULL CHECK (target_type IN ('user', 'folder', 'kb', 'broadcast')),
  target_id INTEGER NULL,
  -- No json_valid() check: the poller must be able to meet (and reject) a broken row, as on MySQL.
  payload TEXT NOT NULL,
  processed INTEGER NOT NULL DEFAULT 0,
  processed_at TEXT NULL,
  event_uuid TEXT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS "{{prefix}}websocket_events_idx_unprocessed" ON "{{prefix}}websocket_events" (processed, created_at);
CREATE INDEX IF NOT EXISTS "{{prefix}}websocket_events_idx_cleanup" ON "{{prefix}}websocket_events" (processed, processed_at);

CREATE TABLE IF NOT EXISTS "{{prefix}}websocket_tokens" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  token TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at TEXT NOT NULL,
  used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS "{{prefix}}websocket_tokens_idx_user" ON "{{prefix}}websocket_tokens" (user_id);
CREATE INDEX IF NOT EXISTS "{{prefix}}websocket_tokens_idx_expires" ON "{{prefix}}websocket_tokens" (expires_at);

CREATE TABLE IF NOT EXISTS "{{prefix}}users" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  login TEXT NOT NULL UNIQUE,
  name TEXT NULL,
  lastname TEXT NULL,
  admin INTEGER NOT NULL DEFAULT 0,
  disabled INTEGER NOT NULL DEFAULT 0,
  key_tempo TEXT NULL,
  deleted_at TEXT NULL
);

CREATE TABLE IF NOT EXISTS "{{prefix}}users_groups" (
  increment_id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  group_id INTEGER NOT NULL,
  UNIQUE (user_id, group_id)
);

CREATE TABLE IF NOT EXISTS "{{prefix}}users_roles" (
  increment_id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL,
  role_id INTEGER NOT NULL,
  source TEXT NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'ad', 'ldap', 'oauth2')),
  UNIQUE (user_id, role_id, source)
);

CREATE TABLE IF NOT EXISTS "{{prefix}}roles_values" (
  increment_id INTEGER PRIMARY KEY AUTOINCREMENT,
  role_id INTEGER NOT NULL,
  folder_id INTEGER NOT NULL,
  type TEXT NOT NULL DEFAULT 'R'
);
CREATE INDEX IF NOT EXISTS "{{prefix}}roles_values_role_id_idx" ON "{{prefix}}roles_values" (role_id);

CREATE TABLE IF NOT EXISTS "{{prefix}}misc" (
  increment_id INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  intitule TEXT NOT NULL,
  valeur TEXT NOT NULL,
  created_at TEXT NULL,
  updated_at TEXT NULL,
  is_encrypted INTEGER NOT NULL DEFAULT 0,
  UNIQUE (type, intitule)
);

CREATE TABLE IF NOT EXISTS "{{prefix}}items" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- TeamPass keeps the folder id as varchar(10).
  id_tree TEXT NULL,
  label TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS "{{prefix}}items_edition" (
  increment_id INTEGER PRIMARY KEY AUTOINCREMENT,
  item_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  -- Unix seconds, written by PHP time().
  timestamp INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS "{{prefix}}items_edition_item_id_idx" ON "{{prefix}}items_edition" (item_id);

CREATE TABLE IF NOT EXISTS "{{prefix}}kb" (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  label TEXT NOT NULL,
  deleted_at TEXT NULL
);

CREATE TABLE IF NOT EXISTS "{{prefix}}kb_edition" (
  increment_id INTEGER PRIMARY KEY AUTOINCREMENT,
  kb_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  timestamp INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS "{{prefix}}kb_edition_kb_id_idx" ON "{{prefix}}kb_edition" (kb_id);

-- tp-ws only: the poller lease (one poller per file; renewed while held, see SqliteStore).
CREATE TABLE IF NOT EXISTS "{{prefix}}tpws_lease" (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  expires_at TEXT NOT NULL
);

-- tp-ws only: which migration files were applied.
CREATE TABLE IF NOT EXISTS "{{prefix}}tpws_migrations" (
  name TEXT PRIMARY KEY,
  applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
