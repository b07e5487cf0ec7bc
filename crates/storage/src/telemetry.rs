//! What printers report: the merged latest state per printer and the append-only history.
//!
//! A check-in is written by the printer itself (authenticated by its sealed body), so the write
//! takes the tenant and device from the resolver's key look-up, not a [`Ctx`]. Reads take a
//! context and see only printers visible to the caller.

use crate::{Store, StoreError};
use printfleet_domain::catalogue::Catalogue;
use printfleet_domain::telemetry::{self, DataClass, DeviceState, Provenance, Refusal, Verdict};
use printfleet_domain::{Ctx, DeviceId, Permission, TenantId};
use printfleet_protocol::messages::CheckIn;
use sqlx::Row;

/// What became of a check-in.
#[derive(Debug)]
pub enum CheckInOutcome {
    /// Committed: durable when this is returned. `reassess`: the report changed the printer's
    /// device info or a setting's value (or was its first), so its compliance may have changed;
    /// a report of only meters, supplies and events cannot change it.
    Stored { reassess: bool },
    /// This `seq` (or a later one) was stored before; nothing changed.
    Duplicate,
    /// Nonsense; nothing changed.
    Refused(Refusal),
    /// The printer was removed or its key revoked meanwhile.
    Gone,
}

/// One history row as the API shows it.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub seq: i64,
    pub key_version: i64,
    pub data_class: DataClass,
    pub reported_at_ms: i64,
    pub received_at_ms: i64,
    pub body: serde_json::Value,
}

const DAY_MS: i64 = 86_400_000;

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("device_state: {e}"))
}

impl Store {
    /// Checks a printer's report against its stored state and the catalogue and, when it makes
    /// sense, stores it: the latest state and the history rows. Returns only after the commit,
    /// so an acknowledged report is durable. Concurrent check-ins are group-committed: one
    /// transaction (one fsync) per batch (see [`crate::ingest`]).
    pub async fn check_in(
        &self,
        tenant: TenantId,
        device: DeviceId,
        report: CheckIn,
        catalogue: std::sync::Arc<Catalogue>,
    ) -> Result<CheckInOutcome, StoreError> {
        let checked = telemetry::check_report(&report, &catalogue);
        let history = telemetry::history_rows(&report);
        self.ingest()
            .submit(crate::ingest::Job {
                tenant,
                device,
                report,
                checked,
                history,
            })
            .await
    }

    /// The printer's merged latest state (`None` before its first report).
    pub async fn device_state(
        &self,
        ctx: &Ctx,
        device: DeviceId,
    ) -> Result<Option<DeviceState>, StoreError> {
        self.device_get(ctx, device).await?;
        let r =
            sqlx::query("SELECT state FROM device_state WHERE tenant_id = $1 AND device_id = $2")
                .bind(ctx.tenant.to_string())
                .bind(device.to_string())
                .fetch_optional(&self.pool)
                .await?;
        r.map(|r| {
            serde_json::from_str::<DeviceState>(&r.try_get::<String, _>(0)?).map_err(json_err)
        })
        .transpose()
    }

    /// The newest `limit` history entries of a printer (one per data class of each report),
    /// optionally of one data class; newest first (by key version, then seq: the printer's own
    /// order), and within a report in [`DataClass::ALL`] order.
    pub async fn device_history(
        &self,
        ctx: &Ctx,
        device: DeviceId,
        class: Option<DataClass>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.device_get(ctx, device).await?;
        ctx.require(Permission::DevicesRead)?;
        let limit = limit.clamp(1, 1000);
        // The column name comes from the fixed list of classes, never from the caller.
        let only = class
            .map(|c| format!(" AND {} IS NOT NULL", c.as_str()))
            .unwrap_or_default();
        // Every row holds at least one document, so `limit` rows hold enough entries.
        let rows = sqlx::query(&format!(
            "SELECT seq, key_version, reported_at, received_at, device_info, meters, supplies, events, settings \
             FROM report_history WHERE tenant_id = $1 AND device_id = $2{only} \
             ORDER BY key_version DESC, seq DESC LIMIT $3"
        ))
        .bind(ctx.tenant.to_string())
        .bind(device.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            for (i, data_class) in DataClass::ALL.into_iter().enumerate() {
                if class.is_some_and(|c| c != data_class) {
                    continue;
                }
                let Some(body) = r.try_get::<Option<String>, _>(4 + i)? else {
                    continue;
                };
                out.push(HistoryEntry {
                    seq: r.try_get(0)?,
                    key_version: r.try_get(1)?,
                    data_class,
                    reported_at_ms: r.try_get(2)?,
                    received_at_ms: r.try_get(3)?,
                    body: serde_json::from_str(&body).map_err(json_err)?,
                });
            }
        }
        out.truncate(usize::try_from(limit).unwrap_or(1000));
        Ok(out)
    }
}

/// After a re-enrolment the printer's reports restart at seq 1: keep the merged state, forget
/// the seq.
pub(crate) async fn reset_seq(
    w: &mut crate::audit::WriteTx,
    tenant: TenantId,
    device: DeviceId,
) -> Result<(), StoreError> {
    let r = sqlx::query("SELECT state FROM device_state WHERE tenant_id = $1 AND device_id = $2")
        .bind(tenant.to_string())
        .bind(device.to_string())
        .fetch_optional(&mut *w.tx)
        .await?;
    let Some(r) = r else { return Ok(()) };
    let mut state: DeviceState =
        serde_json::from_str(&r.try_get::<String, _>(0)?).map_err(json_err)?;
    state.seq = 0;
    sqlx::query(
        "UPDATE device_state SET seq = 0, state = $1 WHERE tenant_id = $2 AND device_id = $3",
    )
    .bind(serde_json::to_string(&state).map_err(json_err)?)
    .bind(tenant.to_string())
    .bind(device.to_string())
    .execute(&mut *w.tx)
    .await?;
    Ok(())
}

/// A check-in to store as part of a batch.
pub(crate) struct Pending<'a> {
    pub tenant: TenantId,
    pub device: DeviceId,
    pub report: &'a CheckIn,
    pub checked: &'a telemetry::Checked,
    pub history: &'a [(DataClass, String)],
}

/// One stored report in `report_history`: a document per data class present (columns in
/// [`DataClass::ALL`] order, named by [`DataClass::as_str`]).
struct HistoryRow {
    tenant: TenantId,
    device: String,
    key_version: i64,
    seq: i64,
    reported_at: i64,
    docs: [Option<String>; 5],
}

/// Rows per multi-row statement: with positional parameters on SQLite (`codec::positional`)
/// binding costs nothing per row, and each statement is a round trip, so statements are large
/// (PostgreSQL allows 65 535 parameters: 500 history rows of 12 are 6 000).
const ROWS_PER_STATEMENT: usize = 500;

/// Stores a batch of check-ins inside one transaction with a handful of statements whatever
/// the batch size: the printers' rows and states are read with one query each, every report is
/// checked in memory in arrival order (several reports of one printer chain), and the new
/// states and the history rows are written with multi-row statements. Database errors abort
/// the whole batch (the caller rolls back); refusals write nothing.
pub(crate) async fn check_in_batch(
    conn: &mut sqlx::AnyConnection,
    backend: crate::Backend,
    now: i64,
    batch: &[Pending<'_>],
) -> Result<Vec<CheckInOutcome>, StoreError> {
    use std::collections::HashMap;
    // The printers of each tenant: the devices table's key is (tenant, id), so a look-up by id
    // alone would scan every printer (per batch, growing with the fleet).
    let mut by_tenant: std::collections::BTreeMap<TenantId, Vec<String>> = Default::default();
    for p in batch {
        by_tenant
            .entry(p.tenant)
            .or_default()
            .push(p.device.to_string());
    }
    // Live printers (key version, connection) and their states, in one statement per tenant
    // and chunk: the state is joined by its primary key, so only a state of the printer's own
    // tenant counts.
    let mut live: HashMap<String, (TenantId, i64, String)> = HashMap::new();
    let mut states: HashMap<String, DeviceState> = HashMap::new();
    // When each printer's info and settings last changed (kept unless a report changes them).
    let mut settings_at: HashMap<String, i64> = HashMap::new();
    for (tenant_id, mut ids) in by_tenant {
        ids.sort_unstable();
        ids.dedup();
        let tenant = tenant_id.to_string();
        for chunk in crate::codec::padded_chunks(&ids) {
            let q = format!(
                "SELECT d.id, d.key_version, d.connection, s.state, s.settings_at FROM devices d \
                 LEFT JOIN device_state s ON s.tenant_id = d.tenant_id AND s.device_id = d.id \
                 WHERE d.tenant_id = $1 AND d.id IN ({}) AND d.removed_at IS NULL AND d.revoked_at IS NULL",
                crate::codec::in_list_from(2, chunk.len())
            );
            let q = crate::codec::positional(backend, q);
            let mut query = sqlx::query(&q).bind(&tenant);
            for id in &chunk {
                query = query.bind(id);
            }
            for r in query.fetch_all(&mut *conn).await? {
                let device: String = r.try_get(0)?;
                if live.contains_key(&device) {
                    continue;
                }
                if let Some(state) = r.try_get::<Option<String>, _>(3)? {
                    let state = serde_json::from_str(&state).map_err(json_err)?;
                    states.insert(device.clone(), state);
                    settings_at.insert(device.clone(), r.try_get::<i64, _>(4)?);
                }
                live.insert(device, (tenant_id, r.try_get(1)?, r.try_get(2)?));
            }
        }
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    // (tenant, device, seq, state) of every stored report; history rows likewise.
    let mut changed: HashMap<String, (TenantId, i64)> = HashMap::new();
    let mut history: Vec<HistoryRow> = Vec::new();
    for p in batch {
        let id = p.device.to_string();
        // Ids are unique across tenants; should one repeat, only its own tenant's report counts.
        let Some((key_version, via)) = live
            .get(&id)
            .filter(|(t, _, _)| *t == p.tenant)
            .map(|(_, v, c)| (v, c))
        else {
            outcomes.push(CheckInOutcome::Gone);
            continue;
        };
        // Taken out of the map (not cloned): the new state goes back in, or the old one.
        let stored = states.remove(&id);
        let had_state = stored.is_some();
        let previous = stored.unwrap_or_default();
        let mut next = match telemetry::apply_checked(&previous, p.report, p.checked, now) {
            Ok(Verdict::Store(next)) => next,
            other => {
                if had_state {
                    states.insert(id, previous);
                }
                outcomes.push(match other {
                    Err(r) => CheckInOutcome::Refused(r),
                    _ => CheckInOutcome::Duplicate,
                });
                continue;
            }
        };
        let origin = Provenance {
            via: via.clone(),
            method: "check_in".into(),
            key_version: *key_version,
            seq: p.report.seq,
            received_at_ms: now,
        };
        telemetry::record_provenance(&mut next, p.report, &origin);
        let seq = i64::try_from(p.report.seq).unwrap_or(i64::MAX);
        let reported_at = i64::try_from(p.report.taken_at_ms).unwrap_or(i64::MAX);
        let docs = DataClass::ALL.map(|class| {
            p.history
                .iter()
                .find(|(c, _)| *c == class)
                .map(|(_, body)| body.clone())
        });
        if docs.iter().any(Option::is_some) {
            history.push(HistoryRow {
                tenant: p.tenant,
                device: id.clone(),
                key_version: *key_version,
                seq,
                reported_at,
                docs,
            });
        }
        let reassess = !had_state || !next.same_compliance_inputs(&previous);
        if reassess {
            settings_at.insert(id.clone(), now);
        }
        states.insert(id.clone(), *next);
        changed.insert(id, (p.tenant, seq));
        outcomes.push(CheckInOutcome::Stored { reassess });
    }
    let rows: Vec<(String, TenantId, i64, i64, String)> = changed
        .into_iter()
        .map(|(id, (tenant, seq))| {
            let state = states
                .get(&id)
                .map(serde_json::to_string)
                .transpose()
                .map_err(json_err)?;
            let at = settings_at.get(&id).copied().unwrap_or(now);
            Ok((id, tenant, seq, at, state.unwrap_or_default()))
        })
        .collect::<Result<_, StoreError>>()?;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let q = format!(
            "INSERT INTO device_state (tenant_id, device_id, seq, received_at, settings_at, state) VALUES {} \
             ON CONFLICT (tenant_id, device_id) DO UPDATE SET seq = excluded.seq, received_at = excluded.received_at, settings_at = excluded.settings_at, state = excluded.state",
            crate::codec::value_rows(chunk.len(), 6)
        );
        let q = crate::codec::positional(backend, q);
        let mut query = sqlx::query(&q);
        for (id, tenant, seq, at, state) in chunk {
            query = query
                .bind(tenant.to_string())
                .bind(id)
                .bind(*seq)
                .bind(now)
                .bind(*at)
                .bind(state);
        }
        query.execute(&mut *conn).await?;
    }
    for chunk in history.chunks(ROWS_PER_STATEMENT) {
        let q = format!(
            "INSERT INTO report_history (tenant_id, device_id, key_version, seq, utc_day, reported_at, received_at, \
             device_info, meters, supplies, events, settings) VALUES {}",
            crate::codec::value_rows(chunk.len(), 12)
        );
        let q = crate::codec::positional(backend, q);
        let mut query = sqlx::query(&q);
        for row in chunk {
            query = query
                .bind(row.tenant.to_string())
                .bind(&row.device)
                .bind(row.key_version)
                .bind(row.seq)
                .bind(now.div_euclid(DAY_MS))
                .bind(row.reported_at)
                .bind(now);
            for doc in &row.docs {
                query = query.bind(doc.as_deref());
            }
        }
        query.execute(&mut *conn).await?;
    }
    Ok(outcomes)
}
