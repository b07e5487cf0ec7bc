//! Custom roles: CRUD, tenant isolation, roles in use, no escalation.

use crate::harness::*;
use printfleet_domain::{BuiltInRole, Email, Permission, RoleId, RoleRef, Scope};
use std::collections::BTreeSet;

conformance! {
    check_roles_crud => sqlite_roles_crud, postgres_roles_crud;
    check_roles_cross_tenant => sqlite_roles_cross_tenant, postgres_roles_cross_tenant;
    check_role_in_use => sqlite_role_in_use, postgres_role_in_use;
    check_role_no_escalation => sqlite_role_no_escalation, postgres_role_no_escalation;
}

fn perms(p: &[Permission]) -> BTreeSet<Permission> {
    p.iter().copied().collect()
}

async fn check_roles_crud(h: &Harness) {
    use Permission::*;
    let ctx = h.ctx_a().await;
    let builtins = h.store.roles_list(&ctx).await.unwrap();
    assert_eq!(builtins.len(), 3);
    assert_eq!(
        builtins[0].reference,
        RoleRef::BuiltIn(BuiltInRole::ItAdmin)
    );

    let r = h
        .store
        .role_create(&ctx, " Helpdesk ", perms(&[DevicesRead, ReportsRead]))
        .await
        .unwrap();
    assert_eq!(r.name, "Helpdesk");
    let RoleRef::Custom(id) = r.reference else {
        panic!("a created role is custom")
    };
    assert_eq!(h.store.role_get(&ctx, id).await.unwrap(), r);
    let list = h.store.roles_list(&ctx).await.unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[3], r);

    let r2 = h
        .store
        .role_update(&ctx, id, Some("Service desk"), Some(perms(&[DevicesRead])))
        .await
        .unwrap();
    assert_eq!(r2.name, "Service desk");
    assert_eq!(r2.permissions, perms(&[DevicesRead]));
    assert_eq!(h.store.role_get(&ctx, id).await.unwrap(), r2);
    // Partial update keeps the rest.
    let r3 = h
        .store
        .role_update(&ctx, id, None, Some(perms(&[DevicesRead, DevicesManage])))
        .await
        .unwrap();
    assert_eq!(r3.name, "Service desk");

    // Validation and conflicts.
    let other = h
        .store
        .role_create(&ctx, "Auditor", perms(&[AuditRead]))
        .await
        .unwrap();
    let RoleRef::Custom(other_id) = other.reference else {
        panic!("custom")
    };
    assert_conflict(
        h.store
            .role_create(&ctx, "Auditor", perms(&[AuditRead]))
            .await,
        "role_name_taken",
    );
    assert_conflict(
        h.store
            .role_update(&ctx, other_id, Some("Service desk"), None)
            .await,
        "role_name_taken",
    );
    assert_invalid(
        h.store
            .role_create(&ctx, "IT Admin", perms(&[AuditRead]))
            .await,
        "name",
    );
    assert_invalid(
        h.store
            .role_create(&ctx, "printer-admin", perms(&[AuditRead]))
            .await,
        "name",
    );
    assert_invalid(
        h.store.role_create(&ctx, "Empty", BTreeSet::new()).await,
        "permissions",
    );
    assert_invalid(
        h.store
            .role_update(&ctx, id, None, Some(BTreeSet::new()))
            .await,
        "permissions",
    );

    // Reading roles needs roles.manage or users.manage.
    let pa = h
        .add_builtin(h.a, "pa@tenant-a.example", BuiltInRole::PrinterAdmin)
        .await;
    let pa = h.ctx(&pa).await;
    assert_forbidden(h.store.roles_list(&pa).await, RolesManage);
    assert_forbidden(h.store.role_get(&pa, id).await, RolesManage);
    assert_forbidden(
        h.store
            .role_create(&pa, "Mine", perms(&[DevicesRead]))
            .await,
        RolesManage,
    );
    assert_forbidden(
        h.store.role_update(&pa, id, Some("Mine"), None).await,
        RolesManage,
    );
    assert_forbidden(h.store.role_delete(&pa, id).await, RolesManage);
    let um = h
        .add_custom(
            h.a,
            "um@tenant-a.example",
            "Users only",
            &[UsersManage],
            Scope::Tenant,
        )
        .await;
    let um = h.ctx(&um).await;
    assert_eq!(h.store.roles_list(&um).await.unwrap().len(), 6);
    assert_eq!(h.store.role_get(&um, id).await.unwrap(), r3);

    h.store.role_delete(&ctx, id).await.unwrap();
    assert_not_found(h.store.role_get(&ctx, id).await);
    assert_not_found(h.store.role_update(&ctx, id, Some("Back"), None).await);
    assert_not_found(h.store.role_delete(&ctx, id).await);
    assert_not_found(h.store.role_get(&ctx, RoleId::new_random()).await);
    let actions: Vec<String> = h
        .store
        .audit_list(&ctx, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for a in ["role_created", "role_updated", "role_deleted"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited");
    }
}

async fn check_roles_cross_tenant(h: &Harness) {
    let ctx_a = h.ctx_a().await;
    let ctx_b = h.ctx_b().await;
    let r = h
        .store
        .role_create(&ctx_a, "Helpdesk", perms(&[Permission::DevicesRead]))
        .await
        .unwrap();
    let RoleRef::Custom(id) = r.reference else {
        panic!("custom")
    };
    assert_not_found(h.store.role_get(&ctx_b, id).await);
    assert_not_found(h.store.role_update(&ctx_b, id, Some("Mine"), None).await);
    assert_not_found(h.store.role_delete(&ctx_b, id).await);
    assert_eq!(h.store.roles_list(&ctx_b).await.unwrap().len(), 3);
    // B cannot hand out A's role.
    assert_invalid(
        h.store
            .invitation_create(
                &ctx_b,
                Email::parse("e", "x@tenant-b.example").unwrap(),
                r.reference,
                Scope::Tenant,
                60_000,
            )
            .await,
        "role",
    );
    assert_invalid(
        h.store
            .member_update(&ctx_b, h.admin_b.membership, Some(r.reference), None)
            .await,
        "role",
    );
    // Same name in B is fine; A's role is unchanged.
    h.store
        .role_create(&ctx_b, "Helpdesk", perms(&[Permission::AuditRead]))
        .await
        .unwrap();
    assert_eq!(h.store.role_get(&ctx_a, id).await.unwrap(), r);
}

async fn check_role_in_use(h: &Harness) {
    let ctx = h.ctx_a().await;
    let r = h
        .store
        .role_create(&ctx, "Helpdesk", perms(&[Permission::DevicesRead]))
        .await
        .unwrap();
    let RoleRef::Custom(id) = r.reference else {
        panic!("custom")
    };
    let m = h
        .add(h.a, "m@tenant-a.example", r.reference, Scope::Tenant)
        .await;
    assert_eq!(h.ctx(&m).await.permissions, r.permissions);
    assert_conflict(h.store.role_delete(&ctx, id).await, "role_in_use");
    h.store
        .member_update(
            &ctx,
            m.membership,
            Some(RoleRef::BuiltIn(BuiltInRole::ReportAdmin)),
            None,
        )
        .await
        .unwrap();
    // An open invitation holds it too.
    let (inv, _) = h
        .store
        .invitation_create(
            &ctx,
            Email::parse("e", "inv@tenant-a.example").unwrap(),
            r.reference,
            Scope::Tenant,
            60_000,
        )
        .await
        .unwrap();
    assert_conflict(h.store.role_delete(&ctx, id).await, "role_in_use");
    h.store.invitation_revoke(&ctx, inv.id).await.unwrap();
    h.store.role_delete(&ctx, id).await.unwrap();
    assert_not_found(h.store.role_get(&ctx, id).await);
}

async fn check_role_no_escalation(h: &Harness) {
    use Permission::*;
    let rm = h
        .add_custom(
            h.a,
            "rm@tenant-a.example",
            "Role managers",
            &[RolesManage, DevicesRead],
            Scope::Tenant,
        )
        .await;
    let rm = h.ctx(&rm).await;
    assert_forbidden(
        h.store
            .role_create(&rm, "Power", perms(&[DevicesRead, UsersManage]))
            .await,
        UsersManage,
    );
    let ok = h
        .store
        .role_create(&rm, "Readers", perms(&[DevicesRead]))
        .await
        .unwrap();
    let RoleRef::Custom(id) = ok.reference else {
        panic!("custom")
    };
    assert_forbidden(
        h.store
            .role_update(&rm, id, None, Some(perms(&[DevicesRead, AuditRead])))
            .await,
        AuditRead,
    );
    assert_eq!(h.store.role_get(&rm, id).await.unwrap(), ok);

    // Assigning roles: a users manager without audit.read cannot make anyone an IT Admin, nor
    // invite one.
    let um = h
        .add_custom(
            h.a,
            "um@tenant-a.example",
            "User managers",
            &[UsersManage, RolesManage],
            Scope::Tenant,
        )
        .await;
    let um_ctx = h.ctx(&um).await;
    let target = h
        .add_builtin(h.a, "t@tenant-a.example", BuiltInRole::ReportAdmin)
        .await;
    let err = h
        .store
        .member_update(
            &um_ctx,
            target.membership,
            Some(RoleRef::BuiltIn(BuiltInRole::ItAdmin)),
            None,
        )
        .await;
    // The target's current role (Report Admin) already holds reports.run, which the caller
    // lacks: nobody changes a member who holds more than they do.
    assert_forbidden(err, ReportsRun);
    let err = h
        .store
        .invitation_create(
            &um_ctx,
            Email::parse("e", "new@tenant-a.example").unwrap(),
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Tenant,
            60_000,
        )
        .await;
    assert_forbidden(err, DevicesRead);
    assert_eq!(
        h.store
            .member_get(&h.ctx_a().await, target.membership)
            .await
            .unwrap()
            .role,
        RoleRef::BuiltIn(BuiltInRole::ReportAdmin)
    );
}
