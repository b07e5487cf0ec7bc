//! Invitations: create, list, revoke, accept (new and existing people), expiry, single use.

use crate::harness::*;
use printfleet_domain::context::Me;
use printfleet_domain::user::Profile;
use printfleet_domain::{BuiltInRole, Email, Permission, Redacted, RoleRef, Scope};
use printfleet_storage::invitations::{Acceptor, InvitationState};
use printfleet_storage::resolver;

conformance! {
    check_invitation_create_list => sqlite_invitation_create_list, postgres_invitation_create_list;
    check_invitation_accept_new_person => sqlite_invitation_accept_new_person, postgres_invitation_accept_new_person;
    check_invitation_accept_existing => sqlite_invitation_accept_existing, postgres_invitation_accept_existing;
    check_invitation_expired => sqlite_invitation_expired, postgres_invitation_expired;
    check_invitation_used_twice => sqlite_invitation_used_twice, postgres_invitation_used_twice;
    check_invitation_revoked => sqlite_invitation_revoked, postgres_invitation_revoked;
    check_invitation_unknown_token => sqlite_invitation_unknown_token, postgres_invitation_unknown_token;
    check_invitations_cross_tenant => sqlite_invitations_cross_tenant, postgres_invitations_cross_tenant;
}

const PA: RoleRef = RoleRef::BuiltIn(BuiltInRole::PrinterAdmin);
const DAY: i64 = 86_400_000;

fn email(s: &str) -> Email {
    Email::parse("email", s).unwrap()
}

fn new_person(email: &str) -> Acceptor {
    Acceptor::NewPerson {
        profile: Profile::parse(email, "Nora", "Newcomer", "de-CH").unwrap(),
        password_hash: Redacted::new("$argon2id$new".into()),
    }
}

async fn check_invitation_create_list(h: &Harness) {
    let ctx = h.ctx_a().await;
    let g = h.store.group_create(&ctx, "G").await.unwrap();
    let scope = Scope::Groups([g.id].into_iter().collect());
    let (inv, secret) = h
        .store
        .invitation_create(
            &ctx,
            email("New.Person@Example.com"),
            PA,
            scope.clone(),
            DAY,
        )
        .await
        .unwrap();
    assert!(secret.expose().starts_with("pfi_"));
    assert_eq!(inv.email.expose(), "new.person@example.com");
    assert_eq!(inv.state, InvitationState::Pending);
    assert_eq!(inv.expires_at_ms, START_MS + DAY);
    h.advance(1);
    let (inv2, _) = h
        .store
        .invitation_create(&ctx, email("second@example.com"), PA, Scope::Tenant, DAY)
        .await
        .unwrap();
    let list = h.store.invitations_list(&ctx).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, inv2.id, "newest first");
    assert_eq!(list[1].id, inv.id);
    assert_eq!(list[1].email, inv.email);
    assert_eq!(list[1].role, PA);
    assert_eq!(list[1].scope, scope);
    assert_eq!(list[1].created_at_ms, START_MS);
    assert_eq!(list[1].state, InvitationState::Pending);
    assert_eq!(
        h.store.invitation_email(secret.expose()).await.unwrap(),
        inv.email
    );
    let last = h.store.audit_list(&ctx, 0, 1000).await.unwrap();
    let last = last.last().unwrap();
    assert_eq!(last.action, "invitation_created");
    assert!(
        !last.detail.to_string().contains("example.com"),
        "no e-mail in the audit log"
    );

    // Permission, scope, validation.
    let pa = h
        .ctx(
            &h.add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
                .await,
        )
        .await;
    assert_forbidden(
        h.store
            .invitation_create(&pa, email("x@example.com"), PA, Scope::Tenant, DAY)
            .await,
        Permission::UsersManage,
    );
    assert_forbidden(h.store.invitations_list(&pa).await, Permission::UsersManage);
    assert_forbidden(
        h.store.invitation_revoke(&pa, inv.id).await,
        Permission::UsersManage,
    );
    let narrow = h
        .add(
            h.a,
            "narrow@tenant-a.example",
            RoleRef::BuiltIn(BuiltInRole::ItAdmin),
            scope.clone(),
        )
        .await;
    assert_scope_too_narrow(
        h.store
            .invitation_create(
                &h.ctx(&narrow).await,
                email("x@example.com"),
                PA,
                scope,
                DAY,
            )
            .await,
    );
    let nowhere = Scope::Groups(
        [printfleet_domain::GroupId::new_random()]
            .into_iter()
            .collect(),
    );
    assert_invalid(
        h.store
            .invitation_create(&ctx, email("x@example.com"), PA, nowhere, DAY)
            .await,
        "scope.groups",
    );
}

async fn check_invitation_accept_new_person(h: &Harness) {
    let ctx = h.ctx_a().await;
    let (inv, secret) = h
        .store
        .invitation_create(&ctx, email("nora@example.com"), PA, Scope::Tenant, DAY)
        .await
        .unwrap();
    // The profile's e-mail must be the invited one; the refusal leaves the invitation usable.
    assert_invalid(
        h.store
            .invitation_accept(secret.expose(), new_person("other@example.com"), None)
            .await,
        "email",
    );
    assert_eq!(
        h.store.invitations_list(&ctx).await.unwrap()[0].state,
        InvitationState::Pending
    );
    assert!(
        resolver::sign_in_lookup(&h.store, &email("other@example.com"))
            .await
            .unwrap()
            .is_none()
    );

    h.advance(1_000);
    let (tenant, user, membership) = h
        .store
        .invitation_accept(
            secret.expose(),
            new_person("NORA@example.com"),
            Some("203.0.113.9".into()),
        )
        .await
        .unwrap();
    assert_eq!(tenant, h.a);
    let nora = Person {
        user,
        membership,
        email: "nora@example.com".into(),
        tenant,
    };
    let c = h.ctx(&nora).await;
    assert_eq!(c.permissions, BuiltInRole::PrinterAdmin.permissions());
    assert_eq!(c.membership, Some(membership));
    let me = h.store.me_profile(&nora.me()).await.unwrap();
    assert_eq!(me.profile.first_name.expose(), "Nora");
    assert_eq!(me.profile.last_name.expose(), "Newcomer");
    assert_eq!(me.profile.locale, "de-CH");
    assert_eq!(me.created_at_ms, START_MS + 1_000);
    let (found, hash) = resolver::sign_in_lookup(&h.store, &email("nora@example.com"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, user);
    assert_eq!(hash.expose(), "$argon2id$new");
    let list = h.store.invitations_list(&ctx).await.unwrap();
    assert_eq!(list[0].id, inv.id);
    assert_eq!(list[0].state, InvitationState::Accepted);
    let entries = h.store.audit_list(&ctx, 0, 1000).await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.action, "invitation_accepted");
    assert_eq!(last.actor, format!("user:{user}"));
    assert_eq!(last.source, "203.0.113.9");
    // Closed invitations cannot be revoked.
    assert_conflict(
        h.store.invitation_revoke(&ctx, inv.id).await,
        "invitation_closed",
    );
}

async fn check_invitation_accept_existing(h: &Harness) {
    let ctx = h.ctx_a().await;
    let existing = h
        .add_builtin(h.b, "eve@example.com", BuiltInRole::ReportAdmin)
        .await;
    let (_, secret) = h
        .store
        .invitation_create(&ctx, email("eve@example.com"), PA, Scope::Tenant, DAY)
        .await
        .unwrap();
    assert_eq!(
        h.store
            .invitation_email(secret.expose())
            .await
            .unwrap()
            .expose(),
        "eve@example.com"
    );
    // Someone new cannot take over an existing person's address ...
    assert_conflict(
        h.store
            .invitation_accept(secret.expose(), new_person("eve@example.com"), None)
            .await,
        "account_exists",
    );
    // ... nor may another signed-in person accept it.
    assert_conflict(
        h.store
            .invitation_accept(secret.expose(), Acceptor::Existing(h.admin_b.me()), None)
            .await,
        "invitation_other_email",
    );
    assert_eq!(
        h.store.invitations_list(&ctx).await.unwrap()[0].state,
        InvitationState::Pending
    );
    let (tenant, user, membership) = h
        .store
        .invitation_accept(secret.expose(), Acceptor::Existing(existing.me()), None)
        .await
        .unwrap();
    assert_eq!((tenant, user), (h.a, existing.user));
    let in_a = Person {
        user,
        membership,
        email: existing.email.clone(),
        tenant: h.a,
    };
    assert_eq!(
        h.ctx(&in_a).await.permissions,
        BuiltInRole::PrinterAdmin.permissions()
    );
    assert_eq!(
        h.store.my_memberships(&existing.me()).await.unwrap().len(),
        2
    );
    // An invitation to someone who is already a member cannot be accepted twice over.
    let (_, again) = h
        .store
        .invitation_create(&ctx, email("eve@example.com"), PA, Scope::Tenant, DAY)
        .await
        .unwrap();
    assert_conflict(
        h.store
            .invitation_accept(again.expose(), Acceptor::Existing(existing.me()), None)
            .await,
        "already_member",
    );
}

async fn check_invitation_expired(h: &Harness) {
    let ctx = h.ctx_a().await;
    let (inv, secret) = h
        .store
        .invitation_create(&ctx, email("late@example.com"), PA, Scope::Tenant, 60_000)
        .await
        .unwrap();
    h.advance(59_999);
    assert_eq!(
        h.store.invitations_list(&ctx).await.unwrap()[0].state,
        InvitationState::Pending
    );
    h.advance(1);
    assert_eq!(
        h.store.invitations_list(&ctx).await.unwrap()[0].state,
        InvitationState::Expired
    );
    assert_conflict(
        h.store
            .invitation_accept(secret.expose(), new_person("late@example.com"), None)
            .await,
        "invitation_expired",
    );
    assert!(
        resolver::sign_in_lookup(&h.store, &email("late@example.com"))
            .await
            .unwrap()
            .is_none()
    );
    // Expired but never closed: it may still be revoked.
    h.store.invitation_revoke(&ctx, inv.id).await.unwrap();
}

async fn check_invitation_used_twice(h: &Harness) {
    let ctx = h.ctx_a().await;
    let (_, secret) = h
        .store
        .invitation_create(&ctx, email("once@example.com"), PA, Scope::Tenant, DAY)
        .await
        .unwrap();
    let (_, user, _) = h
        .store
        .invitation_accept(secret.expose(), new_person("once@example.com"), None)
        .await
        .unwrap();
    assert_conflict(
        h.store
            .invitation_accept(secret.expose(), new_person("once@example.com"), None)
            .await,
        "invitation_used",
    );
    let me = Me {
        user,
        session: None,
        source: None,
    };
    assert_conflict(
        h.store
            .invitation_accept(secret.expose(), Acceptor::Existing(me), None)
            .await,
        "invitation_used",
    );
}

async fn check_invitation_revoked(h: &Harness) {
    let ctx = h.ctx_a().await;
    let (inv, secret) = h
        .store
        .invitation_create(&ctx, email("gone@example.com"), PA, Scope::Tenant, DAY)
        .await
        .unwrap();
    h.store.invitation_revoke(&ctx, inv.id).await.unwrap();
    assert_eq!(
        h.store.invitations_list(&ctx).await.unwrap()[0].state,
        InvitationState::Revoked
    );
    assert_conflict(
        h.store
            .invitation_accept(secret.expose(), new_person("gone@example.com"), None)
            .await,
        "invitation_revoked",
    );
    assert_conflict(
        h.store.invitation_revoke(&ctx, inv.id).await,
        "invitation_closed",
    );
    assert_not_found(
        h.store
            .invitation_revoke(&ctx, printfleet_domain::InvitationId::new_random())
            .await,
    );
    let entries = h.store.audit_list(&ctx, 0, 1000).await.unwrap();
    assert_eq!(entries.last().unwrap().action, "invitation_revoked");
}

async fn check_invitation_unknown_token(h: &Harness) {
    let unknown = format!("pfi_{}", "A".repeat(43));
    assert_not_found(
        h.store
            .invitation_accept(&unknown, new_person("u@example.com"), None)
            .await,
    );
    assert_not_found(h.store.invitation_email(&unknown).await);
    for malformed in ["", "pfi_short", "pf_AAAA", "not a token"] {
        assert_not_found(
            h.store
                .invitation_accept(malformed, new_person("u@example.com"), None)
                .await,
        );
        assert_not_found(h.store.invitation_email(malformed).await);
    }
    // A session or API token secret is no invitation.
    let (_, session) = h
        .store
        .session_create(
            h.admin_a.user,
            printfleet_storage::sessions::SessionPolicy {
                idle_ms: DAY,
                absolute_ms: DAY,
            },
            None,
            None,
        )
        .await
        .unwrap();
    assert_not_found(
        h.store
            .invitation_accept(session.expose(), new_person("u@example.com"), None)
            .await,
    );
}

async fn check_invitations_cross_tenant(h: &Harness) {
    let ctx_a = h.ctx_a().await;
    let ctx_b = h.ctx_b().await;
    let (inv, _) = h
        .store
        .invitation_create(&ctx_a, email("cross@example.com"), PA, Scope::Tenant, DAY)
        .await
        .unwrap();
    assert!(h.store.invitations_list(&ctx_b).await.unwrap().is_empty());
    assert_not_found(h.store.invitation_revoke(&ctx_b, inv.id).await);
    let list = h.store.invitations_list(&ctx_a).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, InvitationState::Pending);
}
