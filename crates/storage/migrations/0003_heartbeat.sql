-- The heartbeat replay windows, persisted so a datagram captured before a restart is refused
-- after it.

CREATE TABLE heartbeat_windows (
    hb_key_id   TEXT   PRIMARY KEY,
    device_id   TEXT   NOT NULL,
    replay_window {BLOB} NOT NULL,         -- printfleet-protocol ReplayWindow bytes
    updated_at  BIGINT NOT NULL
);
