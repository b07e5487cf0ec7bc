//! Sessions and their resolver, sign-in look-up, password hashes, the person's own profile.

use crate::harness::*;
use printfleet_domain::context::Me;
use printfleet_domain::{BuiltInRole, Email, SessionId};
use printfleet_storage::audit::DEPLOYMENT_CHAIN;
use printfleet_storage::resolver;
use printfleet_storage::sessions::SessionPolicy;

conformance! {
    check_session_lifecycle => sqlite_session_lifecycle, postgres_session_lifecycle;
    check_session_idle_timeout => sqlite_session_idle_timeout, postgres_session_idle_timeout;
    check_session_absolute_timeout => sqlite_session_absolute_timeout, postgres_session_absolute_timeout;
    check_sign_in_lookup => sqlite_sign_in_lookup, postgres_sign_in_lookup;
    check_set_password_hash => sqlite_set_password_hash, postgres_set_password_hash;
    check_me_profile => sqlite_me_profile, postgres_me_profile;
}

const POLICY: SessionPolicy = SessionPolicy {
    idle_ms: 30 * 60_000,
    absolute_ms: 12 * 3_600_000,
};

async fn check_session_lifecycle(h: &Harness) {
    let user = h.admin_a.user;
    let long_ua = "Mozilla/5.0 ".repeat(40);
    let (id, secret) = h
        .store
        .session_create(user, POLICY, Some("192.0.2.10".into()), Some(long_ua))
        .await
        .unwrap();
    assert!(secret.expose().starts_with("pfs_"));
    let me = resolver::session(&h.store, secret.expose(), POLICY, Some("192.0.2.11".into()))
        .await
        .unwrap()
        .expect("a live session resolves");
    assert_eq!(me.user, user);
    assert_eq!(me.session, Some(id));
    assert_eq!(me.source.as_deref(), Some("192.0.2.11"));

    h.advance(1_000);
    let (id2, secret2) = h
        .store
        .session_create(user, POLICY, None, None)
        .await
        .unwrap();
    assert_ne!(id, id2);
    assert_ne!(secret.expose(), secret2.expose());
    let list = h.store.sessions_list(&me).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, id2, "newest first");
    assert!(!list[0].current);
    assert_eq!(list[1].id, id);
    assert!(list[1].current);
    assert_eq!(list[1].source.as_deref(), Some("192.0.2.10"));
    assert_eq!(list[1].user_agent.as_ref().unwrap().chars().count(), 200);
    assert_eq!(list[1].created_at_ms, START_MS);
    assert_eq!(list[1].expires_at_ms, START_MS + POLICY.absolute_ms);

    // Another person sees none of them and cannot revoke them.
    let other = h
        .add_builtin(h.b, "other@example.com", BuiltInRole::ItAdmin)
        .await;
    assert!(h.store.sessions_list(&other.me()).await.unwrap().is_empty());
    assert_not_found(h.store.session_revoke(&other.me(), id).await);
    assert_not_found(h.store.session_revoke(&me, SessionId::new_random()).await);

    // Revoking another of one's sessions, then signing out.
    h.store.session_revoke(&me, id2).await.unwrap();
    assert!(resolver::session(&h.store, secret2.expose(), POLICY, None)
        .await
        .unwrap()
        .is_none());
    assert!(resolver::session(&h.store, secret.expose(), POLICY, None)
        .await
        .unwrap()
        .is_some());
    h.store.session_revoke(&me, id).await.unwrap();
    assert!(resolver::session(&h.store, secret.expose(), POLICY, None)
        .await
        .unwrap()
        .is_none());
    assert_not_found(h.store.session_revoke(&me, id).await);
    assert!(h.store.sessions_list(&me).await.unwrap().is_empty());

    // Malformed and unknown secrets.
    for s in [
        "",
        "pfs_",
        "pfs_short",
        "pf_x",
        &format!("pfs_{}", "A".repeat(43)),
    ] {
        assert!(
            resolver::session(&h.store, s, POLICY, None)
                .await
                .unwrap()
                .is_none(),
            "{s}"
        );
    }

    // The deployment chain records sign-in, session revocation and sign-out.
    let report = h.store.verify_chain(DEPLOYMENT_CHAIN).await.unwrap();
    assert_eq!(report.first_bad, None);
    let actions: Vec<String> = sqlx::query_scalar::<_, String>(
        "SELECT action FROM audit_log WHERE chain = $1 ORDER BY seq",
    )
    .bind(DEPLOYMENT_CHAIN)
    .fetch_all(h.store.raw_pool())
    .await
    .unwrap();
    let sessions: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "user_created")
        .collect();
    assert_eq!(
        sessions,
        ["sign_in", "sign_in", "session_revoked", "sign_out"]
    );
}

async fn check_session_idle_timeout(h: &Harness) {
    let policy = SessionPolicy {
        idle_ms: 60_000,
        absolute_ms: 3_600_000,
    };
    let (_, secret) = h
        .store
        .session_create(h.admin_a.user, policy, None, None)
        .await
        .unwrap();
    // Each use within the idle timeout keeps the session alive (last_seen is refreshed).
    for _ in 0..5 {
        h.advance(50_000);
        assert!(
            resolver::session(&h.store, secret.expose(), policy, None)
                .await
                .unwrap()
                .is_some(),
            "used within the idle timeout"
        );
    }
    h.advance(59_999);
    assert!(resolver::session(&h.store, secret.expose(), policy, None)
        .await
        .unwrap()
        .is_some());
    h.advance(60_000);
    assert!(
        resolver::session(&h.store, secret.expose(), policy, None)
            .await
            .unwrap()
            .is_none(),
        "idle for the whole timeout"
    );
    // And it stays dead.
    assert!(resolver::session(&h.store, secret.expose(), policy, None)
        .await
        .unwrap()
        .is_none());
}

async fn check_session_absolute_timeout(h: &Harness) {
    let policy = SessionPolicy {
        idle_ms: 60_000,
        absolute_ms: 200_000,
    };
    let (_, secret) = h
        .store
        .session_create(h.admin_a.user, policy, None, None)
        .await
        .unwrap();
    let me = Me {
        user: h.admin_a.user,
        session: None,
        source: None,
    };
    for _ in 0..3 {
        h.advance(50_000);
        assert!(resolver::session(&h.store, secret.expose(), policy, None)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(h.store.sessions_list(&me).await.unwrap().len(), 1);
    h.advance(49_999);
    assert!(resolver::session(&h.store, secret.expose(), policy, None)
        .await
        .unwrap()
        .is_some());
    h.advance(1);
    assert!(
        resolver::session(&h.store, secret.expose(), policy, None)
            .await
            .unwrap()
            .is_none(),
        "past the absolute lifetime, however active"
    );
    assert!(h.store.sessions_list(&me).await.unwrap().is_empty());
}

async fn check_sign_in_lookup(h: &Harness) {
    let p = h
        .add_builtin(h.a, "Mixed.Case@Example.COM", BuiltInRole::ReportAdmin)
        .await;
    for typed in [
        "mixed.case@example.com",
        "MIXED.CASE@EXAMPLE.COM",
        "  Mixed.Case@example.com ",
    ] {
        let e = Email::parse("email", typed).unwrap();
        let (user, hash) = resolver::sign_in_lookup(&h.store, &e)
            .await
            .unwrap()
            .expect(typed);
        assert_eq!(user, p.user);
        assert_eq!(hash.expose(), HASH);
    }
    let e = Email::parse("email", "nobody@example.com").unwrap();
    assert!(resolver::sign_in_lookup(&h.store, &e)
        .await
        .unwrap()
        .is_none());
    let e = Email::parse("email", "admin@tenant-b.example").unwrap();
    let (user, _) = resolver::sign_in_lookup(&h.store, &e)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user, h.admin_b.user);
}

async fn check_set_password_hash(h: &Harness) {
    let me = h.admin_a.me();
    h.store
        .set_password_hash(&me, "$argon2id$v=19$new")
        .await
        .unwrap();
    let e = Email::parse("email", "admin@tenant-a.example").unwrap();
    let (_, hash) = resolver::sign_in_lookup(&h.store, &e)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash.expose(), "$argon2id$v=19$new");
    // Nobody else's hash changed.
    let e = Email::parse("email", "admin@tenant-b.example").unwrap();
    let (_, hash) = resolver::sign_in_lookup(&h.store, &e)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash.expose(), HASH);
    // The stored form is not the hash itself.
    let raw: Vec<u8> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(h.admin_a.user.to_string())
        .fetch_one(h.store.raw_pool())
        .await
        .unwrap();
    assert!(!contains(&raw, b"argon2id"));
}

async fn check_me_profile(h: &Harness) {
    h.advance(42);
    let p = h
        .add_builtin(h.b, "Zoe@Example.com", BuiltInRole::ReportAdmin)
        .await;
    let u = h.store.me_profile(&p.me()).await.unwrap();
    assert_eq!(u.id, p.user);
    assert_eq!(u.profile.email.expose(), "zoe@example.com");
    assert_eq!(u.profile.first_name.expose(), "Test");
    assert_eq!(u.profile.last_name.expose(), "Person");
    assert_eq!(u.profile.locale, "en");
    assert_eq!(u.created_at_ms, START_MS + 42);
    let nobody = Me {
        user: printfleet_domain::UserId::new_random(),
        session: None,
        source: None,
    };
    assert_not_found(h.store.me_profile(&nobody).await);
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
