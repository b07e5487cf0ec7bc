-- Telemetry (latest state + time-partitioned history), the work outbox, and the printer key
-- lifecycle (lookup by key id, revocation, re-enrolment approval).

ALTER TABLE devices ADD COLUMN kem_key_id TEXT;              -- key_id(kem_public), hex; sealed bodies name it
ALTER TABLE devices ADD COLUMN revoked_at BIGINT;            -- key revoked by an admin: refused on every channel
ALTER TABLE devices ADD COLUMN reenrol_approved_until BIGINT;-- an admin allowed re-enrolment without proof until then
CREATE UNIQUE INDEX devices_live_kem_key ON devices (kem_key_id) WHERE removed_at IS NULL;

-- One row per printer: its merged latest state (printfleet_domain::telemetry::DeviceState, JSON).
CREATE TABLE device_state (
    tenant_id   TEXT   NOT NULL,
    device_id   TEXT   NOT NULL,
    seq         BIGINT NOT NULL,          -- the latest stored report's seq (0 after re-enrolment)
    received_at BIGINT NOT NULL,
    state       TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
);

-- Append-only history, one row per report and data class. utc_day (days since 1970-01-01)
-- leads the key after the tenant so retention drops whole days per tenant and class with one
-- range delete (the partitioning key; PostgreSQL declarative partitions can later use it).
CREATE TABLE telemetry_history (
    tenant_id   TEXT   NOT NULL,
    utc_day     BIGINT NOT NULL,
    device_id   TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    data_class  TEXT   NOT NULL,          -- device_info | meters | supplies | events | settings
    reported_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body        TEXT   NOT NULL,
    key_version BIGINT NOT NULL,          -- the printer's key version that sent it (seq restarts with it)
    PRIMARY KEY (tenant_id, utc_day, device_id, key_version, seq, data_class)
);
CREATE INDEX telemetry_history_device ON telemetry_history (tenant_id, device_id, data_class, received_at);

-- Work for printers. A row is pending until the printer acknowledges it (delivery is
-- at-least-once; the printer de-duplicates by id). Committed before the doorbell rings, so a
-- restart loses nothing that was queued.
CREATE TABLE outbox (
    tenant_id   TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    device_id   TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    data        TEXT   NOT NULL,          -- JSON, never secret (secrets will be sealed per printer)
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    status      TEXT   NOT NULL,          -- pending | done | failed | refused | cancelled
    attempts    BIGINT NOT NULL,          -- deliveries so far
    sent_at     BIGINT,
    finished_at BIGINT,
    reason      TEXT,                     -- the printer's reason for failed / refused
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX outbox_pending ON outbox (device_id, created_at) WHERE status = 'pending';
