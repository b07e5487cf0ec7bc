//! Opening a store, tenants, tenant ids, ping.

use crate::harness::*;
use printfleet_crypto::{AuditKey, MasterKey};
use printfleet_domain::tenant::Contact;
use printfleet_domain::{BuiltInRole, Permission};
use printfleet_storage::audit::tenant_chain;
use printfleet_storage::tenants::TenantUpdate;
use printfleet_storage::{resolver, Backend, Store, StoreError, StoreKeys, StoreOptions};
use rand::rngs::OsRng;

conformance! {
    check_open_and_ping => sqlite_open_and_ping, postgres_open_and_ping;
    check_open_rejects_bad_options => sqlite_open_rejects_bad_options, postgres_open_rejects_bad_options;
    check_create_tenant => sqlite_create_tenant, postgres_create_tenant;
    check_tenant_get_contact_needs_settings => sqlite_tenant_get_contact_needs_settings, postgres_tenant_get_contact_needs_settings;
    check_tenant_update => sqlite_tenant_update, postgres_tenant_update;
    check_tenant_isolation => sqlite_tenant_isolation, postgres_tenant_isolation;
    check_tenant_ids => sqlite_tenant_ids, postgres_tenant_ids;
}

async fn check_open_and_ping(h: &Harness) {
    h.store.ping().await.unwrap();
    let want = if h.opts.pg_schema.is_some() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    assert_eq!(h.backend(), want);
    assert_eq!(h.store.now_ms(), START_MS);
    h.advance(5);
    assert_eq!(h.store.now_ms(), START_MS + 5);
    // Opening the same database again applies no migration twice and finds the same data.
    let again = h.reopen(h.keys.masters.clone()).await.unwrap();
    again.ping().await.unwrap();
    let t = again.tenant_get(&h.ctx_a().await).await.unwrap();
    assert_eq!(t.name, "Tenant A");
    again.close().await;
}

async fn check_open_rejects_bad_options(h: &Harness) {
    let keys = || StoreKeys {
        masters: vec![MasterKey::generate(&mut OsRng)],
        audit: AuditKey::from_bytes(AUDIT_KEY),
    };
    let bad_url = StoreOptions {
        url: "mysql://localhost/x".into(),
        ..h.opts.clone()
    };
    match Store::open(bad_url, keys(), h.dyn_clock()).await {
        Err(StoreError::Config(_)) => {}
        other => panic!("expected Config for a mysql url, got {other:?}"),
    }
    let bad_schema = StoreOptions {
        pg_schema: Some("x; DROP TABLE users".into()),
        ..h.opts.clone()
    };
    match Store::open(bad_schema, keys(), h.dyn_clock()).await {
        Err(StoreError::Config(m)) => assert!(m.contains("schema"), "{m}"),
        other => panic!("expected Config for a bad schema name, got {other:?}"),
    }
    // A master key that wrapped none of the data keys: refused at start, not at first use.
    match h.reopen(vec![MasterKey::generate(&mut OsRng)]).await {
        Err(StoreError::Config(m)) => assert!(m.contains("master key"), "{m}"),
        other => panic!("expected Config for a wrong master key, got {other:?}"),
    }
    match h.reopen(Vec::new()).await {
        Err(StoreError::Config(_)) => {}
        other => panic!("expected Config for no master key, got {other:?}"),
    }
}

async fn check_create_tenant(h: &Harness) {
    let contact = Contact::parse(Some("Carl"), Some("Carl@C.example"), None, None).unwrap();
    let c = h
        .store
        .create_tenant(
            "  Tenant C ",
            "ap-south-1",
            &contact,
            Some("198.51.100.7".into()),
        )
        .await
        .unwrap();
    assert!(c != h.a && c != h.b);
    let admin = h
        .add_builtin(c, "admin@c.example", BuiltInRole::ItAdmin)
        .await;
    let t = h.store.tenant_get(&h.ctx(&admin).await).await.unwrap();
    assert_eq!(t.id, c);
    assert_eq!(t.name, "Tenant C");
    assert_eq!(t.region, "ap-south-1");
    assert_eq!(t.created_at_ms, START_MS);
    assert_eq!(t.contact, contact);
    assert_eq!(t.contact.email.unwrap().expose(), "carl@c.example");
    // The tenant's own audit chain starts with its creation.
    let entries = h
        .store
        .audit_list(&h.ctx(&admin).await, 0, 10)
        .await
        .unwrap();
    assert_eq!(entries[0].seq, 1);
    assert_eq!(entries[0].action, "tenant_created");
    assert_eq!(entries[0].actor, "system");
    assert_eq!(entries[0].target, format!("tenant:{c}"));
    assert_eq!(entries[0].source, "198.51.100.7");
    let report = h.store.verify_chain(&tenant_chain(c)).await.unwrap();
    assert_eq!(report.first_bad, None);

    let invalid = |r: Result<_, StoreError>, field: &str| assert_invalid(r, field);
    invalid(
        h.store
            .create_tenant(" ", "eu", &Contact::default(), None)
            .await,
        "name",
    );
    invalid(
        h.store
            .create_tenant("Tenant D", "EU", &Contact::default(), None)
            .await,
        "region",
    );
}

async fn check_tenant_get_contact_needs_settings(h: &Harness) {
    let t = h.store.tenant_get(&h.ctx_a().await).await.unwrap();
    assert_eq!(t.id, h.a);
    assert_eq!(t.name, "Tenant A");
    assert_eq!(t.region, "eu-west");
    assert_eq!(t.contact.name.unwrap().expose(), "Ada Contact");
    assert_eq!(
        t.contact.email.unwrap().expose(),
        "ada.contact@tenant-a.example"
    );
    assert_eq!(t.contact.phone.unwrap().expose(), "+1 555 0100");
    assert_eq!(
        t.contact.postal_address.unwrap().expose(),
        "1 Main Street, Springfield"
    );
    // A Printer Admin lacks tenant.settings: name and region, but no contact data.
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let ctx = h.ctx(&pa).await;
    assert!(!ctx.can(Permission::TenantSettings));
    let t = h.store.tenant_get(&ctx).await.unwrap();
    assert_eq!(t.name, "Tenant A");
    assert_eq!(t.region, "eu-west");
    assert_eq!(t.contact, Contact::default());
}

async fn check_tenant_update(h: &Harness) {
    let ctx = h.ctx_a().await;
    let new_contact = Contact::parse(
        Some("Bea Contact"),
        Some("bea@tenant-a.example"),
        Some("+44 20 7946 0000"),
        Some("2 High Street, London"),
    )
    .unwrap();
    let t = h
        .store
        .tenant_update(
            &ctx,
            TenantUpdate {
                name: Some("Tenant A Renamed".into()),
                region: Some("eu-central".into()),
                contact: Some(new_contact.clone()),
            },
        )
        .await
        .unwrap();
    assert_eq!(t.name, "Tenant A Renamed");
    assert_eq!(t.region, "eu-central");
    assert_eq!(t.contact, new_contact);
    // A partial update keeps the rest, contact included.
    let t = h
        .store
        .tenant_update(
            &ctx,
            TenantUpdate {
                name: Some("Tenant A2".into()),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(t.name, "Tenant A2");
    assert_eq!(t.region, "eu-central");
    assert_eq!(t.contact, new_contact);
    assert_eq!(h.store.tenant_get(&ctx).await.unwrap(), t);
    // Audited without the personal data.
    let last = h.store.audit_list(&ctx, 0, 1000).await.unwrap();
    let last = last.last().unwrap();
    assert_eq!(last.action, "tenant_updated");
    assert_eq!(last.detail, serde_json::json!({ "changed": ["name"] }));

    assert_invalid(
        h.store
            .tenant_update(
                &ctx,
                TenantUpdate {
                    region: Some("Not A Region".into()),
                    ..TenantUpdate::default()
                },
            )
            .await,
        "region",
    );
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    assert_forbidden(
        h.store
            .tenant_update(
                &h.ctx(&pa).await,
                TenantUpdate {
                    name: Some("Hijacked".into()),
                    ..TenantUpdate::default()
                },
            )
            .await,
        Permission::TenantSettings,
    );
    assert_eq!(h.store.tenant_get(&ctx).await.unwrap().name, "Tenant A2");
}

async fn check_tenant_isolation(h: &Harness) {
    // Tenant B's admin sees tenant B only, and updating "their" tenant leaves A alone.
    let ctx_b = h.ctx_b().await;
    let t = h.store.tenant_get(&ctx_b).await.unwrap();
    assert_eq!(t.id, h.b);
    assert_eq!(t.name, "Tenant B");
    assert_eq!(t.contact, Contact::default());
    h.store
        .tenant_update(
            &ctx_b,
            TenantUpdate {
                name: Some("Tenant B Renamed".into()),
                contact: Some(Contact::default()),
                ..TenantUpdate::default()
            },
        )
        .await
        .unwrap();
    let a = h.store.tenant_get(&h.ctx_a().await).await.unwrap();
    assert_eq!(a.name, "Tenant A");
    assert_eq!(a.contact.name.unwrap().expose(), "Ada Contact");
    // A member of A has no context in B.
    assert_not_found(resolver::tenant_ctx(&h.store, &h.admin_a.me(), h.b).await);
}

async fn check_tenant_ids(h: &Harness) {
    let ids = h.store.tenant_ids().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&h.a) && ids.contains(&h.b));
    h.advance(1_000);
    let c = h
        .store
        .create_tenant("Tenant C", "us", &Contact::default(), None)
        .await
        .unwrap();
    let ids = h.store.tenant_ids().await.unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids.last(), Some(&c), "ordered by creation time");
}
