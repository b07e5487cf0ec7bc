-- Fleet figures kept per scope, so a group's figures are as quick to read as the tenant's:
-- scope '' is the whole tenant, otherwise a group id. policy_id '' (with setting_id '') counts
-- the printers by their overall status, which was a COUNT … GROUP BY over device_compliance.
CREATE TABLE compliance_counts_scoped (
    tenant_id   TEXT   NOT NULL,
    scope       TEXT   NOT NULL,
    policy_id   TEXT   NOT NULL,
    setting_id  TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope, policy_id, setting_id, status)
);
INSERT INTO compliance_counts_scoped (tenant_id, scope, policy_id, setting_id, status, n)
    SELECT tenant_id, '', policy_id, setting_id, status, n FROM compliance_counts;
INSERT INTO compliance_counts_scoped (tenant_id, scope, policy_id, setting_id, status, n)
    SELECT tenant_id, '', '', '', status, COUNT(*) FROM device_compliance GROUP BY tenant_id, status;
DROP TABLE compliance_counts;
ALTER TABLE compliance_counts_scoped RENAME TO compliance_counts;

-- The groups a printer's row is counted under, so the assessor can take its share out of the
-- right groups when its memberships changed (JSON array of group ids). Existing rows are
-- counted under none; the epoch bump below has every printer re-assessed and counted.
ALTER TABLE device_compliance ADD COLUMN counted_groups TEXT NOT NULL DEFAULT '[]';
UPDATE policy_epochs SET epoch = epoch + 1;

-- Deleting a group left its memberships and assignments behind (no cascade): clear them.
DELETE FROM group_devices WHERE NOT EXISTS
    (SELECT 1 FROM device_groups g WHERE g.tenant_id = group_devices.tenant_id AND g.id = group_devices.group_id);
DELETE FROM policy_assignments WHERE NOT EXISTS
    (SELECT 1 FROM device_groups g WHERE g.tenant_id = policy_assignments.tenant_id AND g.id = policy_assignments.group_id);
