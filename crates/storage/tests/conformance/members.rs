//! Memberships: list, get, update, remove, my memberships, bootstrap and system adds.

use crate::harness::*;
use printfleet_domain::tenant::Contact;
use printfleet_domain::{BuiltInRole, GroupId, MembershipId, Permission, RoleRef, Scope};
use printfleet_storage::resolver;

conformance! {
    check_members_list_get => sqlite_members_list_get, postgres_members_list_get;
    check_member_update => sqlite_member_update, postgres_member_update;
    check_member_remove => sqlite_member_remove, postgres_member_remove;
    check_last_it_admin => sqlite_last_it_admin, postgres_last_it_admin;
    check_members_cross_tenant => sqlite_members_cross_tenant, postgres_members_cross_tenant;
    check_my_memberships => sqlite_my_memberships, postgres_my_memberships;
    check_bootstrap_admin => sqlite_bootstrap_admin, postgres_bootstrap_admin;
    check_add_member_as_system => sqlite_add_member_as_system, postgres_add_member_as_system;
}

const PA: RoleRef = RoleRef::BuiltIn(BuiltInRole::PrinterAdmin);
const RA: RoleRef = RoleRef::BuiltIn(BuiltInRole::ReportAdmin);
const IT: RoleRef = RoleRef::BuiltIn(BuiltInRole::ItAdmin);

async fn check_members_list_get(h: &Harness) {
    let ctx = h.ctx_a().await;
    h.advance(10);
    let pa = h
        .add_builtin(h.a, "Pat.Admin@Tenant-A.example", BuiltInRole::PrinterAdmin)
        .await;
    let list = h.store.members_list(&ctx).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, h.admin_a.membership);
    assert_eq!(list[0].role, IT);
    assert_eq!(list[0].role_name, "IT Admin");
    assert_eq!(list[1].id, pa.membership);
    assert_eq!(list[1].user.id, pa.user);
    assert_eq!(
        list[1].user.profile.email.expose(),
        "pat.admin@tenant-a.example"
    );
    assert_eq!(list[1].user.profile.first_name.expose(), "Test");
    assert_eq!(list[1].role_name, "Printer Admin");
    assert_eq!(list[1].scope, Scope::Tenant);
    assert_eq!(list[1].created_at_ms, START_MS + 10);
    let m = h.store.member_get(&ctx, pa.membership).await.unwrap();
    assert_eq!(m.id, pa.membership);
    assert_eq!(m.user.id, pa.user);
    assert_eq!(m.role, PA);
    assert_not_found(h.store.member_get(&ctx, MembershipId::new_random()).await);
    // users.manage is required.
    let pa_ctx = h.ctx(&pa).await;
    assert_forbidden(h.store.members_list(&pa_ctx).await, Permission::UsersManage);
    assert_forbidden(
        h.store.member_get(&pa_ctx, pa.membership).await,
        Permission::UsersManage,
    );
    // A custom role shows under its own name.
    let custom = h
        .add_custom(
            h.a,
            "c@tenant-a.example",
            "Temp",
            &[Permission::DevicesRead],
            Scope::Tenant,
        )
        .await;
    let m = h.store.member_get(&ctx, custom.membership).await.unwrap();
    assert_eq!(m.role_name, "Temp");
}

async fn check_member_update(h: &Harness) {
    let ctx = h.ctx_a().await;
    let g = h.store.group_create(&ctx, "G").await.unwrap();
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let groups = Scope::Groups([g.id].into_iter().collect());
    let m = h
        .store
        .member_update(&ctx, pa.membership, Some(RA), Some(groups.clone()))
        .await
        .unwrap();
    assert_eq!(m.role, RA);
    assert_eq!(m.role_name, "Report Admin");
    assert_eq!(m.scope, groups);
    let c = h.ctx(&pa).await;
    assert_eq!(c.permissions, BuiltInRole::ReportAdmin.permissions());
    assert_eq!(c.scope, groups);
    // Only the role: the scope stays.
    let m = h
        .store
        .member_update(&ctx, pa.membership, Some(PA), None)
        .await
        .unwrap();
    assert_eq!(m.scope, groups);
    assert_eq!(
        h.store.member_get(&ctx, pa.membership).await.unwrap().role,
        PA
    );
    // A custom role of the tenant.
    let role = h
        .store
        .role_create(
            &ctx,
            "Readers",
            [Permission::DevicesRead].into_iter().collect(),
        )
        .await
        .unwrap();
    let m = h
        .store
        .member_update(
            &ctx,
            pa.membership,
            Some(role.reference),
            Some(Scope::Tenant),
        )
        .await
        .unwrap();
    assert_eq!(m.role_name, "Readers");
    assert_eq!(h.ctx(&pa).await.permissions, role.permissions);
    let last = h.store.audit_list(&ctx, 0, 1000).await.unwrap();
    let last = last.last().unwrap();
    assert_eq!(last.action, "membership_changed");
    assert_eq!(last.target, format!("membership:{}", pa.membership));
    assert_eq!(last.actor, format!("user:{}", h.admin_a.user));

    // Validation.
    let nowhere = Scope::Groups([GroupId::new_random()].into_iter().collect());
    assert_invalid(
        h.store
            .member_update(&ctx, pa.membership, None, Some(nowhere))
            .await,
        "scope.groups",
    );
    let unknown = RoleRef::Custom(printfleet_domain::RoleId::new_random());
    assert_invalid(
        h.store
            .member_update(&ctx, pa.membership, Some(unknown), None)
            .await,
        "role",
    );
    assert_not_found(
        h.store
            .member_update(&ctx, MembershipId::new_random(), Some(RA), None)
            .await,
    );
    // Permission and scope.
    let pa_ctx = h
        .ctx(
            &h.add_builtin(h.a, "pa2@tenant-a.example", BuiltInRole::PrinterAdmin)
                .await,
        )
        .await;
    assert_forbidden(
        h.store
            .member_update(&pa_ctx, pa.membership, Some(RA), None)
            .await,
        Permission::UsersManage,
    );
    let narrow = h
        .add(h.a, "narrow@tenant-a.example", IT, groups.clone())
        .await;
    let narrow = h.ctx(&narrow).await;
    assert_scope_too_narrow(
        h.store
            .member_update(&narrow, pa.membership, Some(RA), None)
            .await,
    );
}

async fn check_member_remove(h: &Harness) {
    let ctx = h.ctx_a().await;
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let pa_ctx = h.ctx(&pa).await;
    let (tok, secret) = h.store.token_create(&pa_ctx, "ci", None).await.unwrap();
    assert!(resolver::api_token(&h.store, secret.expose(), None)
        .await
        .unwrap()
        .is_some());
    // A Printer Admin cannot remove anyone; a group-scoped IT Admin neither.
    assert_forbidden(
        h.store.member_remove(&pa_ctx, h.admin_a.membership).await,
        Permission::UsersManage,
    );
    let g = h.store.group_create(&ctx, "G").await.unwrap();
    let narrow = h
        .add(
            h.a,
            "narrow@tenant-a.example",
            IT,
            Scope::Groups([g.id].into_iter().collect()),
        )
        .await;
    assert_scope_too_narrow(
        h.store
            .member_remove(&h.ctx(&narrow).await, pa.membership)
            .await,
    );

    h.store.member_remove(&ctx, pa.membership).await.unwrap();
    assert_not_found(h.store.member_get(&ctx, pa.membership).await);
    assert_not_found(h.store.member_remove(&ctx, pa.membership).await);
    assert!(h
        .store
        .members_list(&ctx)
        .await
        .unwrap()
        .iter()
        .all(|m| m.id != pa.membership));
    assert_not_found(resolver::tenant_ctx(&h.store, &pa.me(), h.a).await);
    // Removing revoked the member's API tokens.
    assert!(resolver::api_token(&h.store, secret.expose(), None)
        .await
        .unwrap()
        .is_none());
    let t = h.store.tokens_list(&ctx).await.unwrap();
    let t = t.iter().find(|t| t.id == tok.id).unwrap();
    assert_eq!(t.revoked_at_ms, Some(START_MS));
    // The person still exists (identities are deployment-wide).
    assert_eq!(h.store.me_profile(&pa.me()).await.unwrap().id, pa.user);
    let last = h.store.audit_list(&ctx, 0, 1000).await.unwrap();
    assert_eq!(last.last().unwrap().action, "membership_removed");
}

async fn check_last_it_admin(h: &Harness) {
    let ctx = h.ctx_a().await;
    assert_conflict(
        h.store
            .member_update(&ctx, h.admin_a.membership, Some(PA), None)
            .await,
        "last_it_admin",
    );
    assert_conflict(
        h.store.member_remove(&ctx, h.admin_a.membership).await,
        "last_it_admin",
    );
    // Still an IT Admin after the refused calls.
    assert_eq!(
        h.store
            .member_get(&ctx, h.admin_a.membership)
            .await
            .unwrap()
            .role,
        IT
    );
    // With a second IT Admin, the first may step down; then the second is the last.
    let second = h
        .add_builtin(h.a, "second@tenant-a.example", BuiltInRole::ItAdmin)
        .await;
    h.store
        .member_update(&ctx, h.admin_a.membership, Some(PA), None)
        .await
        .unwrap();
    let ctx2 = h.ctx(&second).await;
    assert_conflict(
        h.store.member_remove(&ctx2, second.membership).await,
        "last_it_admin",
    );
    // Narrowing the last tenant-wide IT Admin to device groups would leave nobody able to manage
    // people (every such call needs a tenant-wide scope): refused like a demotion.
    let g = h.store.group_create(&ctx2, "G").await.unwrap();
    let groups = Scope::Groups([g.id].into_iter().collect());
    assert_conflict(
        h.store
            .member_update(&ctx2, second.membership, None, Some(groups.clone()))
            .await,
        "last_it_admin",
    );
    assert_eq!(h.ctx(&second).await.scope, Scope::Tenant);
    // A group-scoped IT Admin does not count as another one ...
    let narrow = h
        .add(h.a, "narrow@tenant-a.example", IT, groups.clone())
        .await;
    assert_conflict(
        h.store
            .member_update(&ctx2, second.membership, Some(PA), None)
            .await,
        "last_it_admin",
    );
    assert_conflict(
        h.store.member_remove(&ctx2, second.membership).await,
        "last_it_admin",
    );
    // ... and may itself be changed or removed freely.
    h.store
        .member_update(&ctx2, narrow.membership, Some(RA), None)
        .await
        .unwrap();
    h.store
        .member_remove(&ctx2, narrow.membership)
        .await
        .unwrap();
    // The scope of a tenant-wide IT Admin may be narrowed while another one remains.
    let third = h
        .add_builtin(h.a, "third@tenant-a.example", BuiltInRole::ItAdmin)
        .await;
    h.store
        .member_update(&ctx2, third.membership, None, Some(groups.clone()))
        .await
        .unwrap();
    assert_eq!(h.ctx(&third).await.scope, groups);
    // Tenant B's last IT Admin is unaffected by A's count.
    assert_conflict(
        h.store
            .member_remove(&h.ctx_b().await, h.admin_b.membership)
            .await,
        "last_it_admin",
    );
}

async fn check_members_cross_tenant(h: &Harness) {
    let ctx_b = h.ctx_b().await;
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    assert_not_found(h.store.member_get(&ctx_b, pa.membership).await);
    assert_not_found(
        h.store
            .member_update(&ctx_b, pa.membership, Some(RA), None)
            .await,
    );
    assert_not_found(h.store.member_remove(&ctx_b, pa.membership).await);
    assert_not_found(h.store.member_get(&ctx_b, h.admin_a.membership).await);
    let list = h.store.members_list(&ctx_b).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, h.admin_b.membership);
    // Untouched in A.
    let m = h
        .store
        .member_get(&h.ctx_a().await, pa.membership)
        .await
        .unwrap();
    assert_eq!(m.role, PA);
}

async fn check_my_memberships(h: &Harness) {
    // One person in both tenants, with different roles.
    let in_b = h
        .add_builtin(h.b, "both@example.com", BuiltInRole::ReportAdmin)
        .await;
    let in_a = h
        .add_builtin(h.a, "both@example.com", BuiltInRole::PrinterAdmin)
        .await;
    assert_eq!(in_a.user, in_b.user, "one identity across tenants");
    let mine = h.store.my_memberships(&in_a.me()).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0].tenant, h.a, "ordered by tenant name");
    assert_eq!(mine[0].tenant_name, "Tenant A");
    assert_eq!(mine[0].membership, in_a.membership);
    assert_eq!(mine[0].role, PA);
    assert_eq!(mine[0].role_name, "Printer Admin");
    assert_eq!(mine[0].scope, Scope::Tenant);
    assert_eq!(mine[1].tenant, h.b);
    assert_eq!(mine[1].role_name, "Report Admin");
    let only_a = h.store.my_memberships(&h.admin_a.me()).await.unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].tenant, h.a);
    // The contexts differ per tenant.
    let ca = h.ctx(&in_a).await;
    let cb = h.ctx(&in_b).await;
    assert_eq!(ca.permissions, BuiltInRole::PrinterAdmin.permissions());
    assert_eq!(cb.permissions, BuiltInRole::ReportAdmin.permissions());
    assert_eq!(cb.tenant, h.b);
}

async fn check_bootstrap_admin(h: &Harness) {
    let c = h
        .store
        .create_tenant("Tenant C", "us", &Contact::default(), None)
        .await
        .unwrap();
    let (user, m) = h
        .store
        .bootstrap_admin(c, &profile("Boss@C.example"), HASH)
        .await
        .unwrap();
    let boss = Person {
        user,
        membership: m,
        email: "boss@c.example".into(),
        tenant: c,
    };
    let ctx = h.ctx(&boss).await;
    assert_eq!(ctx.permissions, BuiltInRole::ItAdmin.permissions());
    assert_eq!(ctx.scope, Scope::Tenant);
    assert_eq!(ctx.membership, Some(m));
    assert_eq!(
        h.store
            .me_profile(&boss.me())
            .await
            .unwrap()
            .profile
            .email
            .expose(),
        "boss@c.example"
    );
    // An existing person (A's admin) becomes the first IT Admin of another tenant.
    let d = h
        .store
        .create_tenant("Tenant D", "us", &Contact::default(), None)
        .await
        .unwrap();
    let (u2, _) = h
        .store
        .bootstrap_admin(d, &profile("admin@tenant-a.example"), "ignored")
        .await
        .unwrap();
    assert_eq!(u2, h.admin_a.user);
    assert_eq!(
        h.store.my_memberships(&h.admin_a.me()).await.unwrap().len(),
        2
    );
    // The existing person's password is not replaced.
    let email = printfleet_domain::Email::parse("e", "admin@tenant-a.example").unwrap();
    let (_, hash) = resolver::sign_in_lookup(&h.store, &email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hash.expose(), HASH);
    assert_conflict(
        h.store
            .bootstrap_admin(c, &profile("boss@c.example"), HASH)
            .await,
        "already_member",
    );
}

async fn check_add_member_as_system(h: &Harness) {
    let p = h
        .add_builtin(h.a, "p@example.com", BuiltInRole::ReportAdmin)
        .await;
    let q = h
        .add_builtin(h.b, "P@Example.com", BuiltInRole::PrinterAdmin)
        .await;
    assert_eq!(p.user, q.user);
    assert_conflict(
        h.store
            .add_member_as_system(h.a, &profile("p@example.com"), HASH, PA, Scope::Tenant)
            .await,
        "already_member",
    );
    let nowhere = Scope::Groups([GroupId::new_random()].into_iter().collect());
    assert_invalid(
        h.store
            .add_member_as_system(h.a, &profile("z@example.com"), HASH, PA, nowhere)
            .await,
        "scope.groups",
    );
    // The refused add created nobody.
    let z = printfleet_domain::Email::parse("e", "z@example.com").unwrap();
    assert!(resolver::sign_in_lookup(&h.store, &z)
        .await
        .unwrap()
        .is_none());
    let entries = h.store.audit_list(&h.ctx_a().await, 0, 1000).await.unwrap();
    let e = entries
        .iter()
        .find(|e| e.target == format!("membership:{}", p.membership))
        .unwrap();
    assert_eq!(e.action, "membership_changed");
    assert_eq!(e.actor, "system");
    assert!(
        !e.detail.to_string().contains("p@example.com"),
        "no personal data in the audit log"
    );
}
