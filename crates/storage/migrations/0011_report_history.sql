-- The report history becomes one row per stored report, one nullable JSON column per data
-- class, with one index (the printer's reports in order, which also refuses a second copy of a
-- report). It was one row per report and class with two indexes: eight random index entries
-- per report, which made the history ~4x the cost of the rest of a check-in's write
-- (docs/benchmarks.md, "Check-ins"). Rows are appended in arrival order (SQLite's rowid,
-- PostgreSQL's heap); utc_day is kept for retention.
CREATE TABLE report_history (
    tenant_id   TEXT   NOT NULL,
    device_id   TEXT   NOT NULL,
    key_version BIGINT NOT NULL,          -- the printer's key version that sent it (seq restarts with it)
    seq         BIGINT NOT NULL,
    utc_day     BIGINT NOT NULL,          -- days since 1970-01-01 of received_at
    reported_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    device_info TEXT,                     -- each: the report's document of that class, JSON; NULL: not in it
    meters      TEXT,
    supplies    TEXT,
    events      TEXT,
    settings    TEXT
);
CREATE UNIQUE INDEX report_history_device ON report_history (tenant_id, device_id, key_version, seq);

INSERT INTO report_history (tenant_id, device_id, key_version, seq, utc_day, reported_at,
        received_at, device_info, meters, supplies, events, settings)
    SELECT tenant_id, device_id, key_version, seq, MIN(utc_day), MIN(reported_at), MIN(received_at),
        MAX(CASE WHEN data_class = 'device_info' THEN body END),
        MAX(CASE WHEN data_class = 'meters' THEN body END),
        MAX(CASE WHEN data_class = 'supplies' THEN body END),
        MAX(CASE WHEN data_class = 'events' THEN body END),
        MAX(CASE WHEN data_class = 'settings' THEN body END)
    FROM telemetry_history
    GROUP BY tenant_id, device_id, key_version, seq;
DROP TABLE telemetry_history;
