//! API tokens and their resolver.

use crate::harness::*;
use printfleet_domain::{Actor, BuiltInRole, Ctx, RoleRef, Scope, TokenId};
use printfleet_storage::resolver;

conformance! {
    check_token_lifecycle => sqlite_token_lifecycle, postgres_token_lifecycle;
    check_token_expiry => sqlite_token_expiry, postgres_token_expiry;
    check_token_follows_current_role => sqlite_token_follows_current_role, postgres_token_follows_current_role;
    check_token_cannot_create_tokens => sqlite_token_cannot_create_tokens, postgres_token_cannot_create_tokens;
    check_tokens_visibility => sqlite_tokens_visibility, postgres_tokens_visibility;
    check_tokens_cross_tenant => sqlite_tokens_cross_tenant, postgres_tokens_cross_tenant;
}

async fn check_token_lifecycle(h: &Harness) {
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let ctx = h.ctx(&pa).await;
    let (tok, secret) = h
        .store
        .token_create(&ctx, " deploy bot ", None)
        .await
        .unwrap();
    assert!(secret.expose().starts_with("pf_"));
    assert_eq!(tok.name, "deploy bot");
    assert_eq!((tok.membership, tok.user), (pa.membership, pa.user));
    assert_eq!(tok.last_used_at_ms, None);
    assert_invalid(h.store.token_create(&ctx, "", None).await, "name");

    h.advance(5_000);
    let tc = resolver::api_token(&h.store, secret.expose(), Some("198.51.100.1".into()))
        .await
        .unwrap()
        .expect("a live token resolves");
    assert_eq!(tc.tenant, h.a);
    assert_eq!(
        tc.actor,
        Actor::Token {
            token: tok.id,
            user: pa.user
        }
    );
    assert_eq!(tc.membership, Some(pa.membership));
    assert_eq!(tc.permissions, BuiltInRole::PrinterAdmin.permissions());
    assert_eq!(tc.scope, Scope::Tenant);
    assert_eq!(tc.source.as_deref(), Some("198.51.100.1"));
    assert!(tc.is_api_token());

    let list = h.store.tokens_list(&ctx).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, tok.id);
    assert_eq!(list[0].last_used_at_ms, Some(START_MS + 5_000));
    assert_eq!(list[0].revoked_at_ms, None);

    // Acting through the token is audited as the token.
    let g = h.store.group_create(&tc, "Made by a token").await.unwrap();
    let entries = h.store.audit_list(&h.ctx_a().await, 0, 1000).await.unwrap();
    let e = entries
        .iter()
        .find(|e| e.target == format!("group:{}", g.id))
        .unwrap();
    assert_eq!(e.actor, format!("token:{}/user:{}", tok.id, pa.user));

    // The owner revokes it (a token may revoke itself too, but not mint).
    h.advance(1_000);
    h.store.token_revoke(&ctx, tok.id).await.unwrap();
    assert!(resolver::api_token(&h.store, secret.expose(), None)
        .await
        .unwrap()
        .is_none());
    let list = h.store.tokens_list(&ctx).await.unwrap();
    assert_eq!(list[0].revoked_at_ms, Some(START_MS + 6_000));
    assert_not_found(h.store.token_revoke(&ctx, TokenId::new_random()).await);
    let actions: Vec<String> = entries.into_iter().map(|e| e.action).collect();
    assert!(actions.iter().any(|a| a == "token_created"));
    let last = h.store.audit_list(&h.ctx_a().await, 0, 1000).await.unwrap();
    assert_eq!(last.last().unwrap().action, "token_revoked");

    for s in [
        "",
        "pf_",
        "pf_short",
        "pfs_x",
        &format!("pf_{}", "A".repeat(43)),
    ] {
        assert!(
            resolver::api_token(&h.store, s, None)
                .await
                .unwrap()
                .is_none(),
            "{s}"
        );
    }
}

async fn check_token_expiry(h: &Harness) {
    let ctx = h.ctx_a().await;
    let (_, secret) = h
        .store
        .token_create(&ctx, "short-lived", Some(START_MS + 60_000))
        .await
        .unwrap();
    h.advance(59_999);
    assert!(resolver::api_token(&h.store, secret.expose(), None)
        .await
        .unwrap()
        .is_some());
    h.advance(1);
    assert!(resolver::api_token(&h.store, secret.expose(), None)
        .await
        .unwrap()
        .is_none());
    assert_invalid(
        h.store
            .token_create(&ctx, "already expired", Some(h.store.now_ms()))
            .await,
        "expires_at",
    );
    let (t, _) = h
        .store
        .token_create(&ctx, "later", Some(h.store.now_ms() + 1))
        .await
        .unwrap();
    assert_eq!(t.expires_at_ms, Some(START_MS + 60_001));
}

async fn check_token_follows_current_role(h: &Harness) {
    let admin = h.ctx_a().await;
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let (_, secret) = h
        .store
        .token_create(&h.ctx(&pa).await, "bot", None)
        .await
        .unwrap();
    let resolve = || resolver::api_token(&h.store, secret.expose(), None);
    assert_eq!(
        resolve().await.unwrap().unwrap().permissions,
        BuiltInRole::PrinterAdmin.permissions()
    );
    let g = h.store.group_create(&admin, "G").await.unwrap();
    let groups = Scope::Groups([g.id].into_iter().collect());
    h.store
        .member_update(
            &admin,
            pa.membership,
            Some(RoleRef::BuiltIn(BuiltInRole::ReportAdmin)),
            Some(groups.clone()),
        )
        .await
        .unwrap();
    let tc = resolve().await.unwrap().unwrap();
    assert_eq!(tc.permissions, BuiltInRole::ReportAdmin.permissions());
    assert_eq!(tc.scope, groups);
    assert_forbidden(
        h.store.groups_list(&tc).await,
        printfleet_domain::Permission::DevicesRead,
    );
    // Promoted again: the token gains it back, still no more than the membership.
    h.store
        .member_update(
            &admin,
            pa.membership,
            Some(RoleRef::BuiltIn(BuiltInRole::ItAdmin)),
            None,
        )
        .await
        .unwrap();
    let tc = resolve().await.unwrap().unwrap();
    assert_eq!(tc.permissions, BuiltInRole::ItAdmin.permissions());
    assert_eq!(tc.scope, groups);
}

async fn check_token_cannot_create_tokens(h: &Harness) {
    let ctx = h.ctx_a().await;
    let (_, secret) = h.store.token_create(&ctx, "bot", None).await.unwrap();
    let tc = resolver::api_token(&h.store, secret.expose(), None)
        .await
        .unwrap()
        .unwrap();
    assert_session_required(h.store.token_create(&tc, "child", None).await);
    assert_session_required(
        h.store
            .token_create(&Ctx::system(h.a), "system", None)
            .await,
    );
    assert_eq!(h.store.tokens_list(&ctx).await.unwrap().len(), 1);
}

async fn check_tokens_visibility(h: &Harness) {
    let admin = h.ctx_a().await;
    let p1 = h
        .add_builtin(h.a, "p1@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let p2 = h
        .add_builtin(h.a, "p2@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let c1 = h.ctx(&p1).await;
    let c2 = h.ctx(&p2).await;
    let (t1, _) = h.store.token_create(&c1, "one", None).await.unwrap();
    h.advance(1);
    let (t2, s2) = h.store.token_create(&c2, "two", None).await.unwrap();
    h.advance(1);
    let (ta, _) = h.store.token_create(&admin, "admin", None).await.unwrap();
    let ids = |v: Vec<printfleet_storage::tokens::ApiToken>| {
        v.into_iter().map(|t| t.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(h.store.tokens_list(&c1).await.unwrap()), vec![t1.id]);
    assert_eq!(ids(h.store.tokens_list(&c2).await.unwrap()), vec![t2.id]);
    assert_eq!(
        ids(h.store.tokens_list(&admin).await.unwrap()),
        vec![t1.id, t2.id, ta.id]
    );
    // Someone else's token looks absent to a non-admin.
    assert_not_found(h.store.token_revoke(&c1, t2.id).await);
    assert!(resolver::api_token(&h.store, s2.expose(), None)
        .await
        .unwrap()
        .is_some());
    // An IT Admin may revoke any token of the tenant.
    h.store.token_revoke(&admin, t2.id).await.unwrap();
    assert!(resolver::api_token(&h.store, s2.expose(), None)
        .await
        .unwrap()
        .is_none());
}

async fn check_tokens_cross_tenant(h: &Harness) {
    let ctx_a = h.ctx_a().await;
    let ctx_b = h.ctx_b().await;
    let (ta, sa) = h.store.token_create(&ctx_a, "a-bot", None).await.unwrap();
    assert!(h.store.tokens_list(&ctx_b).await.unwrap().is_empty());
    assert_not_found(h.store.token_revoke(&ctx_b, ta.id).await);
    let tc = resolver::api_token(&h.store, sa.expose(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tc.tenant, h.a);
    // A's token reaches only A's data.
    let gb = h.store.group_create(&ctx_b, "B only").await.unwrap();
    assert_not_found(h.store.group_get(&tc, gb.id).await);
    assert!(h.store.groups_list(&tc).await.unwrap().is_empty());
    let list = h.store.tokens_list(&ctx_a).await.unwrap();
    assert_eq!(list[0].revoked_at_ms, None);
}
