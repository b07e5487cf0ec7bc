-- Staged roll-outs of policy changes (docs/policies.md, "Staged roll-out"): the plan, where it
-- stands, and each reached printer's wave and outcome.

CREATE TABLE rollouts (
    tenant_id        TEXT   NOT NULL,
    id               TEXT   NOT NULL,
    policy_id        TEXT   NOT NULL,
    base_version     BIGINT NOT NULL,     -- the version in force before the change
    base_mode        TEXT   NOT NULL,     -- its mode (a rollback saves it again)
    version          BIGINT,              -- the change's version (NULL until it is saved)
    plan             TEXT   NOT NULL,     -- JSON printfleet_domain::policy::rollout::RolloutPlan
    state            TEXT   NOT NULL,     -- active | halted | completed | cancelled | rolled_back
    released_wave    BIGINT NOT NULL,     -- waves 0 ..= this may get the change (0: the canary)
    wave_released_at BIGINT NOT NULL,
    halt_reason      TEXT,                -- JSON HaltReason of the latest halt
    rollback_version BIGINT,
    created_by       TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX rollouts_policy ON rollouts (tenant_id, policy_id, created_at);
CREATE INDEX rollouts_state ON rollouts (state);

-- One row per printer the change reaches: its wave and where its work stands.
CREATE TABLE rollout_devices (
    tenant_id   TEXT   NOT NULL,
    rollout_id  TEXT   NOT NULL,
    device_id   TEXT   NOT NULL,
    wave        BIGINT NOT NULL,
    status      TEXT   NOT NULL,          -- waiting | pending | sent | succeeded | failed | not_responding | not_needed | skipped
    work_id     TEXT,                     -- the apply_settings outbox item sent for the change
    sent_at     BIGINT,
    finished_at BIGINT,
    reason      TEXT,                     -- the printer's reason for a failure
    compliant   BIGINT NOT NULL,          -- 1: nothing left to send for the change
    PRIMARY KEY (tenant_id, rollout_id, device_id)
);
CREATE INDEX rollout_devices_wave ON rollout_devices (tenant_id, rollout_id, wave, status);
CREATE INDEX rollout_devices_work ON rollout_devices (tenant_id, work_id);
