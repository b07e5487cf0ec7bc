//! The effective policy of one printer: every item that applies to it, and where it comes from.
//!
//! Policies reach printers through assignments to groups, each with a priority. When several
//! policies set the same item, the assignment with the lowest priority number wins; ties go to
//! the lower policy id, then the lower group id, so the outcome never depends on the order of
//! rows in a database.

use super::document::{PolicyItem, PolicyItems, PolicyMode};
use crate::ids::{GroupId, PolicyId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A policy (at its current version) assigned to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub policy: PolicyId,
    pub version: i64,
    pub mode: PolicyMode,
    pub group: GroupId,
    pub priority: i64,
}

/// Where an effective item comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub policy: PolicyId,
    pub version: i64,
    pub mode: PolicyMode,
    pub group: GroupId,
    pub priority: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EffectiveItem {
    pub item: PolicyItem,
    pub origin: Origin,
    /// Assignments that also set this item but lost.
    pub overridden: Vec<Origin>,
}

pub type EffectivePolicy = BTreeMap<String, EffectiveItem>;

/// The effective policy of a printer in `groups`, given the tenant's assignments and each
/// assigned policy's items (at `Assignment::version`).
pub fn effective<'a>(
    groups: &BTreeSet<GroupId>,
    assignments: &[Assignment],
    items_of: impl Fn(PolicyId) -> Option<&'a PolicyItems>,
) -> EffectivePolicy {
    let mut applicable: Vec<&Assignment> = assignments
        .iter()
        .filter(|a| groups.contains(&a.group))
        .collect();
    applicable.sort_by_key(|a| (a.priority, a.policy, a.group));
    let mut out = EffectivePolicy::new();
    for a in applicable {
        let Some(items) = items_of(a.policy) else {
            continue;
        };
        let origin = Origin {
            policy: a.policy,
            version: a.version,
            mode: a.mode,
            group: a.group,
            priority: a.priority,
        };
        for (id, item) in items {
            match out.get_mut(id) {
                Some(existing) => {
                    // The same policy reaching the printer through two groups is one origin.
                    if existing.origin.policy != a.policy
                        && !existing.overridden.iter().any(|o| o.policy == a.policy)
                    {
                        existing.overridden.push(origin.clone());
                    }
                }
                None => {
                    out.insert(
                        id.clone(),
                        EffectiveItem {
                            item: item.clone(),
                            origin: origin.clone(),
                            overridden: Vec::new(),
                        },
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::SettingValue;
    use uuid::Uuid;

    fn pid(n: u8) -> PolicyId {
        PolicyId(Uuid::from_bytes([n; 16]))
    }
    fn gid(n: u8) -> GroupId {
        GroupId(Uuid::from_bytes([n; 16]))
    }
    fn items(pairs: &[(&str, bool)]) -> PolicyItems {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    PolicyItem::Value {
                        value: SettingValue::Bool(*v),
                    },
                )
            })
            .collect()
    }
    fn assign(p: u8, g: u8, priority: i64) -> Assignment {
        Assignment {
            policy: pid(p),
            version: 1,
            mode: PolicyMode::Assess,
            group: gid(g),
            priority,
        }
    }

    #[test]
    fn lowest_priority_number_wins_and_order_of_rows_does_not_matter() {
        let p1 = items(&[("a", true), ("b", true)]);
        let p2 = items(&[("b", false), ("c", false)]);
        let lookup = |p: PolicyId| {
            if p == pid(1) {
                Some(&p1)
            } else if p == pid(2) {
                Some(&p2)
            } else {
                None
            }
        };
        let groups: BTreeSet<_> = [gid(10), gid(20)].into();
        let mut a = vec![assign(1, 10, 5), assign(2, 20, 1)];
        let e1 = effective(&groups, &a, lookup);
        a.reverse();
        assert_eq!(effective(&groups, &a, lookup), e1);
        assert_eq!(e1["b"].origin.policy, pid(2));
        assert_eq!(e1["b"].overridden[0].policy, pid(1));
        assert_eq!(e1["a"].origin.group, gid(10));
        assert_eq!(e1.len(), 3);
        // Equal priorities: the lower policy id wins.
        let e = effective(&groups, &[assign(2, 20, 1), assign(1, 10, 1)], lookup);
        assert_eq!(e["b"].origin.policy, pid(1));
    }

    #[test]
    fn only_the_printer_s_groups_count() {
        let p1 = items(&[("a", true)]);
        let groups: BTreeSet<_> = [gid(99)].into();
        assert!(effective(&groups, &[assign(1, 10, 1)], |_| Some(&p1)).is_empty());
        // One policy through two groups: one origin, nothing overridden.
        let groups: BTreeSet<_> = [gid(10), gid(11)].into();
        let e = effective(&groups, &[assign(1, 10, 1), assign(1, 11, 2)], |_| {
            Some(&p1)
        });
        assert!(e["a"].overridden.is_empty());
    }
}
