//! Fleet figures kept incrementally: for the tenant (scope `''`) and for every group a printer
//! belongs to, the printers by overall status (policy `''`), per policy the printers by their
//! status under it (setting `''`), and per policy and item the items by status.
//!
//! The assessor takes a printer's previous share out of the scopes its row was counted under
//! and adds its new share to the scopes it belongs to now, in the transaction that writes the
//! row, so the counts always equal a sum over the stored rows (a membership change marks the
//! printer for re-assessment, which moves its share).

use crate::audit::WriteTx;
use crate::codec::value_rows;
use crate::{Store, StoreError};
use printfleet_domain::policy::{ItemStatus, StatusTally};
use printfleet_domain::{GroupId, PolicyId, TenantId};
use std::collections::BTreeMap;

const ROWS_PER_STATEMENT: usize = 16; // 6 columns

/// (policy, or none for the printer's overall status; setting, or '' for the printer's
/// status under the policy; status)
type ShareKey<'a> = (Option<PolicyId>, &'a str, &'static str);

/// One printer's share of the counts: what it adds to each scope it is counted under.
pub(crate) struct Share<'a> {
    /// `None`: the tenant.
    scopes: Vec<Option<GroupId>>,
    counts: BTreeMap<ShareKey<'a>, i64>,
}

impl<'a> Share<'a> {
    /// Nothing: a printer without a stored row, or one that is gone.
    pub(crate) fn none() -> Self {
        Share {
            scopes: Vec::new(),
            counts: BTreeMap::new(),
        }
    }

    /// The share of a printer in `groups` with `overall` status and these items.
    pub(crate) fn of(
        groups: impl Iterator<Item = GroupId>,
        overall: ItemStatus,
        items: impl Iterator<Item = (PolicyId, &'a str, ItemStatus)>,
    ) -> Self {
        let mut counts: BTreeMap<ShareKey<'a>, i64> = BTreeMap::new();
        let mut per_policy: BTreeMap<PolicyId, StatusTally> = BTreeMap::new();
        for (p, setting, status) in items {
            *counts
                .entry((Some(p), setting, status.as_str()))
                .or_default() += 1;
            per_policy.entry(p).or_default().add(status, 1);
        }
        for (p, t) in per_policy {
            *counts
                .entry((Some(p), "", t.overall().as_str()))
                .or_default() += 1;
        }
        counts.insert((None, "", overall.as_str()), 1);
        Share {
            scopes: std::iter::once(None).chain(groups.map(Some)).collect(),
            counts,
        }
    }
}

/// (scope, policy, setting, status) as in [`ShareKey`].
type Key = (Option<GroupId>, Option<PolicyId>, String, &'static str);

/// Count changes of one batch, written with [`Store::apply_count_deltas`].
#[derive(Default)]
pub(crate) struct CountDeltas(BTreeMap<Key, i64>);

impl CountDeltas {
    /// A printer's share moves from `before` to `after`. In the usual case — same scopes —
    /// only the difference is added, so a change of six items touches a dozen keys, not the
    /// hundreds of the whole share twice over.
    pub(crate) fn change(&mut self, before: Share<'_>, after: Share<'_>) {
        if before.scopes == after.scopes {
            let mut diff = after.counts;
            for (k, n) in before.counts {
                *diff.entry(k).or_default() -= n;
            }
            self.add(&after.scopes, &diff, 1);
        } else {
            self.add(&before.scopes, &before.counts, -1);
            self.add(&after.scopes, &after.counts, 1);
        }
    }

    fn add(&mut self, scopes: &[Option<GroupId>], counts: &BTreeMap<ShareKey<'_>, i64>, sign: i64) {
        for ((policy, setting, status), n) in counts {
            if *n == 0 {
                continue;
            }
            for scope in scopes {
                *self
                    .0
                    .entry((*scope, *policy, (*setting).to_string(), status))
                    .or_default() += sign * n;
            }
        }
    }
}

impl Store {
    /// Writes a batch's count changes: one multi-row upsert per 16 keys. A decrease always
    /// meets its row (the share it takes out was added before), so no negative row appears.
    pub(crate) async fn apply_count_deltas(
        &self,
        w: &mut WriteTx,
        t: TenantId,
        deltas: CountDeltas,
    ) -> Result<(), StoreError> {
        let changed: Vec<(Key, i64)> = deltas.0.into_iter().filter(|(_, n)| *n != 0).collect();
        for chunk in changed.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO compliance_counts (tenant_id, scope, policy_id, setting_id, status, n) VALUES {} \
                 ON CONFLICT (tenant_id, scope, policy_id, setting_id, status) DO UPDATE SET n = compliance_counts.n + excluded.n",
                value_rows(chunk.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for ((scope, policy, setting, status), n) in chunk {
                q = q
                    .bind(t.to_string())
                    .bind(scope.map(|g| g.to_string()).unwrap_or_default())
                    .bind(policy.map(|p| p.to_string()).unwrap_or_default())
                    .bind(setting.clone())
                    .bind(*status)
                    .bind(*n);
            }
            q.execute(&mut *w.tx).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (PolicyId, GroupId) {
        (
            "00000000-0000-4000-8000-000000000001".parse().unwrap(),
            "00000000-0000-4000-8000-000000000002".parse().unwrap(),
        )
    }

    fn get(
        d: &CountDeltas,
        scope: Option<GroupId>,
        p: Option<PolicyId>,
        setting: &str,
        s: ItemStatus,
    ) -> i64 {
        d.0.get(&(scope, p, setting.to_string(), s.as_str()))
            .copied()
            .unwrap_or(0)
    }

    #[test]
    fn in_the_same_groups_only_the_difference_is_counted() {
        let (p, g) = ids();
        let before = [
            (p, "a", ItemStatus::Compliant),
            (p, "b", ItemStatus::NonCompliant),
        ];
        let after = [
            (p, "a", ItemStatus::Compliant),
            (p, "b", ItemStatus::Compliant),
        ];
        let mut d = CountDeltas::default();
        d.change(
            Share::of(
                [g].into_iter(),
                ItemStatus::NonCompliant,
                before.into_iter(),
            ),
            Share::of([g].into_iter(), ItemStatus::Compliant, after.into_iter()),
        );
        for scope in [None, Some(g)] {
            assert_eq!(get(&d, scope, Some(p), "b", ItemStatus::NonCompliant), -1);
            assert_eq!(get(&d, scope, Some(p), "b", ItemStatus::Compliant), 1);
            assert_eq!(get(&d, scope, Some(p), "", ItemStatus::NonCompliant), -1);
            assert_eq!(get(&d, scope, Some(p), "", ItemStatus::Compliant), 1);
            assert_eq!(get(&d, scope, None, "", ItemStatus::NonCompliant), -1);
            assert_eq!(get(&d, scope, None, "", ItemStatus::Compliant), 1);
        }
        // Item a did not change: no key at all.
        assert_eq!(d.0.len(), 12, "{:?}", d.0.keys().collect::<Vec<_>>());
    }

    #[test]
    fn a_printer_leaving_a_group_takes_its_whole_share_out() {
        let (p, g) = ids();
        let items = [(p, "a", ItemStatus::Compliant)];
        let mut d = CountDeltas::default();
        d.change(
            Share::of([g].into_iter(), ItemStatus::Compliant, items.into_iter()),
            Share::of([].into_iter(), ItemStatus::Compliant, items.into_iter()),
        );
        assert_eq!(get(&d, Some(g), Some(p), "a", ItemStatus::Compliant), -1);
        assert_eq!(get(&d, Some(g), None, "", ItemStatus::Compliant), -1);
        assert_eq!(get(&d, None, Some(p), "a", ItemStatus::Compliant), 0);
        // A removed printer leaves every scope.
        let mut d = CountDeltas::default();
        d.change(
            Share::of([g].into_iter(), ItemStatus::Compliant, items.into_iter()),
            Share::none(),
        );
        assert_eq!(get(&d, None, None, "", ItemStatus::Compliant), -1);
        assert_eq!(get(&d, Some(g), Some(p), "", ItemStatus::Compliant), -1);
    }
}
