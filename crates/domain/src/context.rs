//! The caller's context: who is acting, in which tenant, with which permissions and scope. Every
//! storage call takes one; only the resolver creates them.

use crate::ids::{MembershipId, TenantId, TokenId, UserId};
use crate::permission::Permission;
use crate::scope::Scope;
use std::collections::BTreeSet;

/// Who performs an action, as written to the audit log (pseudonymous ids only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// An API token acting for the user who created it.
    Token {
        token: TokenId,
        user: UserId,
    },
    /// Printfleet itself (start-up, background jobs, the admin command line).
    System,
}

impl Actor {
    /// The stable, pseudonymous form stored in the audit log.
    pub fn audit_id(&self) -> String {
        match self {
            Actor::User(u) => format!("user:{u}"),
            Actor::Token { token, user } => format!("token:{token}/user:{user}"),
            Actor::System => "system".to_string(),
        }
    }

    pub fn user(&self) -> Option<UserId> {
        match self {
            Actor::User(u) | Actor::Token { user: u, .. } => Some(*u),
            Actor::System => None,
        }
    }
}

/// A resolved caller inside one tenant.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub tenant: TenantId,
    pub actor: Actor,
    /// The membership the caller acts through (`None` for the system).
    pub membership: Option<MembershipId>,
    pub permissions: BTreeSet<Permission>,
    pub scope: Scope,
    /// The source address of the request, for the audit log.
    pub source: Option<String>,
}

/// The caller lacks a permission on something it can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing permission {0}")]
pub struct Forbidden(pub Permission);

impl Ctx {
    /// Printfleet acting on its own behalf within a tenant (CLI, background jobs).
    pub fn system(tenant: TenantId) -> Self {
        Self {
            tenant,
            actor: Actor::System,
            membership: None,
            permissions: Permission::ALL.into_iter().collect(),
            scope: Scope::Tenant,
            source: None,
        }
    }

    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    pub fn require(&self, p: Permission) -> Result<(), Forbidden> {
        if self.can(p) {
            Ok(())
        } else {
            Err(Forbidden(p))
        }
    }

    pub fn is_api_token(&self) -> bool {
        matches!(self.actor, Actor::Token { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::BuiltInRole;

    #[test]
    fn require_checks_the_permission_set() {
        let mut c = Ctx::system(TenantId::new_random());
        c.permissions = BuiltInRole::ReportAdmin.permissions();
        assert!(c.require(Permission::ReportsRun).is_ok());
        assert_eq!(
            c.require(Permission::UsersManage),
            Err(Forbidden(Permission::UsersManage))
        );
    }

    #[test]
    fn audit_ids_are_pseudonymous() {
        let u = UserId::new_random();
        assert_eq!(Actor::User(u).audit_id(), format!("user:{u}"));
        assert_eq!(Actor::System.audit_id(), "system");
    }
}

/// A signed-in person acting on their own account (profile, sessions, memberships), outside any
/// one tenant. Made only by the storage resolver.
#[derive(Clone, Debug)]
pub struct Me {
    pub user: UserId,
    pub session: Option<crate::ids::SessionId>,
    pub source: Option<String>,
}
