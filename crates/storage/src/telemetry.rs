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
    /// Committed: durable when this is returned.
    Stored,
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
        self.ingest()
            .submit(crate::ingest::Job {
                tenant,
                device,
                report,
                catalogue,
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

    /// The newest `limit` history rows of a printer, optionally of one data class, newest first.
    pub async fn device_history(
        &self,
        ctx: &Ctx,
        device: DeviceId,
        class: Option<DataClass>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.device_get(ctx, device).await?;
        ctx.require(Permission::DevicesRead)?;
        let rows = sqlx::query(
            "SELECT seq, key_version, data_class, reported_at, received_at, body FROM telemetry_history \
             WHERE tenant_id = $1 AND device_id = $2 AND ($3 = '' OR data_class = $3) \
             ORDER BY received_at DESC, seq DESC LIMIT $4",
        )
        .bind(ctx.tenant.to_string())
        .bind(device.to_string())
        .bind(class.map(DataClass::as_str).unwrap_or(""))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let class: String = r.try_get(2)?;
                Ok(HistoryEntry {
                    seq: r.try_get(0)?,
                    key_version: r.try_get(1)?,
                    data_class: DataClass::parse(&class).ok_or_else(|| {
                        StoreError::Corrupt(format!("telemetry_history.data_class: {class}"))
                    })?,
                    reported_at_ms: r.try_get(3)?,
                    received_at_ms: r.try_get(4)?,
                    body: serde_json::from_str(&r.try_get::<String, _>(5)?).map_err(json_err)?,
                })
            })
            .collect()
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

/// One check-in inside a batch's transaction: the checks, then the state and history writes.
/// Database errors abort the whole batch (the caller rolls back); refusals write nothing.
pub(crate) async fn check_in_in_tx(
    tx: &mut crate::Tx,
    now: i64,
    tenant: TenantId,
    device: DeviceId,
    report: &CheckIn,
    catalogue: &Catalogue,
) -> Result<CheckInOutcome, StoreError> {
    let live = sqlx::query(
        "SELECT key_version, connection FROM devices WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL AND revoked_at IS NULL",
    )
    .bind(tenant.to_string())
    .bind(device.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(live) = live else {
        return Ok(CheckInOutcome::Gone);
    };
    let key_version: i64 = live.try_get(0)?;
    let previous =
        match sqlx::query("SELECT state FROM device_state WHERE tenant_id = $1 AND device_id = $2")
            .bind(tenant.to_string())
            .bind(device.to_string())
            .fetch_optional(&mut **tx)
            .await?
        {
            Some(r) => serde_json::from_str::<DeviceState>(&r.try_get::<String, _>(0)?)
                .map_err(json_err)?,
            None => DeviceState::default(),
        };
    let mut next = match telemetry::apply(&previous, report, catalogue, now) {
        Ok(Verdict::Store(next)) => next,
        Ok(Verdict::Duplicate) => return Ok(CheckInOutcome::Duplicate),
        Err(r) => return Ok(CheckInOutcome::Refused(r)),
    };
    let origin = Provenance {
        via: live.try_get(1)?,
        method: "check_in".into(),
        key_version,
        seq: report.seq,
        received_at_ms: now,
    };
    telemetry::record_provenance(&mut next, report, &origin);
    let state = serde_json::to_string(&next).map_err(json_err)?;
    let seq = i64::try_from(report.seq).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO device_state (tenant_id, device_id, seq, received_at, state) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, device_id) DO UPDATE SET seq = excluded.seq, received_at = excluded.received_at, state = excluded.state",
    )
    .bind(tenant.to_string())
    .bind(device.to_string())
    .bind(seq)
    .bind(now)
    .bind(state)
    .execute(&mut **tx)
    .await?;
    let reported_at = i64::try_from(report.taken_at_ms).unwrap_or(i64::MAX);
    for (class, body) in telemetry::history_rows(report) {
        sqlx::query(
            "INSERT INTO telemetry_history (tenant_id, utc_day, device_id, seq, data_class, reported_at, received_at, body, key_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(tenant.to_string())
        .bind(now.div_euclid(DAY_MS))
        .bind(device.to_string())
        .bind(seq)
        .bind(class.as_str())
        .bind(reported_at)
        .bind(now)
        .bind(body.to_string())
        .bind(key_version)
        .execute(&mut **tx)
        .await?;
    }
    Ok(CheckInOutcome::Stored)
}
