//! The audit log: per-tenant chains (plus one `deployment` chain for sign-ins and key
//! operations), each entry MACed with a key kept outside the database and chained to the previous
//! entry; the head is checkpointed outside the database after each commit.

use crate::checkpoint::Head;
use crate::{Store, StoreError, Tx};
use printfleet_domain::audit::AuditAction;
use printfleet_domain::{Actor, Ctx, Permission, TenantId};
use sqlx::Row;

pub const DEPLOYMENT_CHAIN: &str = "deployment";

pub fn tenant_chain(t: TenantId) -> String {
    t.to_string()
}

/// One thing to record. `detail` must hold no personal data or secrets.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: Actor,
    pub action: AuditAction,
    pub target: String,
    pub source: Option<String>,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(ctx: &Ctx, action: AuditAction, target: impl Into<String>) -> Self {
        Self {
            actor: ctx.actor,
            action,
            target: target.into(),
            source: ctx.source.clone(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub source: String,
    pub detail: serde_json::Value,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub chain: String,
    pub entries: i64,
    /// The first bad entry's sequence number and what is wrong with it.
    pub first_bad: Option<(i64, String)>,
}

/// A write transaction that may append audit entries; `commit` checkpoints their heads.
pub struct WriteTx {
    _guard: tokio::sync::OwnedMutexGuard<()>,
    pub(crate) tx: Tx,
    heads: Vec<(String, Head)>,
}

impl Store {
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let (guard, tx) = self.write().await?;
        Ok(WriteTx {
            _guard: guard,
            tx,
            heads: Vec::new(),
        })
    }

    pub(crate) async fn commit(&self, w: WriteTx) -> Result<(), StoreError> {
        w.tx.commit().await?;
        self.checkpoints.advance(&w.heads)
    }

    /// Appends an event to `chain` inside the transaction.
    pub(crate) async fn append_audit(
        &self,
        w: &mut WriteTx,
        chain: &str,
        ev: AuditEvent,
    ) -> Result<(), StoreError> {
        let last = sqlx::query(
            "SELECT seq, mac FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(chain)
        .fetch_optional(&mut *w.tx)
        .await?;
        let (prev_seq, prev_mac): (i64, Vec<u8>) = match last {
            Some(r) => (r.try_get(0)?, r.try_get(1)?),
            None => (0, Vec::new()),
        };
        let seq = prev_seq + 1;
        let at = self.clock.now_ms();
        let actor = ev.actor.audit_id();
        let source = ev.source.unwrap_or_default();
        let detail = ev.detail.to_string();
        let mac = mac_fields(
            self,
            &prev_mac,
            chain,
            seq,
            at,
            &actor,
            ev.action.as_str(),
            &ev.target,
            &source,
            &detail,
        );
        sqlx::query(
            "INSERT INTO audit_log (chain, seq, at, actor, action, target, source, detail, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(chain)
        .bind(seq)
        .bind(at)
        .bind(actor)
        .bind(ev.action.as_str())
        .bind(ev.target)
        .bind(source)
        .bind(detail)
        .bind(mac.to_vec())
        .execute(&mut *w.tx)
        .await?;
        w.heads.retain(|(c, _)| c != chain);
        w.heads.push((
            chain.to_string(),
            Head {
                seq,
                mac: hex::encode(mac),
            },
        ));
        Ok(())
    }

    /// Records one event on its own (sign-in failures and other events with no other write).
    pub async fn audit_standalone(&self, chain: &str, ev: AuditEvent) -> Result<(), StoreError> {
        let mut w = self.begin_write().await?;
        self.append_audit(&mut w, chain, ev).await?;
        self.commit(w).await
    }

    /// The tenant's audit entries after `after_seq`, oldest first.
    pub async fn audit_list(
        &self,
        ctx: &Ctx,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        ctx.require(Permission::AuditRead)?;
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, source, detail FROM audit_log WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant_chain(ctx.tenant))
        .bind(after_seq)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get(6)?;
                Ok(AuditEntry {
                    seq: r.try_get(0)?,
                    at_ms: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    target: r.try_get(4)?,
                    source: r.try_get(5)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }

    /// Verifies the caller's tenant chain.
    pub async fn audit_verify(&self, ctx: &Ctx) -> Result<VerifyReport, StoreError> {
        ctx.require(Permission::AuditRead)?;
        self.verify_chain(&tenant_chain(ctx.tenant)).await
    }

    /// Every chain that has entries or a checkpoint (for `printfleet admin audit verify`).
    pub async fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
        let mut chains: Vec<String> = sqlx::query("SELECT DISTINCT chain FROM audit_log")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        for c in self.checkpoints.read_all()?.into_keys() {
            if !chains.contains(&c) {
                chains.push(c);
            }
        }
        chains.sort();
        Ok(chains)
    }

    /// Walks a chain from the first entry and reports the first one that is missing, altered,
    /// or inconsistent with the checkpoint kept outside the database.
    pub async fn verify_chain(&self, chain: &str) -> Result<VerifyReport, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, target, source, detail, mac FROM audit_log WHERE chain = $1 ORDER BY seq",
        )
        .bind(chain)
        .fetch_all(&self.pool)
        .await?;
        let mut report = VerifyReport {
            chain: chain.to_string(),
            entries: rows.len() as i64,
            first_bad: None,
        };
        let mut prev_mac: Vec<u8> = Vec::new();
        let mut expected = 1_i64;
        let mut macs = std::collections::HashMap::new();
        for r in &rows {
            let seq: i64 = r.try_get(0)?;
            if seq != expected {
                report.first_bad = Some((expected, "entry is missing (deleted)".into()));
                return Ok(report);
            }
            let mac: Vec<u8> = r.try_get(7)?;
            let want = mac_fields(
                self,
                &prev_mac,
                chain,
                seq,
                r.try_get(1)?,
                &r.try_get::<String, _>(2)?,
                &r.try_get::<String, _>(3)?,
                &r.try_get::<String, _>(4)?,
                &r.try_get::<String, _>(5)?,
                &r.try_get::<String, _>(6)?,
            );
            if !printfleet_crypto::ct_eq(&want, &mac) {
                report.first_bad = Some((seq, "entry was altered (MAC does not match)".into()));
                return Ok(report);
            }
            macs.insert(seq, mac.clone());
            prev_mac = mac;
            expected += 1;
        }
        let last = expected - 1;
        match self.checkpoints.read_all()?.get(chain) {
            None if last > 0 => {
                report.first_bad = Some((1, "no checkpoint exists for this chain".into()));
            }
            None => {}
            Some(h) if h.seq > last => {
                report.first_bad = Some((
                    last + 1,
                    format!(
                        "entries {} to {} are missing (log truncated)",
                        last + 1,
                        h.seq
                    ),
                ));
            }
            Some(h) if macs.get(&h.seq).map(hex::encode).as_deref() != Some(h.mac.as_str()) => {
                report.first_bad = Some((
                    h.seq,
                    "entry differs from the checkpoint (chain was rewritten)".into(),
                ));
            }
            Some(_) => {}
        }
        Ok(report)
    }
}

#[allow(clippy::too_many_arguments)]
fn mac_fields(
    store: &Store,
    prev_mac: &[u8],
    chain: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    target: &str,
    source: &str,
    detail: &str,
) -> [u8; 32] {
    store.audit_key.mac(
        prev_mac,
        &[
            chain.as_bytes(),
            &seq.to_be_bytes(),
            &at.to_be_bytes(),
            actor.as_bytes(),
            action.as_bytes(),
            target.as_bytes(),
            source.as_bytes(),
            detail.as_bytes(),
        ],
    )
}
