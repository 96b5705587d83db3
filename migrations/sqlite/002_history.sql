-- tp-ws delivery history: what a client's resume replays after a reconnect or a daemon restart
-- (the delivery history methods of src/store/store.ts).
-- `{{prefix}}` is replaced by the configured table prefix (store.tablePrefix) before running.
--
-- The events table's nullable `tpws_pos` column (a delivered event's position) and its
-- unique index are added by SqliteDb.migrate() after the files, once `PRAGMA table_info`
-- shows the column missing (SQLite has no `ADD COLUMN IF NOT EXISTS`).

-- One row per daemon start. A position is epoch_no × 2^32 + seq, so the numbers must only
-- grow: AUTOINCREMENT never reuses one.
CREATE TABLE IF NOT EXISTS "{{prefix}}tpws_epochs" (
  epoch_no INTEGER PRIMARY KEY AUTOINCREMENT,
  epoch TEXT NOT NULL UNIQUE,
  started_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Named values tp-ws keeps: `history_floor`, the highest position retention deleted.
CREATE TABLE IF NOT EXISTS "{{prefix}}tpws_state" (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
