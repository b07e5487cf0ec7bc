//! Check-ins (group-committed), device state and history, the outbox, key revocation and
//! re-enrolment, on both backends.

use crate::harness::*;
use printfleet_domain::catalogue::Catalogue;
use printfleet_domain::device::DeviceFacts;
use printfleet_domain::telemetry::DataClass;
use printfleet_domain::{BuiltInRole, Ctx, DeviceId, Permission, RoleRef, Scope};
use printfleet_protocol::messages::{CheckIn, Meters, Outcome, ReportedValue, WorkAck};
use printfleet_protocol::KeyPair;
use printfleet_storage::enrolment::{EnrolRefusal, Takeover};
use printfleet_storage::outbox::WorkKind;
use printfleet_storage::provision::ProvisionPlan;
use printfleet_storage::resolver;
use printfleet_storage::telemetry::CheckInOutcome;
use std::sync::Arc;

conformance! {
    check_check_ins => sqlite_check_ins, postgres_check_ins;
    check_concurrent_check_ins_are_all_stored => sqlite_concurrent_check_ins, postgres_concurrent_check_ins;
    check_outbox => sqlite_outbox, postgres_outbox;
    check_group_outbox => sqlite_group_outbox, postgres_group_outbox;
    check_revocation_and_reenrolment => sqlite_revocation_and_reenrolment, postgres_revocation_and_reenrolment;
    check_reassess_only_on_settings => sqlite_reassess_only_on_settings, postgres_reassess_only_on_settings;
}

/// A report that changes only meters (or supplies, events) cannot change compliance: it is
/// stored, but the printer is not due for assessment; a changed setting makes it due.
async fn check_reassess_only_on_settings(h: &Harness) {
    let (d, _, _) = enrol(h, "R1").await;
    let c = catalogue();
    let due = || async {
        h.store
            .assessment_due_after(None, 1000)
            .await
            .unwrap()
            .contains(&(h.a, d))
    };
    let first = h.store.check_in(h.a, d, report(1, 100), c.clone()).await;
    assert!(matches!(
        first,
        Ok(CheckInOutcome::Stored { reassess: true })
    ));
    assert!(due().await);
    h.store.assess_devices(&c, h.a, &[d]).await.unwrap();
    assert!(!due().await);

    h.advance(1000);
    let meters_only = h.store.check_in(h.a, d, report(2, 200), c.clone()).await;
    assert!(matches!(
        meters_only,
        Ok(CheckInOutcome::Stored { reassess: false })
    ));
    assert!(!due().await, "a meters-only report made the printer due");
    let a = h.ctx_a().await;
    let state = h.store.device_state(&a, d).await.unwrap().unwrap();
    assert_eq!(state.seq, 2);
    assert_eq!(state.meters.unwrap().total_impressions, 200);

    h.advance(1000);
    let mut changed = report(3, 300);
    changed.settings.insert(
        "network.telnet.enabled".to_string(),
        ReportedValue::Bool(false),
    );
    let third = h.store.check_in(h.a, d, changed, c.clone()).await;
    assert!(matches!(
        third,
        Ok(CheckInOutcome::Stored { reassess: true })
    ));
    assert!(
        due().await,
        "a changed setting did not make the printer due"
    );
    h.store.assess_devices(&c, h.a, &[d]).await.unwrap();
    assert!(!due().await);
}

fn catalogue() -> Arc<Catalogue> {
    Arc::new(Catalogue::builtin().unwrap())
}

fn report(seq: u64, total: u64) -> CheckIn {
    CheckIn {
        seq,
        taken_at_ms: 1,
        info: None,
        meters: Some(Meters {
            total_impressions: total,
            ..Meters::default()
        }),
        supplies: None,
        events: vec![],
        settings: [(
            "network.telnet.enabled".to_string(),
            ReportedValue::Bool(true),
        )]
        .into_iter()
        .collect(),
    }
}

async fn enrol(h: &Harness, serial: &str) -> (DeviceId, KeyPair, String) {
    let (_, secret) = h
        .store
        .enrolment_token_create(&Ctx::system(h.a), "t", 3_600_000, None)
        .await
        .unwrap();
    let key = KeyPair::generate(&mut printfleet_protocol::system_rng());
    let facts = DeviceFacts::parse(serial, "LaserJet M507", "2506.1").unwrap();
    let e = h
        .store
        .enrol_device(
            secret.expose(),
            &facts,
            &key.public.to_bytes(),
            None,
            Takeover::None,
        )
        .await
        .unwrap()
        .unwrap();
    (e.device, key, secret.expose().to_string())
}

async fn check_check_ins(h: &Harness) {
    let (d, _, _) = enrol(h, "T1").await;
    let a = h.ctx_a().await;
    let c = catalogue();
    let stored = |r: CheckInOutcome| matches!(r, CheckInOutcome::Stored { .. });
    assert!(stored(
        h.store
            .check_in(h.a, d, report(1, 100), c.clone())
            .await
            .unwrap()
    ));
    assert!(matches!(
        h.store
            .check_in(h.a, d, report(1, 100), c.clone())
            .await
            .unwrap(),
        CheckInOutcome::Duplicate
    ));
    match h
        .store
        .check_in(h.a, d, report(2, 99), c.clone())
        .await
        .unwrap()
    {
        CheckInOutcome::Refused(r) => {
            assert_eq!(
                (r.code, r.field.as_str()),
                ("counter_backwards", "meters.total_impressions")
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(stored(
        h.store
            .check_in(h.a, d, report(2, 150), c.clone())
            .await
            .unwrap()
    ));
    let s = h.store.device_state(&a, d).await.unwrap().unwrap();
    assert_eq!((s.seq, s.meters.unwrap().total_impressions), (2, 150));
    assert_eq!(s.provenance["settings.network.telnet.enabled"].seq, 2);
    let hist = h
        .store
        .device_history(&a, d, Some(DataClass::Meters), 10)
        .await
        .unwrap();
    assert_eq!(hist.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 1]);
    // Another tenant cannot see it; a Report Admin lacks devices.read.
    assert_not_found(h.store.device_state(&h.ctx_b().await, d).await);
    let ra = h
        .add_builtin(h.a, "ra@a.example", BuiltInRole::ReportAdmin)
        .await;
    assert_forbidden(
        h.store.device_history(&h.ctx(&ra).await, d, None, 10).await,
        Permission::DevicesRead,
    );
    // A removed printer's reports are not stored.
    h.store.device_remove(&a, d).await.unwrap();
    assert!(matches!(
        h.store.check_in(h.a, d, report(3, 200), c).await.unwrap(),
        CheckInOutcome::Gone
    ));
}

async fn check_concurrent_check_ins_are_all_stored(h: &Harness) {
    let mut devices = Vec::new();
    for i in 0..8 {
        devices.push(enrol(h, &format!("C{i}")).await.0);
    }
    let c = catalogue();
    let mut tasks = Vec::new();
    for d in &devices {
        for seq in 1..=25u64 {
            let (store, c, d, a) = (h.store.clone(), c.clone(), *d, h.a);
            tasks.push(tokio::spawn(async move {
                store.check_in(a, d, report(seq, seq * 10), c).await
            }));
        }
    }
    for t in tasks {
        // Out-of-order arrivals are refused (counter backwards) or duplicates, never errors.
        t.await.unwrap().unwrap();
    }
    let a = h.ctx_a().await;
    for d in &devices {
        // Whatever order they landed in, the history holds each stored seq once and the state
        // is the highest stored one.
        let hist = h
            .store
            .device_history(&a, *d, Some(DataClass::Meters), 1000)
            .await
            .unwrap();
        let mut seqs: Vec<_> = hist.iter().map(|e| e.seq).collect();
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), n, "no seq stored twice");
        let s = h.store.device_state(&a, *d).await.unwrap().unwrap();
        assert_eq!(s.seq as i64, *seqs.last().unwrap());
    }
}

async fn check_outbox(h: &Harness) {
    let (d, _, _) = enrol(h, "O1").await;
    let a = h.ctx_a().await;
    assert!(!resolver::work_pending(&h.store, d).await.unwrap());
    let w = h
        .store
        .work_enqueue(&a, d, WorkKind::ReportNow, serde_json::Value::Null)
        .await
        .unwrap();
    assert!(resolver::work_pending(&h.store, d).await.unwrap());
    // Another tenant cannot queue work for it; a Report Admin may not.
    assert_not_found(
        h.store
            .work_enqueue(
                &h.ctx_b().await,
                d,
                WorkKind::ReportNow,
                serde_json::Value::Null,
            )
            .await,
    );
    let ra = h
        .add_builtin(h.a, "ra2@a.example", BuiltInRole::ReportAdmin)
        .await;
    assert!(h
        .store
        .work_enqueue(
            &h.ctx(&ra).await,
            d,
            WorkKind::ReportNow,
            serde_json::Value::Null
        )
        .await
        .is_err());
    // Delivered until acknowledged; each delivery counted.
    let got = h.store.work_fetch(h.a, d, &[]).await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, w.id);
    let again = h.store.work_fetch(h.a, d, &[]).await.unwrap().unwrap();
    assert_eq!(again.len(), 1);
    let ack = WorkAck::new(w.id.clone(), Outcome::Failed, Some("paper jam".into()));
    assert!(h
        .store
        .work_fetch(h.a, d, std::slice::from_ref(&ack))
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    // A replayed acknowledgement changes nothing.
    assert!(h
        .store
        .work_fetch(h.a, d, &[ack])
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    let list = h.store.work_list(&a, d).await.unwrap();
    assert_eq!(
        (
            list[0].status.as_str(),
            list[0].attempts,
            list[0].reason.as_deref()
        ),
        ("failed", 2, Some("paper jam"))
    );
    assert!(!resolver::work_pending(&h.store, d).await.unwrap());
    // Survives reopening the store (a restart): queue, reopen, fetch.
    let w2 = h
        .store
        .work_enqueue(&a, d, WorkKind::ReportNow, serde_json::Value::Null)
        .await
        .unwrap();
    let reopened = h.reopen(h.keys.masters.clone()).await.unwrap();
    let got = reopened.work_fetch(h.a, d, &[]).await.unwrap().unwrap();
    assert_eq!(got[0].id, w2.id);
    reopened.close().await;
}

/// Work for a whole group: one transaction (several multi-row statements), one audit entry with
/// the count, removed printers and printers outside the group left out; visibility before
/// permission, as for one printer.
async fn check_group_outbox(h: &Harness) {
    let a = h.ctx_a().await;
    let (token, _) = h
        .store
        .enrolment_token_create(&Ctx::system(h.a), "t", 3_600_000, None)
        .await
        .unwrap();
    // More printers than one statement holds, so the batching is exercised.
    let plan = ProvisionPlan {
        count: 40,
        serial_prefix: "GW-".into(),
        model: "LaserJet M507".into(),
        firmware: "2506.1".into(),
    };
    let printers: Vec<DeviceId> = h
        .store
        .provision_printers(&a, token.id, &plan, &|_| {})
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.device)
        .collect();
    let g = h.store.group_create(&a, "Floor 3").await.unwrap();
    let other = h.store.group_create(&a, "Floor 4").await.unwrap();
    let (members, outside) = printers.split_at(37);
    for d in members {
        h.store.group_add_device(&a, g.id, *d).await.unwrap();
    }
    h.store
        .group_add_device(&a, other.id, outside[0])
        .await
        .unwrap();
    h.store.device_remove(&a, members[0]).await.unwrap();

    // Another tenant, or a scope without the group: not found. A Report Admin: forbidden.
    assert_not_found(
        h.store
            .work_enqueue_group(
                &h.ctx_b().await,
                g.id,
                WorkKind::ReportNow,
                serde_json::Value::Null,
            )
            .await,
    );
    let narrow = h
        .add(
            h.a,
            "narrow@a.example",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Groups([other.id].into_iter().collect()),
        )
        .await;
    assert_not_found(
        h.store
            .work_enqueue_group(
                &h.ctx(&narrow).await,
                g.id,
                WorkKind::ReportNow,
                serde_json::Value::Null,
            )
            .await,
    );
    let ra = h
        .add_builtin(h.a, "ra3@a.example", BuiltInRole::ReportAdmin)
        .await;
    assert_forbidden(
        h.store
            .work_enqueue_group(
                &h.ctx(&ra).await,
                g.id,
                WorkKind::ReportNow,
                serde_json::Value::Null,
            )
            .await,
        Permission::DevicesManage,
    );
    for d in &printers {
        assert!(!resolver::work_pending(&h.store, *d).await.unwrap());
    }

    // A Printer Admin scoped to the group may.
    let scoped = h
        .add(
            h.a,
            "scoped3@a.example",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Groups([g.id].into_iter().collect()),
        )
        .await;
    let mut queued = h
        .store
        .work_enqueue_group(
            &h.ctx(&scoped).await,
            g.id,
            WorkKind::ReportNow,
            serde_json::Value::Null,
        )
        .await
        .unwrap();
    queued.sort_unstable();
    let mut want = members[1..].to_vec();
    want.sort_unstable();
    assert_eq!(queued, want, "every live member, nobody else");
    for d in &members[1..] {
        assert!(resolver::work_pending(&h.store, *d).await.unwrap());
    }
    for d in outside {
        assert!(!resolver::work_pending(&h.store, *d).await.unwrap());
    }
    // Each member fetches one `report_now` item of its own; acknowledged, it is closed.
    let d = members[5];
    let got = h.store.work_fetch(h.a, d, &[]).await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].device, got[0].kind.as_str()), (d, "report_now"));
    let ack = WorkAck::new(got[0].id.clone(), Outcome::Done, None);
    assert!(h
        .store
        .work_fetch(h.a, d, &[ack])
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    assert_eq!(h.store.work_list(&a, d).await.unwrap()[0].status, "done");
    assert!(resolver::work_pending(&h.store, members[6]).await.unwrap());

    // One audit entry for the group, with the count.
    let entries: Vec<_> = h
        .store
        .audit_list(&a, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "device_work_queued")
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target, format!("group:{}", g.id));
    assert_eq!(entries[0].detail["count"], 36);
    assert_eq!(entries[0].detail["kind"], "report_now");

    // An empty group queues nothing (and says so).
    let empty = h.store.group_create(&a, "Empty").await.unwrap();
    assert!(h
        .store
        .work_enqueue_group(&a, empty.id, WorkKind::ReportNow, serde_json::Value::Null)
        .await
        .unwrap()
        .is_empty());
}

async fn check_revocation_and_reenrolment(h: &Harness) {
    let (d, key, token) = enrol(h, "R1").await;
    let a = h.ctx_a().await;
    let kid = key.public.key_id();
    assert!(
        !resolver::device_by_kem_key(&h.store, &kid.0)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    h.store
        .check_in(h.a, d, report(5, 50), catalogue())
        .await
        .unwrap();
    h.store.device_revoke_key(&a, d).await.unwrap();
    assert!(
        resolver::device_by_kem_key(&h.store, &kid.0)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(matches!(
        h.store
            .check_in(h.a, d, report(6, 60), catalogue())
            .await
            .unwrap(),
        CheckInOutcome::Gone
    ));
    assert!(h.store.work_fetch(h.a, d, &[]).await.unwrap().is_none());
    let facts = DeviceFacts::parse("R1", "LaserJet M507", "2506.2").unwrap();
    let new_key = KeyPair::generate(&mut printfleet_protocol::system_rng());
    assert_eq!(
        h.store
            .enrol_device(
                &token,
                &facts,
                &new_key.public.to_bytes(),
                None,
                Takeover::None
            )
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::AlreadyEnrolled
    );
    // A proof for another printer is refused.
    assert_eq!(
        h.store
            .enrol_device(
                &token,
                &facts,
                &new_key.public.to_bytes(),
                None,
                Takeover::Proven(DeviceId::new_random())
            )
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::BadProof
    );
    // Replay windows: this printer's current heartbeat key, and another printer's.
    let hb_key = |d: DeviceId| async move {
        let hex: String = sqlx::query_scalar("SELECT hb_key_id FROM devices WHERE id = $1")
            .bind(d.to_string())
            .fetch_one(h.store.raw_pool())
            .await
            .unwrap();
        <[u8; 8]>::try_from(hex::decode(hex).unwrap()).unwrap()
    };
    let (other, _, _) = enrol(h, "R2").await;
    let (old_key, other_key) = (hb_key(d).await, hb_key(other).await);
    resolver::heartbeat_windows_save_many(
        &h.store,
        &[(d, old_key, &[1, 2][..]), (other, other_key, &[3, 4][..])],
    )
    .await
    .unwrap();
    let until = h.store.device_approve_reenrolment(&a, d).await.unwrap();
    assert!(until > h.store.now_ms());
    let e = h
        .store
        .enrol_device(
            &token,
            &facts,
            &new_key.public.to_bytes(),
            None,
            Takeover::None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.device, e.key_version), (d, 2));
    let dev = h.store.device_get(&a, d).await.unwrap();
    assert_eq!(
        (
            dev.firmware.as_str(),
            dev.revoked_at_ms,
            dev.reenrol_approved_until_ms
        ),
        ("2506.2", None, None)
    );
    // The old heartbeat key's window is gone; the other printer's is not.
    assert_ne!(hb_key(d).await, old_key);
    assert_eq!(
        resolver::heartbeat_windows_load_many(&h.store, &[old_key, other_key])
            .await
            .unwrap(),
        vec![(other_key, vec![3, 4])]
    );
    // The old key is gone, the new one works; reports restart at seq 1.
    assert!(resolver::device_by_kem_key(&h.store, &kid.0)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        h.store
            .check_in(h.a, d, report(1, 70), catalogue())
            .await
            .unwrap(),
        CheckInOutcome::Stored { .. }
    ));
    // The approval was used up.
    let third = KeyPair::generate(&mut printfleet_protocol::system_rng());
    assert_eq!(
        h.store
            .enrol_device(
                &token,
                &facts,
                &third.public.to_bytes(),
                None,
                Takeover::None
            )
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::AlreadyEnrolled
    );
    // Proven by its current key: allowed.
    let e = h
        .store
        .enrol_device(
            &token,
            &facts,
            &third.public.to_bytes(),
            None,
            Takeover::Proven(d),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.key_version, 3);
    // Audited.
    let actions: Vec<_> = h
        .store
        .audit_list(&a, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for want in [
        "device_key_revoked",
        "device_reenrolment_approved",
        "device_reenrolled",
    ] {
        assert!(actions.iter().any(|x| x == want), "{want} in {actions:?}");
    }
}
