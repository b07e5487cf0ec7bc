//! Enrolment tokens, enrolment, devices, group membership, the server key, and device identity
//! resolution.

use crate::harness::*;
use printfleet_domain::device::DeviceFacts;
use printfleet_domain::{BuiltInRole, Ctx, DeviceId, Permission, RoleRef, Scope};
use printfleet_protocol::heartbeat::derive_heartbeat_key;
use printfleet_protocol::KeyPair;
use printfleet_storage::enrolment::EnrolRefusal;
use printfleet_storage::enrolment::Takeover;
use printfleet_storage::resolver;
use printfleet_storage::window_log::WindowLog;

conformance! {
    check_enrolment_tokens => sqlite_enrolment_tokens, postgres_enrolment_tokens;
    check_enrolment_refusals => sqlite_enrolment_refusals, postgres_enrolment_refusals;
    check_devices_scope_and_removal => sqlite_devices_scope_and_removal, postgres_devices_scope_and_removal;
    check_server_keypair => sqlite_server_keypair, postgres_server_keypair;
    check_device_secrets_survive_key_roll => sqlite_device_secrets_survive_key_roll, postgres_device_secrets_survive_key_roll;
    check_heartbeat_windows => sqlite_heartbeat_windows, postgres_heartbeat_windows;
    check_heartbeat_windows_many => sqlite_heartbeat_windows_many, postgres_heartbeat_windows_many;
    check_heartbeat_window_log => sqlite_heartbeat_window_log, postgres_heartbeat_window_log;
}

async fn log_rows(store: &printfleet_storage::Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM heartbeat_window_log")
        .fetch_one(store.raw_pool())
        .await
        .unwrap()
}

/// The doorbell's window log: a group commit is one log row; loads see the newest window at
/// once; a log left by a crash (no compaction) is folded into `heartbeat_windows` when the next
/// run opens it; a compaction moves the windows there and empties the log.
async fn check_heartbeat_window_log(h: &Harness) {
    let a = h.ctx_a().await;
    let d1 = enrol(h, &a, "WL1").await;
    let d2 = enrol(h, &a, "WL2").await;
    let (k1, k2, k3) = ([0x11u8; 8], [0x22u8; 8], [0x33u8; 8]);
    // No background compaction: what is in the log at the "crash" is known.
    let log = WindowLog::open_with(&h.store, None).await.unwrap();
    log.save_many(&[(d1, k1, &[1]), (d2, k2, &[2, 2])])
        .await
        .unwrap();
    log.save_many(&[(d1, k1, &[3, 3, 3])]).await.unwrap();
    log.save_many(&[]).await.unwrap();
    assert_eq!(log_rows(&h.store).await, 2);
    let mut got = log.load_many(&[k1, k2, k3]).await.unwrap();
    got.sort();
    assert_eq!(got, [(k1, vec![3, 3, 3]), (k2, vec![2, 2])]);
    // Not yet in the table: the log is what made them durable.
    assert!(resolver::heartbeat_windows_load_many(&h.store, &[k1, k2])
        .await
        .unwrap()
        .is_empty());
    drop(log);

    let reopened = h.reopen(h.keys.masters.clone()).await.unwrap();
    let log = WindowLog::open_with(&reopened, None).await.unwrap();
    assert_eq!(log_rows(&reopened).await, 0, "the log is folded at open");
    let mut table = resolver::heartbeat_windows_load_many(&reopened, &[k1, k2, k3])
        .await
        .unwrap();
    table.sort();
    assert_eq!(table, [(k1, vec![3, 3, 3]), (k2, vec![2, 2])]);

    log.save_many(&[(d2, k2, &[4]), (d2, k3, &[5])])
        .await
        .unwrap();
    assert_eq!(log.dirty_len(), 2);
    assert_eq!(log.compact().await.unwrap(), 2);
    assert_eq!(log.compact().await.unwrap(), 0, "nothing left to fold");
    assert_eq!(log.dirty_len(), 0);
    assert_eq!(log_rows(&reopened).await, 0);
    let mut table = resolver::heartbeat_windows_load_many(&reopened, &[k1, k2, k3])
        .await
        .unwrap();
    table.sort();
    assert_eq!(table, [(k1, vec![3, 3, 3]), (k2, vec![4]), (k3, vec![5])]);
    let mut got = log.load_many(&[k2, k1]).await.unwrap();
    got.sort();
    assert_eq!(got, [(k1, vec![3, 3, 3]), (k2, vec![4])]);
    drop(log);
    reopened.close().await;
}

/// The doorbell's group commit: new and existing windows of many keys in one call; each key
/// reads back exactly its own latest window (also across a restart).
async fn check_heartbeat_windows_many(h: &Harness) {
    let a = h.ctx_a().await;
    let d1 = enrol(h, &a, "WM1").await;
    let d2 = enrol(h, &a, "WM2").await;
    let (k1, k2, k3) = ([1u8; 8], [2u8; 8], [0xfeu8; 8]);
    resolver::heartbeat_window_save(&h.store, d1, &k1, &[9, 9])
        .await
        .unwrap();
    let big: Vec<u8> = (0..=255).collect();
    resolver::heartbeat_windows_save_many(
        &h.store,
        &[(d1, k1, &[0, 1, 0xff]), (d2, k2, &big), (d2, k3, &[])],
    )
    .await
    .unwrap();
    let mut got = resolver::heartbeat_windows_load_many(&h.store, &[k1, k2, k3, [5u8; 8]])
        .await
        .unwrap();
    got.sort();
    assert_eq!(
        got,
        [(k1, vec![0, 1, 0xff]), (k2, big.clone()), (k3, vec![])]
    );
    resolver::heartbeat_windows_save_many(&h.store, &[])
        .await
        .unwrap();
    let reopened = h.reopen(h.keys.masters.clone()).await.unwrap();
    assert_eq!(
        resolver::heartbeat_window_load(&reopened, &k2)
            .await
            .unwrap(),
        Some(big)
    );
    reopened.close().await;
}

async fn check_heartbeat_windows(h: &Harness) {
    let a = h.ctx_a().await;
    let device = enrol(h, &a, "W1").await;
    let key_id = [7u8; 8];
    assert_eq!(
        resolver::heartbeat_window_load(&h.store, &key_id)
            .await
            .unwrap(),
        None
    );
    resolver::heartbeat_window_save(&h.store, device, &key_id, &[1, 2, 3])
        .await
        .unwrap();
    assert_eq!(
        resolver::heartbeat_window_load(&h.store, &key_id)
            .await
            .unwrap(),
        Some(vec![1, 2, 3])
    );
    resolver::heartbeat_window_save(&h.store, device, &key_id, &[4, 5])
        .await
        .unwrap();
    assert_eq!(
        resolver::heartbeat_window_load(&h.store, &key_id)
            .await
            .unwrap(),
        Some(vec![4, 5])
    );
    // Survives reopening the store (a server restart).
    let reopened = h.reopen(h.keys.masters.clone()).await.unwrap();
    assert_eq!(
        resolver::heartbeat_window_load(&reopened, &key_id)
            .await
            .unwrap(),
        Some(vec![4, 5])
    );
    reopened.close().await;
}

fn key() -> KeyPair {
    KeyPair::generate(&mut printfleet_protocol::system_rng())
}

fn facts(serial: &str) -> DeviceFacts {
    DeviceFacts::parse(serial, "LaserJet M507", "2506.1").unwrap()
}

async fn enrol(h: &Harness, ctx: &Ctx, serial: &str) -> DeviceId {
    let (_, secret) = h
        .store
        .enrolment_token_create(ctx, "t", 3_600_000, None)
        .await
        .unwrap();
    h.store
        .enrol_device(
            secret.expose(),
            &facts(serial),
            &key().public.to_bytes(),
            None,
            Takeover::None,
        )
        .await
        .unwrap()
        .unwrap()
        .device
}

async fn check_enrolment_tokens(h: &Harness) {
    let a = h.ctx_a().await;
    let (t, secret) = h
        .store
        .enrolment_token_create(&a, "HQ", 3_600_000, Some(2))
        .await
        .unwrap();
    assert!(secret.expose().starts_with("pfe_"));
    let list = h.store.enrolment_tokens_list(&a).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id, list[0].uses, list[0].max_uses),
        (t.id, 0, Some(2))
    );
    assert!(h
        .store
        .enrolment_tokens_list(&h.ctx_b().await)
        .await
        .unwrap()
        .is_empty());
    assert_not_found(h.store.enrolment_token_revoke(&h.ctx_b().await, t.id).await);
    assert_invalid(
        h.store
            .enrolment_token_create(&a, "", 3_600_000, None)
            .await,
        "name",
    );
    assert_invalid(
        h.store
            .enrolment_token_create(&a, "x", 3_600_000, Some(0))
            .await,
        "max_uses",
    );
    let ra = h
        .add_builtin(h.a, "ra@tenant-a.example", BuiltInRole::ReportAdmin)
        .await;
    assert_forbidden(
        h.store
            .enrolment_token_create(&h.ctx(&ra).await, "x", 3_600_000, None)
            .await,
        Permission::DevicesManage,
    );
    assert_forbidden(
        h.store.enrolment_tokens_list(&h.ctx(&ra).await).await,
        Permission::DevicesRead,
    );
    h.store.enrolment_token_revoke(&a, t.id).await.unwrap();
    assert!(h.store.enrolment_tokens_list(&a).await.unwrap()[0]
        .revoked_at_ms
        .is_some());
}

async fn check_enrolment_refusals(h: &Harness) {
    let a = h.ctx_a().await;
    let pk = key().public.to_bytes();
    let store = &h.store;
    assert_eq!(
        store
            .enrol_device("junk", &facts("S0"), &pk, None, Takeover::None)
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::Malformed
    );
    let unknown = format!("pfe_{}", "B".repeat(43));
    assert_eq!(
        store
            .enrol_device(&unknown, &facts("S0"), &pk, None, Takeover::None)
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::Unknown
    );
    let (_, once) = store
        .enrolment_token_create(&a, "once", 3_600_000, Some(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .enrol_device(
                once.expose(),
                &facts("S0"),
                &[1, 2, 3],
                None,
                Takeover::None
            )
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::BadKey
    );
    let e = store
        .enrol_device(once.expose(), &facts("S1"), &pk, None, Takeover::None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.tenant, h.a);
    assert_eq!(
        store
            .enrol_device(once.expose(), &facts("S2"), &pk, None, Takeover::None)
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::Exhausted
    );
    let (t, many) = store
        .enrolment_token_create(&a, "many", 3_600_000, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .enrol_device(many.expose(), &facts("S1"), &pk, None, Takeover::None)
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::AlreadyEnrolled
    );
    // The same serial in another tenant is another printer.
    let (_, b_token) = store
        .enrolment_token_create(&h.ctx_b().await, "b", 3_600_000, None)
        .await
        .unwrap();
    // ... but not with a key another live printer uses.
    assert_eq!(
        store
            .enrol_device(b_token.expose(), &facts("S1"), &pk, None, Takeover::None)
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::KeyInUse
    );
    assert!(store
        .enrol_device(
            b_token.expose(),
            &facts("S1"),
            &key().public.to_bytes(),
            None,
            Takeover::None
        )
        .await
        .unwrap()
        .is_ok());
    store.enrolment_token_revoke(&a, t.id).await.unwrap();
    assert_eq!(
        store
            .enrol_device(many.expose(), &facts("S3"), &pk, None, Takeover::None)
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::Revoked
    );
    let (_, short) = store
        .enrolment_token_create(&a, "short", 60_000, None)
        .await
        .unwrap();
    h.advance(60_000);
    assert_eq!(
        store
            .enrol_device(short.expose(), &facts("S4"), &pk, None, Takeover::None)
            .await
            .unwrap()
            .unwrap_err(),
        EnrolRefusal::Expired
    );
    assert_eq!(store.devices_list(&a).await.unwrap().len(), 1);
}

async fn check_devices_scope_and_removal(h: &Harness) {
    let a = h.ctx_a().await;
    let g1 = h.store.group_create(&a, "Floor 1").await.unwrap().id;
    let g2 = h.store.group_create(&a, "Floor 2").await.unwrap().id;
    let d1 = enrol(h, &a, "D1").await;
    let d2 = enrol(h, &a, "D2").await;
    h.store.group_add_device(&a, g1, d1).await.unwrap();
    h.store.group_add_device(&a, g1, d1).await.unwrap();
    h.store.group_add_device(&a, g2, d2).await.unwrap();
    let got = h.store.device_get(&a, d1).await.unwrap();
    assert_eq!(
        (
            got.serial.as_str(),
            got.connection.as_str(),
            got.key_version
        ),
        ("D1", "direct", 1)
    );
    assert_eq!(got.groups.len(), 1);
    // Another tenant sees nothing.
    let b = h.ctx_b().await;
    assert!(h.store.devices_list(&b).await.unwrap().is_empty());
    assert_not_found(h.store.device_get(&b, d1).await);
    assert_not_found(h.store.device_remove(&b, d1).await);
    assert_not_found(h.store.group_add_device(&b, g1, d1).await);
    // A membership scoped to Floor 1 sees only D1.
    let scoped = h
        .add(
            h.a,
            "scoped@tenant-a.example",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Groups([g1].into_iter().collect()),
        )
        .await;
    let s = h.ctx(&scoped).await;
    let seen: Vec<String> = h
        .store
        .devices_list(&s)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.serial)
        .collect();
    assert_eq!(seen, ["D1"]);
    assert_not_found(h.store.device_get(&s, d2).await);
    assert_not_found(h.store.device_remove(&s, d2).await);
    assert_not_found(h.store.group_add_device(&s, g1, d2).await);
    // Permission after visibility.
    let ra = h
        .add_builtin(h.a, "ra@tenant-a.example", BuiltInRole::ReportAdmin)
        .await;
    assert_forbidden(
        h.store.device_get(&h.ctx(&ra).await, d1).await,
        Permission::DevicesRead,
    );
    assert_forbidden(
        h.store.device_remove(&h.ctx(&ra).await, d1).await,
        Permission::DevicesManage,
    );
    // Removal is immediate for lists and identity resolution.
    h.store.device_remove(&a, d1).await.unwrap();
    assert_not_found(h.store.device_get(&a, d1).await);
    assert_eq!(h.store.devices_list(&a).await.unwrap().len(), 1);
}

async fn check_server_keypair(h: &Harness) {
    let k1 = h.store.server_device_keypair().await.unwrap();
    let k2 = h.store.server_device_keypair().await.unwrap();
    assert_eq!(
        k1.public.to_bytes(),
        k2.public.to_bytes(),
        "made once, then reused"
    );
    let reopened = h.reopen(h.keys.masters.clone()).await.unwrap();
    assert_eq!(
        reopened
            .server_device_keypair()
            .await
            .unwrap()
            .public
            .to_bytes(),
        k1.public.to_bytes()
    );
    reopened.close().await;
}

async fn check_device_secrets_survive_key_roll(h: &Harness) {
    let a = h.ctx_a().await;
    let (_, secret) = h
        .store
        .enrolment_token_create(&a, "t", 3_600_000, None)
        .await
        .unwrap();
    let e = h
        .store
        .enrol_device(
            secret.expose(),
            &facts("R1"),
            &key().public.to_bytes(),
            None,
            Takeover::None,
        )
        .await
        .unwrap()
        .unwrap();
    let enrolment_secret = hex::decode(&e.secrets.enrolment_secret).unwrap();
    let id = derive_heartbeat_key(&enrolment_secret, e.device.as_uuid().as_bytes())
        .keys()
        .key_id();
    let found = resolver::device_by_heartbeat_key(&h.store, &id.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.0, found.1), (h.a, e.device));
    h.store.roll_data_key(Some(h.a)).await.unwrap();
    assert!(h.store.stale_fields(Some(h.a)).await.unwrap() >= 2);
    while h.store.reencrypt_batch(Some(h.a), 10).await.unwrap() > 0 {}
    assert_eq!(h.store.stale_fields(Some(h.a)).await.unwrap(), 0);
    let again = resolver::device_by_heartbeat_key(&h.store, &id.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.2.enrolment_secret, e.secrets.enrolment_secret);
    assert!(resolver::device_by_heartbeat_key(&h.store, &[0; 8])
        .await
        .unwrap()
        .is_none());
}
