//! The security-relevant actions that are written to the audit log, one enum.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    SignIn,
    SignInFailed,
    LockedOut,
    SignOut,
    SessionRevoked,
    TenantCreated,
    TenantUpdated,
    UserCreated,
    InvitationCreated,
    InvitationAccepted,
    InvitationRevoked,
    MembershipChanged,
    MembershipRemoved,
    RoleCreated,
    RoleUpdated,
    RoleDeleted,
    TokenCreated,
    TokenRevoked,
    GroupCreated,
    GroupDeleted,
    MasterKeyRotated,
    DataKeyRolled,
    EnrolmentTokenCreated,
    EnrolmentTokenRevoked,
    DeviceEnrolled,
    DeviceRemoved,
    GroupDeviceAdded,
    DeviceKeyRevoked,
    DeviceReenrolmentApproved,
    DeviceReenrolled,
    DeviceWorkQueued,
    PolicyCreated,
    PolicyChanged,
    PolicyDeleted,
    PolicyAssigned,
    PolicyUnassigned,
    GroupRuleChanged,
    DeviceAttributesChanged,
    RemediationRequested,
    /// Break-glass: an IT Admin, re-authenticated, was shown one printer's generated secret
    /// (the detail holds the setting and the stated reason, never the value).
    SecretRevealed,
    /// A break-glass reveal refused because re-authentication failed.
    SecretRevealRefused,
    /// A dry run that tried secret values other than the policy's: it tells whether printers
    /// hold them, so it is recorded like a change would be.
    PolicyDryRun,
    /// A staged roll-out was started for a policy change (`policy::rollout`).
    RolloutStarted,
    /// A roll-out halted by itself: a wave failed more than its plan allows (by the system).
    RolloutHalted,
    /// An admin released the next wave of a halted roll-out.
    RolloutResumed,
    /// An admin saved the version before the change again.
    RolloutRolledBack,
    /// An admin stopped a roll-out.
    RolloutCancelled,
    /// A wave passed and the roll-out driver released the next one (or completed the
    /// roll-out): decisions taken without an admin are recorded too.
    RolloutWaveReleased,
    RolloutCompleted,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "sign_in",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::LockedOut => "locked_out",
            AuditAction::SignOut => "sign_out",
            AuditAction::SessionRevoked => "session_revoked",
            AuditAction::TenantCreated => "tenant_created",
            AuditAction::TenantUpdated => "tenant_updated",
            AuditAction::UserCreated => "user_created",
            AuditAction::InvitationCreated => "invitation_created",
            AuditAction::InvitationAccepted => "invitation_accepted",
            AuditAction::InvitationRevoked => "invitation_revoked",
            AuditAction::MembershipChanged => "membership_changed",
            AuditAction::MembershipRemoved => "membership_removed",
            AuditAction::RoleCreated => "role_created",
            AuditAction::RoleUpdated => "role_updated",
            AuditAction::RoleDeleted => "role_deleted",
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::GroupCreated => "group_created",
            AuditAction::GroupDeleted => "group_deleted",
            AuditAction::MasterKeyRotated => "master_key_rotated",
            AuditAction::DataKeyRolled => "data_key_rolled",
            AuditAction::EnrolmentTokenCreated => "enrolment_token_created",
            AuditAction::EnrolmentTokenRevoked => "enrolment_token_revoked",
            AuditAction::DeviceEnrolled => "device_enrolled",
            AuditAction::DeviceRemoved => "device_removed",
            AuditAction::GroupDeviceAdded => "group_device_added",
            AuditAction::DeviceKeyRevoked => "device_key_revoked",
            AuditAction::DeviceReenrolmentApproved => "device_reenrolment_approved",
            AuditAction::DeviceReenrolled => "device_reenrolled",
            AuditAction::DeviceWorkQueued => "device_work_queued",
            AuditAction::PolicyCreated => "policy_created",
            AuditAction::PolicyChanged => "policy_changed",
            AuditAction::PolicyDeleted => "policy_deleted",
            AuditAction::PolicyAssigned => "policy_assigned",
            AuditAction::PolicyUnassigned => "policy_unassigned",
            AuditAction::GroupRuleChanged => "group_rule_changed",
            AuditAction::DeviceAttributesChanged => "device_attributes_changed",
            AuditAction::RemediationRequested => "remediation_requested",
            AuditAction::SecretRevealed => "secret_revealed",
            AuditAction::SecretRevealRefused => "secret_reveal_refused",
            AuditAction::PolicyDryRun => "policy_dry_run",
            AuditAction::RolloutStarted => "rollout_started",
            AuditAction::RolloutHalted => "rollout_halted",
            AuditAction::RolloutResumed => "rollout_resumed",
            AuditAction::RolloutRolledBack => "rollout_rolled_back",
            AuditAction::RolloutCancelled => "rollout_cancelled",
            AuditAction::RolloutWaveReleased => "rollout_wave_released",
            AuditAction::RolloutCompleted => "rollout_completed",
        }
    }
}
