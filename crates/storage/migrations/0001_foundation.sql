-- Foundation: keys, tenants, people, memberships, roles, groups, invitations, tokens, sessions, audit.
-- {BLOB} becomes BLOB on SQLite and BYTEA on PostgreSQL. Times are Unix milliseconds.

CREATE TABLE data_keys (
    scope       TEXT   NOT NULL,          -- 'deployment', 'blind-index' or 'tenant:<id>'
    version     BIGINT NOT NULL,
    wrapped     {BLOB} NOT NULL,          -- AES-256-GCM under the master key
    master_id   TEXT   NOT NULL,          -- which master key wrapped it
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (scope, version)
);

CREATE TABLE tenants (
    id          TEXT   PRIMARY KEY,
    name        TEXT   NOT NULL,
    region      TEXT   NOT NULL,
    contact     {BLOB},                   -- encrypted JSON under the tenant's data key
    key_version BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT   PRIMARY KEY,
    email_index   TEXT   NOT NULL UNIQUE, -- blind index of the normalised e-mail
    pii           {BLOB} NOT NULL,        -- encrypted JSON {email, first_name, last_name}
    password_hash {BLOB},                 -- encrypted Argon2id PHC string
    locale        TEXT   NOT NULL,
    key_version   BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE roles (
    tenant_id   TEXT   NOT NULL REFERENCES tenants(id),
    id          TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    permissions TEXT   NOT NULL,          -- JSON array of permission names
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE memberships (
    tenant_id   TEXT   NOT NULL REFERENCES tenants(id),
    id          TEXT   NOT NULL,
    user_id     TEXT   NOT NULL REFERENCES users(id),
    role        TEXT   NOT NULL,          -- built-in key or custom role id
    scope       TEXT   NOT NULL,          -- JSON
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE device_groups (
    tenant_id   TEXT   NOT NULL REFERENCES tenants(id),
    id          TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE invitations (
    tenant_id   TEXT   NOT NULL REFERENCES tenants(id),
    id          TEXT   NOT NULL,
    token_hash  TEXT   NOT NULL UNIQUE,
    email       {BLOB} NOT NULL,          -- encrypted under the tenant's data key
    key_version BIGINT NOT NULL,
    role        TEXT   NOT NULL,
    scope       TEXT   NOT NULL,
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    revoked_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE api_tokens (
    tenant_id     TEXT   NOT NULL REFERENCES tenants(id),
    id            TEXT   NOT NULL,
    membership_id TEXT   NOT NULL,
    user_id       TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    token_hash    TEXT   NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE sessions (
    id           TEXT   PRIMARY KEY,
    secret_hash  TEXT   NOT NULL UNIQUE,
    user_id      TEXT   NOT NULL REFERENCES users(id),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    source       TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_log (
    chain       TEXT   NOT NULL,          -- tenant id, or 'deployment'
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,          -- pseudonymous: user:<id>, token:<id>/user:<id>, system
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    detail      TEXT   NOT NULL,          -- JSON without personal data or secrets
    mac         {BLOB} NOT NULL,
    PRIMARY KEY (chain, seq)
);
