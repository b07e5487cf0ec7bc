-- Devices: enrolment tokens, printers and their keys, group membership, the server's own key.

CREATE TABLE enrolment_tokens (
    tenant_id   TEXT   NOT NULL REFERENCES tenants(id),
    id          TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    token_hash  TEXT   NOT NULL UNIQUE,
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    max_uses    BIGINT,                   -- NULL: unlimited until expiry
    uses        BIGINT NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE devices (
    tenant_id      TEXT   NOT NULL REFERENCES tenants(id),
    id             TEXT   NOT NULL,
    serial         TEXT   NOT NULL,
    model          TEXT   NOT NULL,
    firmware       TEXT   NOT NULL,
    connection     TEXT   NOT NULL,       -- 'direct' now; 'proxy:<id>' later
    kem_public     {BLOB} NOT NULL,       -- the printer's X25519 HPKE public key
    key_version    BIGINT NOT NULL,       -- of the printer's own keys; bumps on re-enrolment
    hb_key_id      TEXT   NOT NULL UNIQUE,-- finds the printer from a heartbeat datagram
    secrets        {BLOB} NOT NULL,       -- encrypted under the tenant key: enrolment secret, verifier key
    secrets_key_version BIGINT NOT NULL,
    enrolled_with  TEXT   NOT NULL,       -- enrolment token id
    enrolled_at    BIGINT NOT NULL,
    removed_at     BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX devices_live_serial ON devices (tenant_id, serial) WHERE removed_at IS NULL;

CREATE TABLE group_devices (
    tenant_id   TEXT   NOT NULL,
    group_id    TEXT   NOT NULL,
    device_id   TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, group_id, device_id)
);
CREATE INDEX group_devices_device ON group_devices (tenant_id, device_id);

CREATE TABLE server_keys (
    id          TEXT   PRIMARY KEY,       -- 'device-kem'
    private_key {BLOB} NOT NULL,          -- encrypted under the deployment data key
    public_key  {BLOB} NOT NULL,
    created_at  BIGINT NOT NULL
);
