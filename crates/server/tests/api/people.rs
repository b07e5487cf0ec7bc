//! Invitations, API tokens, roles and scopes, end to end over HTTP.

use crate::helpers::{json, spawn_app, world, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn an_invited_person_joins_with_the_role_and_the_link_works_once() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (admin, csrf) = app.sign_in("it@a.example", PASSWORD).await;
    let r = admin
        .post(app.url(&format!("/api/v1/tenants/{}/invitations", w.a)))
        .header("x-csrf-token", &csrf)
        .json(&json!({"email": "Newbie@A.example", "role": "printer-admin", "scope": {"kind": "groups", "groups": [w.g1]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created = json(r).await;
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("pfi_"));
    assert!(created["link"].as_str().unwrap().ends_with(&token));
    // The list never shows the secret again.
    let list = admin
        .get(app.url(&format!("/api/v1/tenants/{}/invitations", w.a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&token) && list.contains("pending"));

    let anon = app.client();
    let accept = json!({"token": token, "first_name": "Nina", "last_name": "Newbie", "locale": "de-CH", "password": "a sufficiently long one"});
    let r = anon
        .post(app.url("/api/v1/invitations/accept"))
        .json(&accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = anon
        .post(app.url("/api/v1/invitations/accept"))
        .json(&accept)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(json(r).await["code"], "invitation_used");

    let (nina, _) = app
        .sign_in("newbie@a.example", "a sufficiently long one")
        .await;
    let me = json(nina.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    assert_eq!(me["first_name"], "Nina");
    assert_eq!(me["memberships"][0]["role"], "printer-admin");
    let groups = json(
        nina.get(app.url(&format!("/api/v1/tenants/{}/groups", w.a)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        groups.as_array().unwrap().len(),
        1,
        "scoped to Floor 1 only: {groups}"
    );
    app.stop().await;
}

#[tokio::test]
async fn invitation_links_expire_and_bad_tokens_are_not_found() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (admin, csrf) = app.sign_in("it@a.example", PASSWORD).await;
    let created = json(
        admin
            .post(app.url(&format!("/api/v1/tenants/{}/invitations", w.a)))
            .header("x-csrf-token", &csrf)
            .json(&json!({"email": "late@a.example", "role": "report-admin"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    app.clock.advance_ms(73 * 3_600_000);
    let anon = app.client();
    let body = |t: &str| json!({"token": t, "first_name": "L", "last_name": "Ate", "password": "long enough password"});
    let r = anon
        .post(app.url("/api/v1/invitations/accept"))
        .json(&body(created["token"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(json(r).await["code"], "invitation_expired");
    let r = anon
        .post(app.url("/api/v1/invitations/accept"))
        .json(&body("pfi_nonsense"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn api_tokens_are_shown_once_follow_the_role_and_stop_on_revocation() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (pa, csrf) = app.sign_in("printer@a.example", PASSWORD).await;
    let created = json(
        pa.post(app.url(&format!("/api/v1/tenants/{}/api-tokens", w.a)))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "inventory script"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("pf_"));
    let listed = pa
        .get(app.url(&format!("/api/v1/tenants/{}/api-tokens", w.a)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&secret));
    let bot = reqwest::Client::new();
    let groups_url = app.url(&format!("/api/v1/tenants/{}/groups", w.a));
    let r = bot
        .post(&groups_url)
        .bearer_auth(&secret)
        .json(&json!({"name": "From CI"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "tokens need no CSRF token");
    // The token is bound to its tenant: another tenant's path is not found.
    let r = bot
        .get(app.url(&format!("/api/v1/tenants/{}/groups", w.b)))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Demoting the membership demotes the token at once.
    let (admin, admin_csrf) = app.sign_in("it@a.example", PASSWORD).await;
    let r = admin
        .patch(app.url(&format!(
            "/api/v1/tenants/{}/members/{}",
            w.a, w.printer_admin_membership
        )))
        .header("x-csrf-token", &admin_csrf)
        .json(&json!({"role": "report-admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        bot.get(&groups_url)
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // Revocation takes effect at once.
    let r = admin
        .delete(app.url(&format!(
            "/api/v1/tenants/{}/api-tokens/{}",
            w.a,
            created["token"]["id"].as_str().unwrap()
        )))
        .header("x-csrf-token", &admin_csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        bot.get(&groups_url)
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn another_tenants_objects_are_not_found_by_id() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (other, csrf) = app.sign_in("it@b.example", PASSWORD).await;
    for path in [
        format!("/api/v1/tenants/{}", w.a),
        format!("/api/v1/tenants/{}/groups/{}", w.a, w.g1),
        format!("/api/v1/tenants/{}/groups/{}", w.b, w.g1),
        format!("/api/v1/tenants/{}/members/{}", w.b, w.target_member),
    ] {
        let r = other.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = other
        .delete(app.url(&format!("/api/v1/tenants/{}/groups/{}", w.b, w.g1)))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Still there for its own tenant.
    let (admin, _) = app.sign_in("it@a.example", PASSWORD).await;
    assert_eq!(
        admin
            .get(app.url(&format!("/api/v1/tenants/{}/groups/{}", w.a, w.g1)))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn custom_roles_grant_exactly_their_permissions_and_the_last_it_admin_stays() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (admin, csrf) = app.sign_in("it@a.example", PASSWORD).await;
    let role = json(
        admin
            .post(app.url(&format!("/api/v1/tenants/{}/roles", w.a)))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "Auditor", "permissions": ["audit.read"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let r = admin
        .patch(app.url(&format!(
            "/api/v1/tenants/{}/members/{}",
            w.a, w.target_member
        )))
        .header("x-csrf-token", &csrf)
        .json(&json!({"role": role["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (auditor, _) = app.sign_in("target@a.example", PASSWORD).await;
    assert_eq!(
        auditor
            .get(app.url(&format!("/api/v1/tenants/{}/audit", w.a)))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        auditor
            .get(app.url(&format!("/api/v1/tenants/{}/groups", w.a)))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let verify = json(
        auditor
            .get(app.url(&format!("/api/v1/tenants/{}/audit/verify", w.a)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(verify["ok"], true, "{verify}");
    // The role is in use: it cannot be deleted.
    let r = admin
        .delete(app.url(&format!(
            "/api/v1/tenants/{}/roles/{}",
            w.a,
            role["id"].as_str().unwrap()
        )))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // The only IT Admin cannot demote themselves.
    let me = json(admin.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    let mine = me["memberships"][0]["membership_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = admin
        .patch(app.url(&format!("/api/v1/tenants/{}/members/{mine}", w.a)))
        .header("x-csrf-token", &csrf)
        .json(&json!({"role": "report-admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(json(r).await["code"], "last_it_admin");
    app.stop().await;
}
