//! Every permission Printfleet knows, as one explicit enum. A role is a set of these.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One permission. The string form (`devices.read`, …) is stable: it is stored and sent over the API.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Permission {
    /// See printers, groups and their state.
    #[serde(rename = "devices.read")]
    DevicesRead,
    /// Add, change and remove printers and groups; enrolment tokens; remote actions.
    #[serde(rename = "devices.manage")]
    DevicesManage,
    #[serde(rename = "policies.read")]
    PoliciesRead,
    #[serde(rename = "policies.manage")]
    PoliciesManage,
    /// Set secrets (passwords, keys) in policies. Secrets are write-only for everyone.
    #[serde(rename = "secrets.write")]
    SecretsWrite,
    /// Break-glass: see one printer's generated secret (re-authenticated, with a reason).
    #[serde(rename = "secrets.reveal")]
    SecretsReveal,
    #[serde(rename = "reports.run")]
    ReportsRun,
    #[serde(rename = "reports.read")]
    ReportsRead,
    /// Invite people, change their role and scope, remove them.
    #[serde(rename = "users.manage")]
    UsersManage,
    /// Define custom roles.
    #[serde(rename = "roles.manage")]
    RolesManage,
    #[serde(rename = "audit.read")]
    AuditRead,
    /// Change the tenant's name, region and contact data.
    #[serde(rename = "tenant.settings")]
    TenantSettings,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::DevicesRead,
        Permission::DevicesManage,
        Permission::PoliciesRead,
        Permission::PoliciesManage,
        Permission::SecretsWrite,
        Permission::SecretsReveal,
        Permission::ReportsRun,
        Permission::ReportsRead,
        Permission::UsersManage,
        Permission::RolesManage,
        Permission::AuditRead,
        Permission::TenantSettings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::DevicesRead => "devices.read",
            Permission::DevicesManage => "devices.manage",
            Permission::PoliciesRead => "policies.read",
            Permission::PoliciesManage => "policies.manage",
            Permission::SecretsWrite => "secrets.write",
            Permission::SecretsReveal => "secrets.reveal",
            Permission::ReportsRun => "reports.run",
            Permission::ReportsRead => "reports.read",
            Permission::UsersManage => "users.manage",
            Permission::RolesManage => "roles.manage",
            Permission::AuditRead => "audit.read",
            Permission::TenantSettings => "tenant.settings",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission")]
pub struct UnknownPermission;

impl FromStr for Permission {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(UnknownPermission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_round_trip_and_match_serde() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
        assert!("devices.write".parse::<Permission>().is_err());
    }
}
