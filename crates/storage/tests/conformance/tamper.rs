//! Tampering with the audit log directly in the database, and what `verify_chain` reports.

use crate::harness::*;
use printfleet_crypto::AuditKey;
use printfleet_storage::audit::tenant_chain;
use sqlx::Row;

conformance! {
    check_untouched_chain_verifies => sqlite_untouched_chain_verifies, postgres_untouched_chain_verifies;
    check_tamper_edit_field => sqlite_tamper_edit_field, postgres_tamper_edit_field;
    check_tamper_delete_middle => sqlite_tamper_delete_middle, postgres_tamper_delete_middle;
    check_tamper_truncate_tail => sqlite_tamper_truncate_tail, postgres_tamper_truncate_tail;
    check_tamper_recompute_other_key => sqlite_tamper_recompute_other_key, postgres_tamper_recompute_other_key;
    check_tamper_recompute_same_key => sqlite_tamper_recompute_same_key, postgres_tamper_recompute_same_key;
    check_tamper_checkpoint_removed => sqlite_tamper_checkpoint_removed, postgres_tamper_checkpoint_removed;
}

/// One audit row as stored.
struct Raw {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    target: String,
    source: String,
    detail: String,
    mac: Vec<u8>,
}

/// The MAC as `mac_fields` in `audit.rs` lays it out.
fn mac(key: &AuditKey, prev: &[u8], chain: &str, r: &Raw) -> [u8; 32] {
    key.mac(
        prev,
        &[
            chain.as_bytes(),
            &r.seq.to_be_bytes(),
            &r.at.to_be_bytes(),
            r.actor.as_bytes(),
            r.action.as_bytes(),
            r.target.as_bytes(),
            r.source.as_bytes(),
            r.detail.as_bytes(),
        ],
    )
}

async fn rows(h: &Harness, chain: &str) -> Vec<Raw> {
    sqlx::query(
        "SELECT seq, at, actor, action, target, source, detail, mac FROM audit_log WHERE chain = $1 ORDER BY seq",
    )
    .bind(chain)
    .fetch_all(h.store.raw_pool())
    .await
    .unwrap()
    .iter()
    .map(|r| Raw {
        seq: r.get(0),
        at: r.get(1),
        actor: r.get(2),
        action: r.get(3),
        target: r.get(4),
        source: r.get(5),
        detail: r.get(6),
        mac: r.get(7),
    })
    .collect()
}

/// Tenant A's chain with `n` entries in all (several audited actions by its admin).
async fn chain_with(h: &Harness, n: usize) -> String {
    let ctx = h.ctx_a().await;
    let mut i = 0;
    while rows(h, &tenant_chain(h.a)).await.len() < n {
        h.advance(1_000);
        h.store
            .group_create(&ctx, &format!("Group {i}"))
            .await
            .unwrap();
        i += 1;
    }
    let chain = tenant_chain(h.a);
    let r = h.store.verify_chain(&chain).await.unwrap();
    assert_eq!((r.entries, r.first_bad), (n as i64, None));
    chain
}

async fn first_bad(h: &Harness, chain: &str) -> Option<i64> {
    let r = h.store.verify_chain(chain).await.unwrap();
    r.first_bad.map(|(seq, why)| {
        assert!(!why.is_empty());
        seq
    })
}

/// Rewrites entries from `from` on with `key`, chaining from the stored MAC before `from`.
async fn rewrite_from(h: &Harness, chain: &str, from: i64, key: &AuditKey) {
    let all = rows(h, chain).await;
    let mut prev: Vec<u8> = all
        .iter()
        .find(|r| r.seq == from - 1)
        .map(|r| r.mac.clone())
        .unwrap_or_default();
    for r in all.iter().filter(|r| r.seq >= from) {
        let m = mac(key, &prev, chain, r);
        sqlx::query("UPDATE audit_log SET target = $1, mac = $2 WHERE chain = $3 AND seq = $4")
            .bind(&r.target)
            .bind(m.to_vec())
            .bind(chain)
            .bind(r.seq)
            .execute(h.store.raw_pool())
            .await
            .unwrap();
        prev = m.to_vec();
    }
}

async fn set_target(h: &Harness, chain: &str, seq: i64, target: &str) {
    let n = sqlx::query("UPDATE audit_log SET target = $1 WHERE chain = $2 AND seq = $3")
        .bind(target)
        .bind(chain)
        .bind(seq)
        .execute(h.store.raw_pool())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 1);
}

async fn check_untouched_chain_verifies(h: &Harness) {
    let chain = chain_with(h, 8).await;
    // The test's MAC layout is the store's: recomputing every entry gives the stored MACs (so the
    // recompute checks below really forge with the same layout).
    let key = AuditKey::from_bytes(AUDIT_KEY);
    let mut prev = Vec::new();
    for r in rows(h, &chain).await {
        assert_eq!(
            mac(&key, &prev, &chain, &r).to_vec(),
            r.mac,
            "seq {}",
            r.seq
        );
        prev = r.mac;
    }
    for c in h.store.audit_chains().await.unwrap() {
        assert_eq!(first_bad(h, &c).await, None, "{c}");
    }
    assert_eq!(
        h.store
            .audit_verify(&h.ctx_a().await)
            .await
            .unwrap()
            .first_bad,
        None
    );
}

async fn check_tamper_edit_field(h: &Harness) {
    let chain = chain_with(h, 6).await;
    set_target(h, &chain, 3, "x").await;
    assert_eq!(first_bad(h, &chain).await, Some(3));
    let r = h.store.audit_verify(&h.ctx_a().await).await.unwrap();
    assert_eq!(r.first_bad.unwrap().0, 3);
    // Other chains are unaffected.
    assert_eq!(first_bad(h, &tenant_chain(h.b)).await, None);
    // Any column counts: the time of a later entry.
    let chain_b = tenant_chain(h.b);
    sqlx::query("UPDATE audit_log SET at = at + 1 WHERE chain = $1 AND seq = $2")
        .bind(&chain_b)
        .bind(2_i64)
        .execute(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(first_bad(h, &chain_b).await, Some(2));
}

async fn check_tamper_delete_middle(h: &Harness) {
    let chain = chain_with(h, 7).await;
    sqlx::query("DELETE FROM audit_log WHERE chain = $1 AND seq = $2")
        .bind(&chain)
        .bind(4_i64)
        .execute(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(first_bad(h, &chain).await, Some(4));
    // Renumbering the rest to close the gap does not help: the chain of MACs breaks.
    for seq in 5..=7_i64 {
        sqlx::query("UPDATE audit_log SET seq = $1 WHERE chain = $2 AND seq = $3")
            .bind(seq - 1)
            .bind(&chain)
            .bind(seq)
            .execute(h.store.raw_pool())
            .await
            .unwrap();
    }
    assert_eq!(first_bad(h, &chain).await, Some(4));
}

async fn check_tamper_truncate_tail(h: &Harness) {
    let chain = chain_with(h, 7).await;
    sqlx::query("DELETE FROM audit_log WHERE chain = $1 AND seq > $2")
        .bind(&chain)
        .bind(5_i64)
        .execute(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(rows(h, &chain).await.len(), 5);
    // Every remaining MAC is intact; only the checkpoint outside the database tells.
    let r = h.store.verify_chain(&chain).await.unwrap();
    assert_eq!(r.entries, 5);
    let (seq, why) = r.first_bad.expect("a truncated tail is detected");
    assert_eq!(seq, 6);
    assert!(why.contains("truncated"), "{why}");
}

async fn check_tamper_recompute_other_key(h: &Harness) {
    let chain = chain_with(h, 7).await;
    set_target(h, &chain, 3, "group:forged").await;
    rewrite_from(h, &chain, 3, &AuditKey::from_bytes([8; 32])).await;
    assert_eq!(first_bad(h, &chain).await, Some(3));
}

async fn check_tamper_recompute_same_key(h: &Harness) {
    // Even with the audit key, a rewritten chain differs from the checkpoint kept outside.
    let chain = chain_with(h, 7).await;
    set_target(h, &chain, 3, "group:forged").await;
    rewrite_from(h, &chain, 3, &AuditKey::from_bytes(AUDIT_KEY)).await;
    let r = h.store.verify_chain(&chain).await.unwrap();
    let (seq, why) = r.first_bad.expect("a rewritten chain is detected");
    assert_eq!(seq, 7, "found at the checkpointed head");
    assert!(why.contains("checkpoint"), "{why}");
}

async fn check_tamper_checkpoint_removed(h: &Harness) {
    let chain = chain_with(h, 4).await;
    std::fs::remove_file(&h.opts.checkpoint_path).unwrap();
    let r = h.store.verify_chain(&chain).await.unwrap();
    let (seq, why) = r.first_bad.expect("a missing checkpoint is reported");
    assert_eq!(seq, 1);
    assert!(why.contains("checkpoint"), "{why}");
}
