//! HTTP behaviour every client relies on: errors name the field, bad input never gets a 500,
//! limits, headers, and the OpenAPI document.

use crate::helpers::{json, spawn_app, world, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn bad_input_gets_a_4xx_naming_the_field_and_changes_nothing() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (c, csrf) = app.sign_in("it@a.example", PASSWORD).await;
    let csrf = csrf.as_str();
    let tenant = app.url(&format!("/api/v1/tenants/{}", w.a));
    let cases: Vec<(&str, String, serde_json::Value, u16, Option<&str>)> = vec![
        (
            "POST",
            app.url("/api/v1/auth/sign-in"),
            json!({"email": "not-an-email", "password": "x"}),
            400,
            Some("email"),
        ),
        (
            "POST",
            app.url("/api/v1/auth/sign-in"),
            json!({"email": "a@b.example"}),
            400,
            None,
        ),
        (
            "PATCH",
            tenant.clone(),
            json!({"region": "Mars!"}),
            400,
            Some("region"),
        ),
        (
            "PATCH",
            tenant.clone(),
            json!({"contact": {"phone": "call me maybe"}}),
            400,
            Some("contact.phone"),
        ),
        (
            "PATCH",
            tenant.clone(),
            json!({"contact": {"email": "nope"}}),
            400,
            Some("contact.email"),
        ),
        (
            "PATCH",
            tenant.clone(),
            json!({"name": ""}),
            400,
            Some("name"),
        ),
        ("PATCH", tenant.clone(), json!({"nmae": "typo"}), 400, None),
        (
            "POST",
            format!("{tenant}/roles"),
            json!({"name": "X", "permissions": ["devices.fly"]}),
            400,
            Some("permissions[0]"),
        ),
        (
            "POST",
            format!("{tenant}/roles"),
            json!({"name": "X", "permissions": []}),
            400,
            Some("permissions"),
        ),
        (
            "POST",
            format!("{tenant}/invitations"),
            json!({"email": "a@b.example", "role": "superuser"}),
            400,
            Some("role"),
        ),
        (
            "POST",
            format!("{tenant}/invitations"),
            json!({"email": "a@b.example", "role": "report-admin", "scope": {"kind": "groups", "groups": [uuid::Uuid::new_v4()]}}),
            400,
            Some("scope.groups"),
        ),
        (
            "POST",
            format!("{tenant}/groups"),
            json!({"name": "x".repeat(101)}),
            400,
            Some("name"),
        ),
        (
            "POST",
            format!("{tenant}/api-tokens"),
            json!({"name": "t", "expires_at_ms": 5}),
            400,
            Some("expires_at"),
        ),
        (
            "PATCH",
            format!("{tenant}/members/not-a-uuid"),
            json!({"role": "it-admin"}),
            404,
            None,
        ),
    ];
    for (method, url, body, want, field) in cases {
        let r = c
            .request(method.parse().unwrap(), &url)
            .header("x-csrf-token", csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{method} {url} {body}");
        let b = json(r).await;
        assert!(b["code"].is_string() && b["message"].is_string(), "{b}");
        if let Some(f) = field {
            assert_eq!(b["field"], f, "{method} {url} {body}: {b}");
        }
    }
    // Malformed JSON, wrong media type, oversized body.
    let r = c
        .patch(&tenant)
        .header("x-csrf-token", csrf)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .patch(&tenant)
        .header("x-csrf-token", csrf)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let big = json!({"name": "x".repeat(100_000)});
    let r = c
        .patch(&tenant)
        .header("x-csrf-token", csrf)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Nothing changed.
    let t = json(c.get(&tenant).send().await.unwrap()).await;
    assert_eq!(t["name"], "Tenant A");
    assert_eq!(t["contact"]["phone"], "+1 555 0199");
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_headers() {
    let app = spawn_app().await;
    let c = app.client();
    let r = c.get(app.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    for h in [
        "x-content-type-options",
        "content-security-policy",
        "x-frame-options",
    ] {
        assert!(r.headers().get(h).is_some(), "{h}");
    }
    assert!(r
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain HTTP"
    );
    assert_eq!(json(r).await["code"], "not_found");
    assert_eq!(
        c.get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert_eq!(
        c.get(app.url("/readyz")).send().await.unwrap().status(),
        200
    );
    app.stop().await;
}
