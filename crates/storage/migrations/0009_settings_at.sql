-- When a printer's compliance-relevant state (its device info and settings) last changed.
-- Compliance is assessed against this, not against every report: a check-in that changes only
-- meters, supplies or events cannot change compliance, so it neither wakes the assessor nor
-- makes the printer due (device_compliance.state_received_at now holds the settings_at it
-- was assessed against).
ALTER TABLE device_state ADD COLUMN settings_at BIGINT NOT NULL DEFAULT 0;
UPDATE device_state SET settings_at = received_at;
