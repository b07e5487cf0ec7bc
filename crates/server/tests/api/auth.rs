//! Sign-in, cookies, sessions, CSRF and the growing delays after failed sign-ins.

use crate::helpers::{json, spawn_app, spawn_app_with, world, Options, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_a_new_session_each_time() {
    let app = spawn_app().await;
    let _w = world(&app).await;
    let c = app.client();
    let r = c
        .post(app.url("/api/v1/auth/sign-in"))
        .json(&json!({"email": "IT@A.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("pf_session=pfs_"), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-HTTP demo cookies cannot be Secure"
    );
    let first = json(r).await;
    let r2 = c
        .post(app.url("/api/v1/auth/sign-in"))
        .json(&json!({"email": "it@a.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let second = json(r2).await;
    assert_ne!(
        first["session_id"], second["session_id"],
        "sign-in never reuses a session"
    );
    assert_ne!(first["csrf_token"], second["csrf_token"]);
    let me = json(c.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    assert_eq!(me["email"], "it@a.example");
    assert_eq!(me["memberships"][0]["role"], "it-admin");
    app.stop().await;
}

#[tokio::test]
async fn secure_host_cookie_and_hsts_under_tls() {
    let app = spawn_app_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    let _w = world(&app).await;
    assert!(app.base.starts_with("https://"));
    let c = app.client();
    let r = c
        .post(app.url("/api/v1/auth/sign-in"))
        .json(&json!({"email": "it@a.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.starts_with("__Host-pf_session=") && cookie.contains("Secure"),
        "{cookie}"
    );
    assert!(r.headers().get("strict-transport-security").is_some());
    app.stop().await;
}

#[tokio::test]
async fn state_changing_requests_with_a_cookie_need_the_csrf_token() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let (c, csrf) = app.sign_in("it@a.example", PASSWORD).await;
    let url = app.url(&format!("/api/v1/tenants/{}/groups", w.a));
    let r = c
        .post(&url)
        .json(&json!({"name": "No token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(json(r).await["code"], "csrf");
    let r = c
        .post(&url)
        .header("x-csrf-token", "pfc_wrong")
        .json(&json!({"name": "Bad token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(&url)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "Good"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Nothing was created by the refused requests.
    let names: Vec<String> = json(c.get(&url).send().await.unwrap())
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Floor 1", "Floor 2", "Good"]);
    let metrics = c
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("printfleet_csrf_rejections_total 2"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn sessions_are_listed_revoked_and_expire() {
    let app = spawn_app().await;
    let _w = world(&app).await;
    let phone = app.client();
    let laptop = app.client();
    let signin = json!({"email": "it@a.example", "password": PASSWORD});
    let p = json(
        phone
            .post(app.url("/api/v1/auth/sign-in"))
            .json(&signin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let l = json(
        laptop
            .post(app.url("/api/v1/auth/sign-in"))
            .json(&signin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let list = json(
        laptop
            .get(app.url("/api/v1/me/sessions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The laptop revokes the phone's session.
    let r = laptop
        .delete(app.url(&format!(
            "/api/v1/me/sessions/{}",
            p["session_id"].as_str().unwrap()
        )))
        .header("x-csrf-token", l["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        phone
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Idle timeout (30 minutes by default).
    app.clock.advance_ms(31 * 60_000);
    assert_eq!(
        laptop
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // Sign-out ends the session.
    let fresh = json(
        laptop
            .post(app.url("/api/v1/auth/sign-in"))
            .json(&signin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let r = laptop
        .post(app.url("/api/v1/auth/sign-out"))
        .header("x-csrf-token", fresh["csrf_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        laptop
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn absolute_timeout_ends_an_active_session() {
    let app = spawn_app().await;
    let _w = world(&app).await;
    let c = app.client();
    c.post(app.url("/api/v1/auth/sign-in"))
        .json(&json!({"email": "it@a.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    // Active every 20 minutes for 12 hours: the idle timeout never triggers, the absolute one does.
    for _ in 0..35 {
        app.clock.advance_ms(20 * 60_000);
        assert_eq!(
            c.get(app.url("/api/v1/me")).send().await.unwrap().status(),
            200
        );
    }
    app.clock.advance_ms(20 * 60_000);
    assert_eq!(
        c.get(app.url("/api/v1/me")).send().await.unwrap().status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_grow_a_delay_per_account_and_unknown_accounts_look_the_same() {
    let app = spawn_app().await;
    let _w = world(&app).await;
    let c = app.client();
    let try_in = |email: &'static str, password: &'static str| {
        let c = c.clone();
        let url = app.url("/api/v1/auth/sign-in");
        async move {
            c.post(url)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    for email in ["it@a.example", "nobody@a.example"] {
        for _ in 0..4 {
            let r = try_in(email, "wrong password").await;
            assert_eq!(r.status(), 401);
            assert_eq!(json(r).await["code"], "bad_credentials");
        }
        // The fifth failure starts a delay; now even the right password is refused until it passes.
        assert_eq!(try_in(email, "wrong password").await.status(), 401);
        let r = try_in(email, PASSWORD).await;
        assert_eq!(r.status(), 429, "{email}");
        assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    }
    // Other accounts are unaffected by this account's delay.
    assert_eq!(try_in("printer@a.example", PASSWORD).await.status(), 200);
    app.clock.advance_ms(1_000);
    assert_eq!(try_in("it@a.example", PASSWORD).await.status(), 200);
    // Lock-outs are audited in the deployment chain (without the e-mail address).
    let rows = sqlx::query("SELECT action, target FROM audit_log WHERE chain = 'deployment' AND action IN ('sign_in_failed', 'locked_out')")
        .fetch_all(app.store.raw_pool())
        .await
        .unwrap();
    use sqlx::Row;
    let targets: Vec<String> = rows.iter().map(|r| r.get::<String, _>(1)).collect();
    assert!(rows.len() >= 12, "{}", rows.len());
    assert!(targets.iter().all(|t| !t.contains('@')), "{targets:?}");
    assert!(targets.contains(&"account:unknown".to_string()));
    app.stop().await;
}

#[tokio::test]
async fn too_many_failures_from_one_address_are_delayed_across_accounts() {
    let app = spawn_app().await;
    let _w = world(&app).await;
    let c = app.client();
    for i in 0..20 {
        let r = c
            .post(app.url("/api/v1/auth/sign-in"))
            .json(&json!({"email": format!("guess{i}@a.example"), "password": "nope"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = c
        .post(app.url("/api/v1/auth/sign-in"))
        .json(&json!({"email": "it@a.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    app.stop().await;
}
