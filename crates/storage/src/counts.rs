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

/// The scope of tenant-wide counts.
pub(crate) const TENANT: &str = "";

const ROWS_PER_STATEMENT: usize = 16; // 6 columns

/// (scope, policy or '', setting or '', status)
type Key = (String, String, String, &'static str);

/// Count changes of one batch, written with [`Store::apply_count_deltas`].
#[derive(Default)]
pub(crate) struct CountDeltas(BTreeMap<Key, i64>);

impl CountDeltas {
    /// Adds (`sign` 1) or takes out (`sign` -1) one printer's share in each of `scopes`.
    pub(crate) fn printer<'a>(
        &mut self,
        scopes: &[String],
        overall: ItemStatus,
        items: impl Iterator<Item = (PolicyId, &'a str, ItemStatus)>,
        sign: i64,
    ) {
        let mut share: BTreeMap<(String, String, &'static str), i64> = BTreeMap::new();
        let mut per_policy: BTreeMap<PolicyId, StatusTally> = BTreeMap::new();
        for (p, setting, status) in items {
            *share
                .entry((p.to_string(), setting.to_string(), status.as_str()))
                .or_default() += 1;
            per_policy.entry(p).or_default().add(status, 1);
        }
        for (p, t) in per_policy {
            *share
                .entry((p.to_string(), String::new(), t.overall().as_str()))
                .or_default() += 1;
        }
        share.insert((String::new(), String::new(), overall.as_str()), 1);
        for scope in scopes {
            for ((p, setting, status), n) in &share {
                *self
                    .0
                    .entry((scope.clone(), p.clone(), setting.clone(), status))
                    .or_default() += sign * n;
            }
        }
    }
}

/// The scopes a printer in `groups` is counted under: the tenant and each group.
pub(crate) fn scopes<'a>(groups: impl Iterator<Item = &'a GroupId>) -> Vec<String> {
    std::iter::once(TENANT.to_string())
        .chain(groups.map(|g| g.to_string()))
        .collect()
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
                    .bind(scope.clone())
                    .bind(policy.clone())
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

    #[test]
    fn a_printer_moves_between_scopes_and_statuses() {
        let p: PolicyId = "00000000-0000-4000-8000-000000000001".parse().unwrap();
        let g: GroupId = "00000000-0000-4000-8000-000000000002".parse().unwrap();
        let mut d = CountDeltas::default();
        let before = [
            (p, "a", ItemStatus::Compliant),
            (p, "b", ItemStatus::NonCompliant),
        ];
        d.printer(
            &scopes([g].iter()),
            ItemStatus::NonCompliant,
            before.into_iter(),
            -1,
        );
        let after = [
            (p, "a", ItemStatus::Compliant),
            (p, "b", ItemStatus::Compliant),
        ];
        d.printer(
            &scopes([].iter()),
            ItemStatus::Compliant,
            after.into_iter(),
            1,
        );
        let get = |scope: &str, policy: &str, setting: &str, status: ItemStatus| {
            d.0.get(&(scope.into(), policy.into(), setting.into(), status.as_str()))
                .copied()
                .unwrap_or(0)
        };
        let (ps, gs) = (p.to_string(), g.to_string());
        // Tenant: item a unchanged, b moved, the printer moved.
        assert_eq!(get("", &ps, "a", ItemStatus::Compliant), 0);
        assert_eq!(get("", &ps, "b", ItemStatus::NonCompliant), -1);
        assert_eq!(get("", &ps, "b", ItemStatus::Compliant), 1);
        assert_eq!(get("", &ps, "", ItemStatus::NonCompliant), -1);
        assert_eq!(get("", &ps, "", ItemStatus::Compliant), 1);
        assert_eq!(get("", "", "", ItemStatus::NonCompliant), -1);
        assert_eq!(get("", "", "", ItemStatus::Compliant), 1);
        // The group it left loses its whole share.
        assert_eq!(get(&gs, &ps, "a", ItemStatus::Compliant), -1);
        assert_eq!(get(&gs, "", "", ItemStatus::NonCompliant), -1);
        assert_eq!(get(&gs, "", "", ItemStatus::Compliant), 0);
    }
}
