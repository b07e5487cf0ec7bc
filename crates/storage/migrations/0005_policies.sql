-- Policies: versioned documents per tenant, assignments to device groups, dynamic groups,
-- printer attributes the rules look at, and assessments with their history and fleet counts.

ALTER TABLE devices ADD COLUMN site TEXT;                 -- free text set by an admin
ALTER TABLE devices ADD COLUMN tags TEXT;                 -- JSON array of strings
ALTER TABLE device_groups ADD COLUMN rule TEXT;           -- JSON GroupRule; NULL: a static group

CREATE TABLE policies (
    tenant_id       TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    name            TEXT   NOT NULL,
    description     TEXT,
    mode            TEXT   NOT NULL,       -- assess | remediate
    current_version BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- Every change is a new version; versions are never changed or deleted while the policy lives.
CREATE TABLE policy_versions (
    tenant_id         TEXT   NOT NULL,
    policy_id         TEXT   NOT NULL,
    version           BIGINT NOT NULL,
    items             TEXT   NOT NULL,     -- JSON PolicyItems: never a secret's value
    secrets           {BLOB},              -- PolicySecrets, encrypted under the tenant key, bound to this row
    catalogue_version TEXT   NOT NULL,
    created_by        TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, policy_id, version)
);

CREATE TABLE policy_assignments (
    tenant_id   TEXT   NOT NULL,
    policy_id   TEXT   NOT NULL,
    group_id    TEXT   NOT NULL,
    priority    BIGINT NOT NULL,           -- lower wins
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, policy_id, group_id)
);
CREATE INDEX policy_assignments_group ON policy_assignments (tenant_id, group_id);

-- Bumped by every change that can alter any printer's effective policy; a printer assessed
-- under an older epoch is re-assessed.
CREATE TABLE policy_epochs (
    tenant_id   TEXT   NOT NULL PRIMARY KEY,
    epoch       BIGINT NOT NULL
);

-- A printer's current assessment: its items (JSON, never a secret) and counts. epoch -1 marks a
-- printer for re-assessment after a change that concerns only it.
CREATE TABLE device_compliance (
    tenant_id         TEXT   NOT NULL,
    device_id         TEXT   NOT NULL,
    epoch             BIGINT NOT NULL,
    state_received_at BIGINT NOT NULL,     -- device_state.received_at assessed (0: none)
    assessed_at       BIGINT NOT NULL,
    catalogue_version TEXT   NOT NULL,
    status            TEXT   NOT NULL,     -- overall: compliant | non_compliant | unknown
    compliant         BIGINT NOT NULL,
    non_compliant     BIGINT NOT NULL,
    unsupported       BIGINT NOT NULL,
    unknown           BIGINT NOT NULL,
    items             TEXT   NOT NULL,     -- JSON [{setting_id, status, reported, wanted, detail, policy, version, since}]
    PRIMARY KEY (tenant_id, device_id)
);

-- Item status changes only, one row per assessment that changed any: "when did this printer
-- drift?"
CREATE TABLE assessment_history (
    tenant_id         TEXT   NOT NULL,
    id                TEXT   NOT NULL,
    device_id         TEXT   NOT NULL,
    at                BIGINT NOT NULL,
    catalogue_version TEXT   NOT NULL,
    changes           TEXT   NOT NULL,     -- JSON [{setting_id, status, previous, policy, version, detail}]
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX assessment_history_device ON assessment_history (tenant_id, device_id, at);

-- Fleet figures kept incrementally in the same transaction as the assessments they count:
-- per policy and item (setting_id) the items by status, and per policy (setting_id = '') the
-- printers by overall status.
CREATE TABLE compliance_counts (
    tenant_id   TEXT   NOT NULL,
    policy_id   TEXT   NOT NULL,
    setting_id  TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, policy_id, setting_id, status)
);

-- Remediation per printer: back-off after failures, and what the printer refused as unsupported.
CREATE TABLE remediation_state (
    tenant_id   TEXT   NOT NULL,
    device_id   TEXT   NOT NULL,
    attempts    BIGINT NOT NULL,           -- consecutive failed or refused attempts
    next_at     BIGINT NOT NULL,           -- no new attempt before
    last_work   TEXT,
    last_reason TEXT,
    unsupported TEXT   NOT NULL,           -- JSON array of setting ids refused as unsupported
    PRIMARY KEY (tenant_id, device_id)
);
