//! Key rotation (data keys rolled and fields re-encrypted; master key re-wrapped) and encryption
//! at rest.

use crate::harness::*;
use crate::sessions::contains;
use printfleet_crypto::MasterKey;
use printfleet_domain::context::Me;
use printfleet_domain::tenant::Contact;
use printfleet_domain::user::Profile;
use printfleet_domain::{BuiltInRole, Email, RoleRef, Scope, TenantId};
use printfleet_storage::audit::{tenant_chain, DEPLOYMENT_CHAIN};
use printfleet_storage::invitations::Acceptor;
use printfleet_storage::tenants::TenantUpdate;
use printfleet_storage::{resolver, Backend, Store, StoreError};
use rand::rngs::OsRng;
use sqlx::Row;

conformance! {
    check_roll_tenant_key => sqlite_roll_tenant_key, postgres_roll_tenant_key;
    check_roll_deployment_key => sqlite_roll_deployment_key, postgres_roll_deployment_key;
    check_rewrap_all => sqlite_rewrap_all, postgres_rewrap_all;
    check_encryption_at_rest => sqlite_encryption_at_rest, postgres_encryption_at_rest;
}

const PA: RoleRef = RoleRef::BuiltIn(BuiltInRole::PrinterAdmin);
const DAY: i64 = 86_400_000;

fn email(s: &str) -> Email {
    Email::parse("email", s).unwrap()
}

async fn key_version(h: &Harness, sql: &str, id: &str) -> i64 {
    sqlx::query(sql)
        .bind(id)
        .fetch_one(h.store.raw_pool())
        .await
        .unwrap()
        .get(0)
}

/// Runs re-encryption batches of `batch` until one does nothing; returns the total.
async fn reencrypt_all(h: &Harness, scope: Option<TenantId>, batch: i64) -> usize {
    let mut total = 0;
    for _ in 0..100 {
        let n = h.store.reencrypt_batch(scope, batch).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
    panic!("re-encryption did not finish");
}

async fn check_roll_tenant_key(h: &Harness) {
    let ctx = h.ctx_a().await;
    let before = h.store.tenant_get(&ctx).await.unwrap();
    let mut secrets = Vec::new();
    for i in 0..3 {
        let (_, s) = h
            .store
            .invitation_create(
                &ctx,
                email(&format!("inv{i}@example.com")),
                PA,
                Scope::Tenant,
                DAY,
            )
            .await
            .unwrap();
        secrets.push(s);
    }
    assert_eq!(h.store.stale_fields(Some(h.a)).await.unwrap(), 0);
    assert_eq!(h.store.roll_data_key(Some(h.a)).await.unwrap(), 2);
    // The tenant row and three invitations are under version 1; tenant B is not involved.
    assert_eq!(h.store.stale_fields(Some(h.a)).await.unwrap(), 4);
    assert_eq!(h.store.stale_fields(Some(h.b)).await.unwrap(), 0);
    assert_eq!(h.store.stale_fields(None).await.unwrap(), 0);
    // Data under the old version still reads while re-encryption is pending.
    assert_eq!(h.store.tenant_get(&ctx).await.unwrap(), before);
    assert_eq!(reencrypt_all(h, Some(h.a), 2).await, 4);
    assert_eq!(h.store.stale_fields(Some(h.a)).await.unwrap(), 0);
    assert_eq!(h.store.reencrypt_batch(Some(h.a), 2).await.unwrap(), 0);
    assert_eq!(
        key_version(
            h,
            "SELECT key_version FROM tenants WHERE id = $1",
            &h.a.to_string()
        )
        .await,
        2
    );
    assert_eq!(
        key_version(
            h,
            "SELECT key_version FROM tenants WHERE id = $1",
            &h.b.to_string()
        )
        .await,
        1
    );
    // Everything reads back.
    assert_eq!(h.store.tenant_get(&ctx).await.unwrap(), before);
    let mut emails: Vec<String> = h
        .store
        .invitations_list(&ctx)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.email.expose().to_string())
        .collect();
    emails.sort();
    assert_eq!(
        emails,
        ["inv0@example.com", "inv1@example.com", "inv2@example.com"]
    );
    assert_eq!(
        h.store
            .invitation_email(secrets[1].expose())
            .await
            .unwrap()
            .expose(),
        "inv1@example.com"
    );
    // New writes use the new version.
    let upd = TenantUpdate {
        name: Some("Renamed".into()),
        ..TenantUpdate::default()
    };
    h.store.tenant_update(&ctx, upd).await.unwrap();
    assert_eq!(h.store.stale_fields(Some(h.a)).await.unwrap(), 0);
    // Rolled twice: still readable, re-encrypted again.
    assert_eq!(h.store.roll_data_key(Some(h.a)).await.unwrap(), 3);
    assert_eq!(reencrypt_all(h, Some(h.a), 100).await, 4);
    let t = h.store.tenant_get(&ctx).await.unwrap();
    assert_eq!((t.name.as_str(), &t.contact), ("Renamed", &before.contact));
    let (_, user, _) = h
        .store
        .invitation_accept(
            secrets[0].expose(),
            Acceptor::NewPerson {
                profile: Profile::parse("inv0@example.com", "I", "Zero", "en").unwrap(),
                password_hash: HASH.to_string().into(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        h.store
            .me_profile(&Me {
                user,
                session: None,
                source: None
            })
            .await
            .unwrap()
            .id,
        user
    );
    // Audited in the tenant's chain; unknown tenants have no key to roll.
    let actions: Vec<String> = h
        .store
        .audit_list(&ctx, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "data_key_rolled").count(),
        2
    );
    assert_eq!(
        h.store
            .verify_chain(&tenant_chain(h.a))
            .await
            .unwrap()
            .first_bad,
        None
    );
    assert!(matches!(
        h.store.roll_data_key(Some(TenantId::new_random())).await,
        Err(StoreError::NotFound)
    ));
}

async fn check_roll_deployment_key(h: &Harness) {
    let extra = h
        .add_builtin(h.a, "extra@example.com", BuiltInRole::ReportAdmin)
        .await;
    h.store
        .set_password_hash(&extra.me(), "$argon2id$extra")
        .await
        .unwrap();
    let people = [h.admin_a.clone(), h.admin_b.clone(), extra.clone()];
    let mut profiles = Vec::new();
    for p in &people {
        profiles.push(h.store.me_profile(&p.me()).await.unwrap());
    }
    assert_eq!(h.store.roll_data_key(None).await.unwrap(), 2);
    assert_eq!(h.store.stale_fields(None).await.unwrap(), 3);
    assert_eq!(h.store.stale_fields(Some(h.a)).await.unwrap(), 0);
    // A person created now is under the new version from the start.
    let late = h
        .add_builtin(h.b, "late@example.com", BuiltInRole::ReportAdmin)
        .await;
    assert_eq!(h.store.stale_fields(None).await.unwrap(), 3);
    assert_eq!(h.store.reencrypt_batch(None, 2).await.unwrap(), 2);
    assert_eq!(h.store.stale_fields(None).await.unwrap(), 1);
    assert_eq!(reencrypt_all(h, None, 2).await, 1);
    assert_eq!(h.store.stale_fields(None).await.unwrap(), 0);
    for p in people.iter().chain([&late]) {
        assert_eq!(
            key_version(
                h,
                "SELECT key_version FROM users WHERE id = $1",
                &p.user.to_string()
            )
            .await,
            2
        );
    }
    for (p, before) in people.iter().zip(&profiles) {
        assert_eq!(&h.store.me_profile(&p.me()).await.unwrap(), before);
    }
    // Password hashes were re-encrypted too, and the blind index (never rolled) still finds people.
    let (u, hash) = resolver::sign_in_lookup(&h.store, &email("extra@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((u, hash.expose().as_str()), (extra.user, "$argon2id$extra"));
    let (_, hash) = resolver::sign_in_lookup(&h.store, &email("admin@tenant-a.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash.expose(), HASH);
    let d = h.store.verify_chain(DEPLOYMENT_CHAIN).await.unwrap();
    assert_eq!(d.first_bad, None);
    let last: String = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE chain = $1 AND action = $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(DEPLOYMENT_CHAIN)
    .bind("data_key_rolled")
    .fetch_one(h.store.raw_pool())
    .await
    .unwrap();
    assert_eq!(last, "data_key_rolled");
}

async fn check_rewrap_all(h: &Harness) {
    // A rolled tenant key (two versions) is re-wrapped as well.
    h.store.roll_data_key(Some(h.b)).await.unwrap();
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys")
        .fetch_one(h.store.raw_pool())
        .await
        .unwrap();
    // deployment, blind-index, tenant A, tenant B v1 and v2.
    assert_eq!(keys, 5);
    let contact_before = h.store.tenant_get(&h.ctx_a().await).await.unwrap().contact;
    let new_master = MasterKey::generate(&mut OsRng);
    assert_eq!(h.store.rewrap_all(&new_master).await.unwrap(), 5);
    assert_eq!(
        h.store.rewrap_all(&new_master).await.unwrap(),
        0,
        "nothing left to re-wrap"
    );
    let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT master_id FROM data_keys")
        .fetch_all(h.store.raw_pool())
        .await
        .unwrap();
    assert_eq!(ids, vec![new_master.id()]);

    // A store with only the new master key reads everything.
    let store: Store = h.reopen(vec![new_master.clone()]).await.unwrap();
    let ctx = resolver::tenant_ctx(&store, &h.admin_a.me(), h.a)
        .await
        .unwrap();
    assert_eq!(
        store.tenant_get(&ctx).await.unwrap().contact,
        contact_before
    );
    let u = store.me_profile(&h.admin_a.me()).await.unwrap();
    assert_eq!(u.profile.email.expose(), "admin@tenant-a.example");
    assert_eq!(u.profile.first_name.expose(), "Test");
    let (found, hash) = resolver::sign_in_lookup(&store, &email("admin@tenant-a.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found, hash.expose().as_str()), (h.admin_a.user, HASH));
    let ctx_b = resolver::tenant_ctx(&store, &h.admin_b.me(), h.b)
        .await
        .unwrap();
    store.tenant_get(&ctx_b).await.unwrap();
    // The re-wrap is audited and the chains still verify with the new store.
    for c in store.audit_chains().await.unwrap() {
        assert_eq!(store.verify_chain(&c).await.unwrap().first_bad, None, "{c}");
    }
    let action: String = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(DEPLOYMENT_CHAIN)
    .fetch_one(store.raw_pool())
    .await
    .unwrap();
    assert_eq!(action, "master_key_rotated");
    store.close().await;
    // The old master key alone no longer opens the store.
    match h.reopen(h.keys.masters.clone()).await {
        Err(StoreError::Config(m)) => assert!(m.contains(&new_master.id()), "{m}"),
        other => panic!("expected Config with only the old master key, got {other:?}"),
    }
    // Both keys, new first, open it too (the state during a rotation).
    let both = h
        .reopen(vec![new_master, h.keys.masters[0].clone()])
        .await
        .unwrap();
    both.me_profile(&h.admin_b.me()).await.unwrap();
    both.close().await;
}

/// Personal data planted in the suite, none of which may appear in the database as stored.
const PLANTED: [&str; 8] = [
    "Quirinus Zebedee",
    "quirinus.contact@plant-a.example",
    "+49 30 9876 54321",
    "42 Marigold Lane, 99999 Oddtown",
    "Philomena",
    "Vantongeren",
    "philomena.vantongeren@plant-b.example",
    "invitee.xylophone@plant-c.example",
];
/// Stored in clear on purpose (a group name): shows the scan sees the data it should.
const MARKER: &str = "plain-marker-group-4711";

async fn plant(h: &Harness) {
    let ctx = h.ctx_a().await;
    let contact = Contact::parse(
        Some(PLANTED[0]),
        Some(PLANTED[1]),
        Some(PLANTED[2]),
        Some(PLANTED[3]),
    )
    .unwrap();
    let upd = TenantUpdate {
        contact: Some(contact),
        ..TenantUpdate::default()
    };
    h.store.tenant_update(&ctx, upd).await.unwrap();
    let profile = Profile::parse(PLANTED[6], PLANTED[4], PLANTED[5], "en").unwrap();
    h.store
        .add_member_as_system(h.a, &profile, HASH, PA, Scope::Tenant)
        .await
        .unwrap();
    h.store
        .invitation_create(&ctx, email(PLANTED[7]), PA, Scope::Tenant, DAY)
        .await
        .unwrap();
    h.store.group_create(&ctx, MARKER).await.unwrap();
    // All of it reads back through the store.
    assert_eq!(
        h.store
            .tenant_get(&ctx)
            .await
            .unwrap()
            .contact
            .name
            .unwrap()
            .expose(),
        PLANTED[0]
    );
    let found = resolver::sign_in_lookup(&h.store, &email(PLANTED[6]))
        .await
        .unwrap();
    assert!(found.is_some());
}

#[track_caller]
fn assert_no_plaintext(what: &str, bytes: &[u8]) {
    assert!(
        contains(bytes, MARKER.as_bytes()),
        "{what}: the clear-text marker is missing, so the scan proves nothing"
    );
    for p in PLANTED {
        for form in [p.to_string(), p.to_lowercase(), hex::encode(p.as_bytes())] {
            assert!(
                !contains(bytes, form.as_bytes()),
                "{what} holds personal data in clear: {p}"
            );
        }
    }
}

async fn check_encryption_at_rest(h: &Harness) {
    plant(h).await;
    match h.backend() {
        Backend::Sqlite => {
            let db = h.dir.path().join("t.db");
            let wal = h.dir.path().join("t.db-wal");
            let wal_bytes = std::fs::read(&wal).expect("the WAL file exists");
            assert!(!wal_bytes.is_empty());
            assert_no_plaintext("the SQLite WAL file", &wal_bytes);
            // Now move everything into the main file and check that too.
            let r = sqlx::query("PRAGMA wal_checkpoint(FULL)")
                .fetch_one(h.store.raw_pool())
                .await
                .unwrap();
            assert_eq!(r.get::<i64, _>(0), 0, "checkpoint not blocked");
            assert_no_plaintext("the SQLite database file", &std::fs::read(&db).unwrap());
        }
        Backend::Postgres => {
            // Every table's rows as text (bytea shows as hex, also checked).
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_all(h.store.raw_pool())
            .await
            .unwrap();
            assert!(tables.len() >= 10, "{tables:?}");
            let mut all = String::new();
            for t in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT CAST(x AS TEXT) FROM {t} x"))
                        .fetch_all(h.store.raw_pool())
                        .await
                        .unwrap();
                all.push_str(&rows.join("\n"));
            }
            assert_no_plaintext("the PostgreSQL tables", all.as_bytes());
        }
    }
}
