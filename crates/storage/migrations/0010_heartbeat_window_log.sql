-- The doorbell's group commits: one row per commit holding every replay window of the commit,
-- packed (storage::window_log). Folded into heartbeat_windows by compactions and at start,
-- then deleted; so the table holds only the last seconds of commits.
CREATE TABLE heartbeat_window_log (
    id          BIGINT PRIMARY KEY,   -- assigned in order by the one writer
    windows     {BLOB} NOT NULL,      -- per window: key id (8), printer id (16), length (2), bytes
    written_at  BIGINT NOT NULL
);

-- Compactions upsert windows in key order. On SQLite the rows now live in the primary key's
-- B-tree (WITHOUT ROWID) instead of a rowid table in insertion order plus a key index, so a
-- compaction writes each page once for all the keys on it. PostgreSQL just gets a copy.
CREATE TABLE heartbeat_windows_by_key (
    hb_key_id   TEXT   PRIMARY KEY,
    device_id   TEXT   NOT NULL,
    replay_window {BLOB} NOT NULL,
    updated_at  BIGINT NOT NULL
){WITHOUT_ROWID};
INSERT INTO heartbeat_windows_by_key (hb_key_id, device_id, replay_window, updated_at)
    SELECT hb_key_id, device_id, replay_window, updated_at FROM heartbeat_windows;
DROP TABLE heartbeat_windows;
ALTER TABLE heartbeat_windows_by_key RENAME TO heartbeat_windows;
