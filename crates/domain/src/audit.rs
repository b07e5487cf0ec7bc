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
        }
    }
}
