//! Device groups: CRUD, tenant isolation, group-scoped memberships.

use crate::harness::*;
use printfleet_domain::{BuiltInRole, GroupId, Permission, RoleRef, Scope};

conformance! {
    check_groups_crud => sqlite_groups_crud, postgres_groups_crud;
    check_groups_cross_tenant => sqlite_groups_cross_tenant, postgres_groups_cross_tenant;
    check_groups_scoped_membership => sqlite_groups_scoped_membership, postgres_groups_scoped_membership;
}

async fn check_groups_crud(h: &Harness) {
    let ctx = h.ctx_a().await;
    assert!(h.store.groups_list(&ctx).await.unwrap().is_empty());
    let g2 = h.store.group_create(&ctx, "  Second floor ").await.unwrap();
    let g1 = h.store.group_create(&ctx, "First floor").await.unwrap();
    assert_eq!(g2.name, "Second floor");
    assert_eq!(g1.created_at_ms, START_MS);
    // Listed by name.
    assert_eq!(
        h.store.groups_list(&ctx).await.unwrap(),
        vec![g1.clone(), g2.clone()]
    );
    assert_eq!(h.store.group_get(&ctx, g1.id).await.unwrap(), g1);
    assert_conflict(
        h.store.group_create(&ctx, "First floor").await,
        "group_name_taken",
    );
    assert_invalid(h.store.group_create(&ctx, "   ").await, "name");
    assert_invalid(h.store.group_create(&ctx, &"x".repeat(101)).await, "name");

    // Permissions: a Report Admin cannot read groups; a Printer Admin can manage them.
    let ra = h
        .add_builtin(h.a, "ra@tenant-a.example", BuiltInRole::ReportAdmin)
        .await;
    let ra = h.ctx(&ra).await;
    assert_forbidden(h.store.groups_list(&ra).await, Permission::DevicesRead);
    assert_forbidden(h.store.group_get(&ra, g1.id).await, Permission::DevicesRead);
    assert_forbidden(
        h.store.group_create(&ra, "Nope").await,
        Permission::DevicesManage,
    );
    assert_forbidden(
        h.store.group_delete(&ra, g1.id).await,
        Permission::DevicesManage,
    );
    // An unknown group is NotFound even for a caller without permission (nothing leaks).
    assert_not_found(h.store.group_get(&ra, GroupId::new_random()).await);
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let pa = h.ctx(&pa).await;
    let g3 = h.store.group_create(&pa, "Basement").await.unwrap();
    h.store.group_delete(&pa, g3.id).await.unwrap();

    h.store.group_delete(&ctx, g1.id).await.unwrap();
    assert_not_found(h.store.group_get(&ctx, g1.id).await);
    assert_not_found(h.store.group_delete(&ctx, g1.id).await);
    assert_eq!(h.store.groups_list(&ctx).await.unwrap(), vec![g2]);
    // The name is free again.
    h.store.group_create(&ctx, "First floor").await.unwrap();
    let actions: Vec<String> = h
        .store
        .audit_list(&ctx, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "group_created").count(), 4);
    assert_eq!(actions.iter().filter(|a| *a == "group_deleted").count(), 2);
}

async fn check_groups_cross_tenant(h: &Harness) {
    let ctx_a = h.ctx_a().await;
    let ctx_b = h.ctx_b().await;
    let ga = h.store.group_create(&ctx_a, "Lobby").await.unwrap();
    assert!(h.store.groups_list(&ctx_b).await.unwrap().is_empty());
    assert_not_found(h.store.group_get(&ctx_b, ga.id).await);
    assert_not_found(h.store.group_delete(&ctx_b, ga.id).await);
    // Names are unique per tenant only.
    let gb = h.store.group_create(&ctx_b, "Lobby").await.unwrap();
    assert_eq!(h.store.groups_list(&ctx_b).await.unwrap(), vec![gb.clone()]);
    assert_eq!(h.store.groups_list(&ctx_a).await.unwrap(), vec![ga.clone()]);
    assert_not_found(h.store.group_get(&ctx_a, gb.id).await);
    // A's group is untouched by B's attempts.
    assert_eq!(h.store.group_get(&ctx_a, ga.id).await.unwrap(), ga);
    // A scope in B naming A's group is refused.
    assert_invalid(
        h.store
            .add_member_as_system(
                h.b,
                &profile("x@tenant-b.example"),
                HASH,
                RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
                Scope::Groups([ga.id].into_iter().collect()),
            )
            .await,
        "scope.groups",
    );
}

async fn check_groups_scoped_membership(h: &Harness) {
    let ctx = h.ctx_a().await;
    let g1 = h.store.group_create(&ctx, "G1").await.unwrap();
    let g2 = h.store.group_create(&ctx, "G2").await.unwrap();
    let scoped = h
        .add(
            h.a,
            "scoped@tenant-a.example",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Groups([g1.id].into_iter().collect()),
        )
        .await;
    let sc = h.ctx(&scoped).await;
    assert_eq!(sc.scope, Scope::Groups([g1.id].into_iter().collect()));
    assert_eq!(h.store.groups_list(&sc).await.unwrap(), vec![g1.clone()]);
    assert_eq!(h.store.group_get(&sc, g1.id).await.unwrap(), g1);
    assert_not_found(h.store.group_get(&sc, g2.id).await);
    assert_not_found(h.store.group_delete(&sc, g2.id).await);
    assert_scope_too_narrow(h.store.group_create(&sc, "G3").await);
    // Nothing changed for the tenant-wide admin.
    assert_eq!(
        h.store.groups_list(&ctx).await.unwrap(),
        vec![g1.clone(), g2]
    );
    // Inside its scope the membership may delete.
    h.store.group_delete(&sc, g1.id).await.unwrap();
    assert!(h.store.groups_list(&sc).await.unwrap().is_empty());
}
