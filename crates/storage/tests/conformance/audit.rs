//! The audit log through its API: listing, verifying, chains, standalone events, checkpoints.

use crate::harness::*;
use printfleet_domain::audit::AuditAction;
use printfleet_domain::{Actor, BuiltInRole, Permission};
use printfleet_storage::audit::{tenant_chain, AuditEvent, DEPLOYMENT_CHAIN};
use printfleet_storage::checkpoint::{Checkpoints, Head};

conformance! {
    check_audit_list => sqlite_audit_list, postgres_audit_list;
    check_audit_verify => sqlite_audit_verify, postgres_audit_verify;
    check_audit_chains => sqlite_audit_chains, postgres_audit_chains;
    check_audit_standalone => sqlite_audit_standalone, postgres_audit_standalone;
}

async fn check_audit_list(h: &Harness) {
    let ctx = h.ctx_a().await;
    for i in 0..5 {
        h.advance(10);
        h.store.group_create(&ctx, &format!("G{i}")).await.unwrap();
    }
    let all = h.store.audit_list(&ctx, 0, 1000).await.unwrap();
    // tenant_created, membership_changed (the harness's admin), five groups.
    assert_eq!(all.len(), 7);
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert_eq!(all[0].action, "tenant_created");
    assert_eq!(all[1].action, "membership_changed");
    assert_eq!(all[2].action, "group_created");
    assert_eq!(all[2].actor, format!("user:{}", h.admin_a.user));
    assert_eq!(all[2].source, "192.0.2.1");
    assert_eq!(all[2].detail, serde_json::json!({ "name": "G0" }));
    assert_eq!(all[6].at_ms, START_MS + 50);
    // Paging.
    let page = h.store.audit_list(&ctx, 3, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4, 5]);
    assert!(h.store.audit_list(&ctx, 7, 10).await.unwrap().is_empty());
    // A limit below 1 still returns one entry (clamped).
    assert_eq!(h.store.audit_list(&ctx, 0, 0).await.unwrap().len(), 1);

    // Tenant B sees only its own chain.
    let b = h.store.audit_list(&h.ctx_b().await, 0, 1000).await.unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].target, format!("tenant:{}", h.b));
    assert!(b.iter().all(|e| !e.target.starts_with("group:")));

    // audit.read is required.
    let ra = h
        .add_builtin(h.a, "ra@tenant-a.example", BuiltInRole::ReportAdmin)
        .await;
    let ra = h.ctx(&ra).await;
    assert_forbidden(h.store.audit_list(&ra, 0, 10).await, Permission::AuditRead);
    assert_forbidden(h.store.audit_verify(&ra).await, Permission::AuditRead);
}

async fn check_audit_verify(h: &Harness) {
    let ctx = h.ctx_a().await;
    for i in 0..3 {
        h.store.group_create(&ctx, &format!("G{i}")).await.unwrap();
    }
    let r = h.store.audit_verify(&ctx).await.unwrap();
    assert_eq!(r.chain, tenant_chain(h.a));
    assert_eq!(r.entries, 5);
    assert_eq!(r.first_bad, None);
    let rb = h.store.audit_verify(&h.ctx_b().await).await.unwrap();
    assert_eq!(rb.chain, h.b.to_string());
    assert_eq!(rb.entries, 2);
    assert_eq!(rb.first_bad, None);
    assert_eq!(h.store.verify_chain(&tenant_chain(h.a)).await.unwrap(), r);
    let d = h.store.verify_chain(DEPLOYMENT_CHAIN).await.unwrap();
    assert_eq!(d.entries, 2, "two people created");
    assert_eq!(d.first_bad, None);
    // A chain with nothing in it and no checkpoint is fine.
    let empty = h.store.verify_chain("no-such-chain").await.unwrap();
    assert_eq!((empty.entries, empty.first_bad), (0, None));
}

async fn check_audit_chains(h: &Harness) {
    let chains = h.store.audit_chains().await.unwrap();
    let mut want = vec![
        DEPLOYMENT_CHAIN.to_string(),
        tenant_chain(h.a),
        tenant_chain(h.b),
    ];
    want.sort();
    assert_eq!(chains, want);
    for c in &chains {
        assert_eq!(
            h.store.verify_chain(c).await.unwrap().first_bad,
            None,
            "{c}"
        );
    }
    // A chain known only to the checkpoint file (its rows all gone) is still listed.
    sqlx::query("DELETE FROM audit_log WHERE chain = $1")
        .bind(tenant_chain(h.b))
        .execute(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(h.store.audit_chains().await.unwrap(), want);
    let r = h.store.verify_chain(&tenant_chain(h.b)).await.unwrap();
    assert_eq!(r.entries, 0);
    assert_eq!(r.first_bad.map(|b| b.0), Some(1));
}

async fn check_audit_standalone(h: &Harness) {
    let before = h
        .store
        .verify_chain(DEPLOYMENT_CHAIN)
        .await
        .unwrap()
        .entries;
    let ev = AuditEvent {
        actor: Actor::System,
        action: AuditAction::SignInFailed,
        target: "email-index:abc".into(),
        source: Some("203.0.113.5".into()),
        detail: serde_json::json!({ "reason": "bad_password" }),
    };
    h.store
        .audit_standalone(DEPLOYMENT_CHAIN, ev)
        .await
        .unwrap();
    let r = h.store.verify_chain(DEPLOYMENT_CHAIN).await.unwrap();
    assert_eq!(r.entries, before + 1);
    assert_eq!(r.first_bad, None);
    // Into a tenant chain, through the context-based constructor.
    let ctx = h.ctx_a().await;
    let ev = AuditEvent::new(&ctx, AuditAction::LockedOut, "user:x")
        .with_detail(serde_json::json!({ "account": true }));
    h.store
        .audit_standalone(&tenant_chain(h.a), ev)
        .await
        .unwrap();
    let last = h.store.audit_list(&ctx, 0, 1000).await.unwrap();
    let last = last.last().unwrap();
    assert_eq!(last.action, "locked_out");
    assert_eq!(last.actor, format!("user:{}", h.admin_a.user));
    assert_eq!(last.source, "192.0.2.1");
    assert_eq!(last.detail, serde_json::json!({ "account": true }));
    assert_eq!(h.store.audit_verify(&ctx).await.unwrap().first_bad, None);
    // The checkpoint file now holds the new heads.
    let heads = Checkpoints::new(h.opts.checkpoint_path.clone())
        .read_all()
        .unwrap();
    assert_eq!(heads[&tenant_chain(h.a)].seq, last.seq);
    assert_eq!(heads[DEPLOYMENT_CHAIN].seq, before + 1);
}

#[test]
fn checkpoints_never_move_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Checkpoints::new(dir.path().join("cp.json"));
    assert!(
        cp.read_all().unwrap().is_empty(),
        "a missing file is no checkpoint"
    );
    let head = |seq: i64, mac: &str| Head {
        seq,
        mac: mac.into(),
    };
    cp.advance(&[("a".into(), head(3, "aa")), ("b".into(), head(1, "bb"))])
        .unwrap();
    cp.advance(&[("a".into(), head(2, "old"))]).unwrap();
    cp.advance(&[]).unwrap();
    let all = cp.read_all().unwrap();
    assert_eq!(all["a"], head(3, "aa"));
    assert_eq!(all["b"], head(1, "bb"));
    cp.advance(&[("a".into(), head(4, "new"))]).unwrap();
    assert_eq!(cp.read_all().unwrap()["a"], head(4, "new"));
    std::fs::write(dir.path().join("cp.json"), "not json").unwrap();
    assert!(
        cp.read_all().is_err(),
        "a damaged checkpoint file is an error, not empty"
    );
}
