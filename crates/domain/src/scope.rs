//! A membership's scope: the whole tenant, or only some device groups.

use crate::ids::GroupId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "groups", rename_all = "snake_case")]
pub enum Scope {
    /// Every device in the tenant.
    #[default]
    Tenant,
    /// Only devices in these groups.
    Groups(BTreeSet<GroupId>),
}

impl Scope {
    pub fn allows_group(&self, group: GroupId) -> bool {
        match self {
            Scope::Tenant => true,
            Scope::Groups(g) => g.contains(&group),
        }
    }

    pub fn is_tenant_wide(&self) -> bool {
        matches!(self, Scope::Tenant)
    }

    /// The narrower of two scopes (an API token never sees more than its membership).
    pub fn intersect(&self, other: &Scope) -> Scope {
        match (self, other) {
            (Scope::Tenant, s) | (s, Scope::Tenant) => s.clone(),
            (Scope::Groups(a), Scope::Groups(b)) => {
                Scope::Groups(a.intersection(b).copied().collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_rules() {
        let a = GroupId::new_random();
        let b = GroupId::new_random();
        let s = Scope::Groups([a].into_iter().collect());
        assert!(s.allows_group(a));
        assert!(!s.allows_group(b));
        assert!(Scope::Tenant.allows_group(b));
        assert_eq!(Scope::Tenant.intersect(&s), s);
        let t = Scope::Groups([b].into_iter().collect());
        assert_eq!(s.intersect(&t), Scope::Groups(BTreeSet::new()));
    }
}
