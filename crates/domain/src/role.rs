//! Roles: sets of permissions. Three are built in; tenants define their own.

use crate::ids::RoleId;
use crate::permission::Permission;
use crate::validation::{self, ValidationError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The built-in roles, the same in every tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltInRole {
    /// Everything, including inviting people and assigning roles.
    ItAdmin,
    /// All print administration: printers, groups, enrolment, policies, remote actions. No user
    /// administration.
    PrinterAdmin,
    /// Run and read reports; nothing else.
    ReportAdmin,
}

impl BuiltInRole {
    pub const ALL: [BuiltInRole; 3] = [
        BuiltInRole::ItAdmin,
        BuiltInRole::PrinterAdmin,
        BuiltInRole::ReportAdmin,
    ];

    pub fn key(self) -> &'static str {
        match self {
            BuiltInRole::ItAdmin => "it-admin",
            BuiltInRole::PrinterAdmin => "printer-admin",
            BuiltInRole::ReportAdmin => "report-admin",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            BuiltInRole::ItAdmin => "IT Admin",
            BuiltInRole::PrinterAdmin => "Printer Admin",
            BuiltInRole::ReportAdmin => "Report Admin",
        }
    }

    pub fn permissions(self) -> BTreeSet<Permission> {
        use Permission::*;
        match self {
            BuiltInRole::ItAdmin => Permission::ALL.into_iter().collect(),
            BuiltInRole::PrinterAdmin => [
                DevicesRead,
                DevicesManage,
                PoliciesRead,
                PoliciesManage,
                SecretsWrite,
                ReportsRun,
                ReportsRead,
            ]
            .into_iter()
            .collect(),
            BuiltInRole::ReportAdmin => [ReportsRun, ReportsRead].into_iter().collect(),
        }
    }
}

/// Which role a membership holds: a built-in one or one of the tenant's custom roles.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RoleRef {
    BuiltIn(BuiltInRole),
    Custom(RoleId),
}

impl fmt::Display for RoleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleRef::BuiltIn(b) => f.write_str(b.key()),
            RoleRef::Custom(id) => write!(f, "{id}"),
        }
    }
}

impl FromStr for RoleRef {
    type Err = ValidationError;
    /// `it-admin`, `printer-admin`, `report-admin` or a custom role's id.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(b) = BuiltInRole::ALL.into_iter().find(|b| b.key() == s) {
            return Ok(RoleRef::BuiltIn(b));
        }
        s.parse::<RoleId>().map(RoleRef::Custom).map_err(|_| {
            ValidationError::new(
                "role",
                "must be it-admin, printer-admin, report-admin or a custom role id",
            )
        })
    }
}

impl Serialize for RoleRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RoleRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for RoleRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "it-admin, printer-admin, report-admin, or the id of a custom role",
            ))
            .into()
    }
}
impl utoipa::ToSchema for RoleRef {}

/// A role with its permissions, as resolved for a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub reference: RoleRef,
    pub name: String,
    pub permissions: BTreeSet<Permission>,
}

impl Role {
    pub fn built_in(b: BuiltInRole) -> Self {
        Self {
            reference: RoleRef::BuiltIn(b),
            name: b.display_name().to_string(),
            permissions: b.permissions(),
        }
    }
}

/// A custom role's name: 1–64 printable characters, not one of the built-in names.
pub fn validate_role_name(raw: &str) -> Result<String, ValidationError> {
    let name = validation::text("name", raw, 64)?;
    if BuiltInRole::ALL
        .iter()
        .any(|b| b.display_name().eq_ignore_ascii_case(&name) || b.key() == name)
    {
        return Err(ValidationError::new(
            "name",
            "is the name of a built-in role",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn built_in_roles_hold_what_the_product_promises() {
        let it = BuiltInRole::ItAdmin.permissions();
        assert_eq!(it.len(), Permission::ALL.len());
        let pa = BuiltInRole::PrinterAdmin.permissions();
        for p in [DevicesManage, PoliciesManage, SecretsWrite] {
            assert!(pa.contains(&p));
        }
        for p in [UsersManage, RolesManage, AuditRead, TenantSettings] {
            assert!(!pa.contains(&p), "printer admin must not have {p}");
        }
        let ra = BuiltInRole::ReportAdmin.permissions();
        assert_eq!(ra, [ReportsRun, ReportsRead].into_iter().collect());
    }

    #[test]
    fn role_refs_parse() {
        assert_eq!(
            "it-admin".parse(),
            Ok(RoleRef::BuiltIn(BuiltInRole::ItAdmin))
        );
        let id = RoleId::new_random();
        assert_eq!(id.to_string().parse(), Ok(RoleRef::Custom(id)));
        assert_eq!("admin".parse::<RoleRef>().unwrap_err().field, "role");
    }

    #[test]
    fn custom_role_names() {
        assert!(validate_role_name("Helpdesk").is_ok());
        assert!(validate_role_name("it admin").is_err());
        assert!(validate_role_name("").is_err());
    }
}
