//! The outbox: durable work for printers. An admin's request (or, later, remediation) is
//! committed here before the doorbell rings; the printer fetches its pending items over HTTPS
//! and acknowledges each one. Delivery is at-least-once: an item stays pending, and is sent
//! again by every later fetch, until the printer acknowledges it.

use crate::audit::{tenant_chain, AuditEvent};
use crate::codec::parse_id;
use crate::{Store, StoreError};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::{Ctx, DeviceId, GroupId, Permission, TenantId};
use printfleet_protocol::messages::{Outcome, WorkAck};
use sqlx::Row;

/// The kinds of work the protocol registers (docs/protocol.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkKind {
    /// Send a full check-in now.
    ReportNow,
    /// Apply a policy's settings (queued by the assessor; secrets sealed at delivery).
    ApplySettings,
}

impl WorkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::ReportNow => "report_now",
            WorkKind::ApplySettings => "apply_settings",
        }
    }
}

/// One outbox row.
#[derive(Debug, Clone)]
pub struct WorkRecord {
    pub id: String,
    pub device: DeviceId,
    pub kind: String,
    pub data: serde_json::Value,
    pub created_at_ms: i64,
    pub status: String,
    pub attempts: i64,
    pub sent_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub reason: Option<String>,
}

/// At most this many items go out in one fetch answer (the protocol's `MAX_WORK_ITEMS`).
pub const FETCH_BATCH: i64 = printfleet_protocol::messages::MAX_WORK_ITEMS as i64;

/// Rows per multi-row `INSERT` of [`Store::work_enqueue_group`]: 7 parameters each, 3 500 per
/// statement (bound positionally on SQLite, `codec::positional`). Each statement is a round
/// trip: with 14 rows per statement, queueing work for 10 000 printers on PostgreSQL took 10.5 s.
const GROUP_ROWS_PER_STATEMENT: usize = 500;

const COLUMNS: &str =
    "id, device_id, kind, data, created_at, status, attempts, sent_at, finished_at, reason";

/// `VALUES` rows of new pending items: 7 placeholders each (as `codec::value_rows` numbers
/// them), then the literal status and attempt count.
fn pending_rows(rows: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=7).map(|c| format!("${}", r * 7 + c)).collect();
            format!("({}, 'pending', 0)", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<WorkRecord, StoreError> {
    Ok(WorkRecord {
        id: r.try_get(0)?,
        device: parse_id("outbox.device_id", &r.try_get::<String, _>(1)?)?,
        kind: r.try_get(2)?,
        data: serde_json::from_str(&r.try_get::<String, _>(3)?)
            .map_err(|e| StoreError::Corrupt(format!("outbox.data: {e}")))?,
        created_at_ms: r.try_get(4)?,
        status: r.try_get(5)?,
        attempts: r.try_get(6)?,
        sent_at_ms: r.try_get(7)?,
        finished_at_ms: r.try_get(8)?,
        reason: r.try_get(9)?,
    })
}

impl Store {
    /// Queues work for a printer the caller can see and manage. Audited. The caller rings the
    /// doorbell after this returns (the item is committed by then).
    pub async fn work_enqueue(
        &self,
        ctx: &Ctx,
        device: DeviceId,
        kind: WorkKind,
        data: serde_json::Value,
    ) -> Result<WorkRecord, StoreError> {
        self.device_get_visible(ctx, device).await?;
        ctx.require(Permission::DevicesManage)?;
        let now = self.now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO outbox (tenant_id, id, device_id, kind, data, created_by, created_at, status, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0)",
        )
        .bind(ctx.tenant.to_string())
        .bind(&id)
        .bind(device.to_string())
        .bind(kind.as_str())
        .bind(data.to_string())
        .bind(ctx.actor.audit_id())
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        let ev = AuditEvent::new(
            ctx,
            AuditAction::DeviceWorkQueued,
            format!("device:{device}"),
        )
        .with_detail(serde_json::json!({ "work": id, "kind": kind.as_str() }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok(WorkRecord {
            id,
            device,
            kind: kind.as_str().into(),
            data,
            created_at_ms: now,
            status: "pending".into(),
            attempts: 0,
            sent_at_ms: None,
            finished_at_ms: None,
            reason: None,
        })
    }

    /// Queues the same work for every printer of a group the caller can see and manage, in one
    /// transaction with one audit entry (naming the group and the count), so a fleet-wide
    /// request costs one commit rather than one per printer. Returns the printers queued for;
    /// the caller rings them after this returns (the items are committed by then).
    pub async fn work_enqueue_group(
        &self,
        ctx: &Ctx,
        group: GroupId,
        kind: WorkKind,
        data: serde_json::Value,
    ) -> Result<Vec<DeviceId>, StoreError> {
        // Visibility first (404 outside tenant or scope), then the permission (403).
        let mut read = ctx.clone();
        read.permissions.insert(Permission::DevicesRead);
        self.group_get(&read, group).await?;
        ctx.require(Permission::DevicesManage)?;
        let now = self.now_ms();
        let data_text = data.to_string();
        let created_by = ctx.actor.audit_id();
        let mut w = self.begin_write().await?;
        // Read inside the transaction: a printer removed meanwhile gets no work.
        let devices = sqlx::query(
            "SELECT g.device_id FROM group_devices g JOIN devices d ON d.tenant_id = g.tenant_id AND d.id = g.device_id WHERE g.tenant_id = $1 AND g.group_id = $2 AND d.removed_at IS NULL ORDER BY g.device_id",
        )
        .bind(ctx.tenant.to_string())
        .bind(group.to_string())
        .fetch_all(&mut *w.tx)
        .await?
        .iter()
        .map(|r| parse_id("group_devices.device_id", &r.try_get::<String, _>(0)?))
        .collect::<Result<Vec<DeviceId>, StoreError>>()?;
        for chunk in devices.chunks(GROUP_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO outbox (tenant_id, id, device_id, kind, data, created_by, created_at, status, attempts) VALUES {}",
                pending_rows(chunk.len())
            );
            let sql = crate::codec::positional(self.backend, sql);
            let mut q = sqlx::query(&sql);
            for d in chunk {
                q = q
                    .bind(ctx.tenant.to_string())
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(d.to_string())
                    .bind(kind.as_str())
                    .bind(data_text.clone())
                    .bind(created_by.clone())
                    .bind(now);
            }
            q.execute(&mut *w.tx).await?;
        }
        let ev = AuditEvent::new(ctx, AuditAction::DeviceWorkQueued, format!("group:{group}"))
            .with_detail(serde_json::json!({ "kind": kind.as_str(), "count": devices.len() }));
        self.append_audit(&mut w, &tenant_chain(ctx.tenant), ev)
            .await?;
        self.commit(w).await?;
        Ok(devices)
    }

    /// The newest work items of a printer the caller can see, newest first.
    pub async fn work_list(
        &self,
        ctx: &Ctx,
        device: DeviceId,
    ) -> Result<Vec<WorkRecord>, StoreError> {
        self.device_get(ctx, device).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE tenant_id = $1 AND device_id = $2 ORDER BY created_at DESC LIMIT 100"
        ))
        .bind(ctx.tenant.to_string())
        .bind(device.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The printer's fetch: records its acknowledgements, then hands out its pending items
    /// (oldest first), counting the delivery. Called with the identity the printer proved by
    /// its sealed body. Acknowledgements of unknown or finished items are ignored (a replayed
    /// fetch changes nothing). `None`: the printer was removed or its key revoked.
    pub async fn work_fetch(
        &self,
        tenant: TenantId,
        device: DeviceId,
        acks: &[WorkAck],
    ) -> Result<Option<Vec<WorkRecord>>, StoreError> {
        let now = self.now_ms();
        let mut w = self.begin_write().await?;
        // Removed or revoked since its body was opened (e.g. during a long-poll): no work.
        let live = sqlx::query(
            "SELECT 1 FROM devices WHERE tenant_id = $1 AND id = $2 AND removed_at IS NULL AND revoked_at IS NULL",
        )
        .bind(tenant.to_string())
        .bind(device.to_string())
        .fetch_optional(&mut *w.tx)
        .await?;
        if live.is_none() {
            return Ok(None);
        }
        for a in acks {
            let status = match a.outcome {
                Outcome::Done => "done",
                Outcome::Failed => "failed",
                Outcome::Refused => "refused",
            };
            let done = sqlx::query(
                "UPDATE outbox SET status = $1, finished_at = $2, reason = $3 WHERE tenant_id = $4 AND id = $5 AND device_id = $6 AND status = 'pending'",
            )
            .bind(status)
            .bind(now)
            .bind(a.reason.clone())
            .bind(tenant.to_string())
            .bind(&a.id)
            .bind(device.to_string())
            .execute(&mut *w.tx)
            .await?;
            if done.rows_affected() > 0 {
                let kind: Option<String> =
                    sqlx::query("SELECT kind FROM outbox WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.to_string())
                        .bind(&a.id)
                        .fetch_optional(&mut *w.tx)
                        .await?
                        .map(|r| r.try_get(0))
                        .transpose()?;
                if kind.as_deref() == Some(WorkKind::ApplySettings.as_str()) {
                    self.record_remediation_ack(&mut w, tenant, device, a, now)
                        .await?;
                }
            }
        }
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE tenant_id = $1 AND device_id = $2 AND status = 'pending' ORDER BY created_at, id LIMIT $3"
        ))
        .bind(tenant.to_string())
        .bind(device.to_string())
        .bind(FETCH_BATCH)
        .fetch_all(&mut *w.tx)
        .await?;
        let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        for item in &items {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, sent_at = $1 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(now)
            .bind(tenant.to_string())
            .bind(&item.id)
            .execute(&mut *w.tx)
            .await?;
        }
        self.commit(w).await?;
        Ok(Some(items))
    }
}
