//! Every route in the OpenAPI document (plus the operations endpoints), called as every kind of
//! identity, against a fresh world each time; the exact status is asserted. A route missing from
//! the table fails the test, so a new route cannot ship without its authorization answers.

use crate::helpers::{spawn_app, world, TestApp, World, PASSWORD};
use futures::StreamExt;
use printfleet_domain::{Email, RoleRef, Scope};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    ItAdmin,
    PrinterAdmin,
    ReportAdmin,
    /// A Printer Admin scoped to group Floor 1.
    Scoped,
    /// An API token made by the (tenant-wide) Printer Admin.
    Token,
    /// The IT Admin of another tenant.
    OtherTenant,
    Anonymous,
}

const WHO: [Who; 7] = [
    Who::ItAdmin,
    Who::PrinterAdmin,
    Who::ReportAdmin,
    Who::Scoped,
    Who::Token,
    Who::OtherTenant,
    Who::Anonymous,
];

/// Expected status per identity, in the order of `WHO`.
type Row = [u16; 7];

fn table() -> BTreeMap<(&'static str, &'static str), Row> {
    //                                         IT   PA   RA   Scp  Tok  Oth  Anon
    let m: &[((&str, &str), Row)] = &[
        (
            ("POST", "/api/v1/auth/sign-in"),
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            ("POST", "/api/v1/auth/sign-out"),
            [204, 204, 204, 204, 401, 204, 401],
        ),
        (
            ("GET", "/api/v1/auth/session"),
            [200, 200, 200, 200, 401, 200, 401],
        ),
        (("GET", "/api/v1/me"), [200, 200, 200, 200, 401, 200, 401]),
        (
            ("GET", "/api/v1/me/sessions"),
            [200, 200, 200, 200, 401, 200, 401],
        ),
        (
            ("DELETE", "/api/v1/me/sessions/{session}"),
            [204, 204, 204, 204, 401, 204, 401],
        ),
        // Signed-in people accept as themselves: the invitation is for someone else (409).
        (
            ("POST", "/api/v1/invitations/accept"),
            [409, 409, 409, 409, 200, 409, 200],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}"),
            [200, 200, 200, 200, 200, 404, 401],
        ),
        (
            ("PATCH", "/api/v1/tenants/{tenant}"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/members"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/members/{member}"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("PATCH", "/api/v1/tenants/{tenant}/members/{member}"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("DELETE", "/api/v1/tenants/{tenant}/members/{member}"),
            [204, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/invitations"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("POST", "/api/v1/tenants/{tenant}/invitations"),
            [201, 403, 403, 403, 403, 404, 401],
        ),
        (
            (
                "DELETE",
                "/api/v1/tenants/{tenant}/invitations/{invitation}",
            ),
            [204, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/roles"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("POST", "/api/v1/tenants/{tenant}/roles"),
            [201, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/roles/{role}"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("PATCH", "/api/v1/tenants/{tenant}/roles/{role}"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("DELETE", "/api/v1/tenants/{tenant}/roles/{role}"),
            [204, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/api-tokens"),
            [200, 200, 200, 200, 200, 404, 401],
        ),
        // Tokens cannot mint tokens: a person must be signed in.
        (
            ("POST", "/api/v1/tenants/{tenant}/api-tokens"),
            [201, 201, 201, 201, 403, 404, 401],
        ),
        // The token belongs to the Printer Admin: its owner (and the token itself) or an IT Admin may revoke it.
        (
            ("DELETE", "/api/v1/tenants/{tenant}/api-tokens/{token}"),
            [204, 204, 404, 404, 204, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/groups"),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            ("POST", "/api/v1/tenants/{tenant}/groups"),
            [201, 201, 403, 403, 201, 404, 401],
        ),
        // Floor 2 is outside the scoped admin's groups: it does not exist for them.
        (
            ("GET", "/api/v1/tenants/{tenant}/groups/{group}"),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            ("DELETE", "/api/v1/tenants/{tenant}/groups/{group}"),
            [204, 204, 403, 404, 204, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/enrolment-tokens"),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            ("POST", "/api/v1/tenants/{tenant}/enrolment-tokens"),
            [201, 201, 403, 403, 201, 404, 401],
        ),
        (
            (
                "DELETE",
                "/api/v1/tenants/{tenant}/enrolment-tokens/{token}",
            ),
            [204, 204, 403, 403, 204, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/devices"),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        // The printer is in Floor 2, outside the scoped admin's groups.
        (
            ("GET", "/api/v1/tenants/{tenant}/devices/{device}"),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            ("DELETE", "/api/v1/tenants/{tenant}/devices/{device}"),
            [204, 204, 403, 404, 204, 404, 401],
        ),
        (
            (
                "PUT",
                "/api/v1/tenants/{tenant}/groups/{group}/devices/{device}",
            ),
            [204, 204, 403, 404, 204, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/devices/{device}/state"),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/devices/{device}/history"),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/devices/{device}/work"),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            ("POST", "/api/v1/tenants/{tenant}/devices/{device}/work"),
            [201, 201, 403, 404, 201, 404, 401],
        ),
        (
            ("POST", "/api/v1/tenants/{tenant}/groups/{group}/work"),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            (
                "POST",
                "/api/v1/tenants/{tenant}/devices/{device}/revoke-key",
            ),
            [204, 204, 403, 404, 204, 404, 401],
        ),
        (
            (
                "POST",
                "/api/v1/tenants/{tenant}/devices/{device}/approve-re-enrolment",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        // Printers authenticate with the enrolment token in the body; people's credentials play no part.
        (("POST", "/device/v1/enrol"), [201; 7]),
        // Printers authenticate by their sealed bodies; a JSON body is not one (400 truncated).
        (("POST", "/device/v1/check-in"), [400; 7]),
        (("POST", "/device/v1/fetch"), [400; 7]),
        // Policies (Report Admins read compliance figures only; policy writes need a
        // tenant-wide scope; the policy is assigned to Floor 2, outside the scoped admin's groups).
        (
            ("GET", "/api/v1/tenants/{tenant}/policies"),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            ("POST", "/api/v1/tenants/{tenant}/policies"),
            [201, 201, 403, 403, 201, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/policies/{policy}"),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            ("PUT", "/api/v1/tenants/{tenant}/policies/{policy}"),
            [200, 200, 403, 403, 200, 404, 401],
        ),
        (
            ("DELETE", "/api/v1/tenants/{tenant}/policies/{policy}"),
            [204, 204, 403, 403, 204, 404, 401],
        ),
        (
            (
                "GET",
                "/api/v1/tenants/{tenant}/policies/{policy}/versions/{from}/compare/{to}",
            ),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/policies/{policy}/export"),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/policy-assignments"),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            (
                "POST",
                "/api/v1/tenants/{tenant}/policies/{policy}/assignments",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            (
                "DELETE",
                "/api/v1/tenants/{tenant}/policies/{policy}/assignments/{group}",
            ),
            [204, 204, 403, 404, 204, 404, 401],
        ),
        // Dry runs answer as the change itself would (they change nothing).
        (
            ("POST", "/api/v1/tenants/{tenant}/policies/{policy}/dry-run"),
            [200, 200, 403, 403, 200, 404, 401],
        ),
        (
            (
                "POST",
                "/api/v1/tenants/{tenant}/policies/{policy}/assignments/dry-run",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        // Staged roll-outs: read like the policy, changed like it (tenant-wide scope).
        (
            ("GET", "/api/v1/tenants/{tenant}/policies/{policy}/rollouts"),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            (
                "POST",
                "/api/v1/tenants/{tenant}/policies/{policy}/rollouts",
            ),
            [201, 201, 403, 403, 201, 404, 401],
        ),
        (
            (
                "GET",
                "/api/v1/tenants/{tenant}/policies/{policy}/rollouts/{rollout}",
            ),
            [200, 200, 403, 200, 200, 404, 401],
        ),
        (
            // The matrix's roll-out is halted for this row.
            (
                "POST",
                "/api/v1/tenants/{tenant}/policies/{policy}/rollouts/{rollout}/resume",
            ),
            [200, 200, 403, 403, 200, 404, 401],
        ),
        (
            (
                "POST",
                "/api/v1/tenants/{tenant}/policies/{policy}/rollouts/{rollout}/cancel",
            ),
            [200, 200, 403, 403, 200, 404, 401],
        ),
        (
            (
                "POST",
                "/api/v1/tenants/{tenant}/policies/{policy}/rollouts/{rollout}/rollback",
            ),
            [200, 200, 403, 403, 200, 404, 401],
        ),
        (
            (
                "GET",
                "/api/v1/tenants/{tenant}/devices/{device}/compliance",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            (
                "GET",
                "/api/v1/tenants/{tenant}/devices/{device}/compliance/history",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            (
                "GET",
                "/api/v1/tenants/{tenant}/devices/{device}/effective-policy",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/compliance"),
            [200, 200, 200, 200, 200, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/groups/{group}/compliance"),
            [200, 200, 200, 404, 200, 404, 401],
        ),
        (
            (
                "POST",
                "/api/v1/tenants/{tenant}/devices/{device}/remediate",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            ("POST", "/api/v1/tenants/{tenant}/groups/{group}/remediate"),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            // IT Admin: 404, the matrix printer has no generated value (the 200 is in
            // unique_secrets.rs); API tokens can never re-authenticate.
            (
                "POST",
                "/api/v1/tenants/{tenant}/devices/{device}/secrets/{setting}/reveal",
            ),
            [404, 403, 403, 403, 403, 404, 401],
        ),
        (
            // The dashboard's feed (never a value): `secrets.reveal` or `reports.read`, which
            // Printer Admins and their tokens hold too; the scoped one sees its groups' reveals.
            ("GET", "/api/v1/tenants/{tenant}/break-glass"),
            [200, 200, 200, 200, 200, 404, 401],
        ),
        (
            ("PUT", "/api/v1/tenants/{tenant}/groups/{group}/rule"),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            (
                "GET",
                "/api/v1/tenants/{tenant}/devices/{device}/attributes",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            (
                "PUT",
                "/api/v1/tenants/{tenant}/devices/{device}/attributes",
            ),
            [200, 200, 403, 404, 200, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/audit"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (
            ("GET", "/api/v1/tenants/{tenant}/audit/verify"),
            [200, 403, 403, 403, 403, 404, 401],
        ),
        (("GET", "/api/v1/openapi.json"), [200; 7]),
        (("GET", "/healthz"), [200; 7]),
        (("GET", "/readyz"), [200; 7]),
        (("GET", "/metrics"), [200; 7]),
    ];
    m.iter().copied().collect()
}

fn body_for(
    method: &str,
    path: &str,
    w: &World,
    invite_token: &str,
    enrol_token: &str,
) -> Option<serde_json::Value> {
    use serde_json::json;
    let v = match (method, path) {
        ("POST", "/api/v1/auth/sign-in") => {
            json!({ "email": "it@a.example", "password": PASSWORD })
        }
        ("POST", "/api/v1/invitations/accept") => json!({
            "token": invite_token, "first_name": "New", "last_name": "Person", "locale": "en", "password": "a long enough password"
        }),
        ("PATCH", "/api/v1/tenants/{tenant}") => json!({ "name": "Renamed" }),
        ("PATCH", "/api/v1/tenants/{tenant}/members/{member}") => {
            json!({ "role": "printer-admin" })
        }
        ("POST", "/api/v1/tenants/{tenant}/invitations") => {
            json!({ "email": "newbie@a.example", "role": "report-admin" })
        }
        ("POST", "/api/v1/tenants/{tenant}/roles") => {
            json!({ "name": "Helpdesk", "permissions": ["devices.read"] })
        }
        ("PATCH", "/api/v1/tenants/{tenant}/roles/{role}") => json!({ "name": "Auditors 2" }),
        ("POST", "/api/v1/tenants/{tenant}/api-tokens") => json!({ "name": "automation" }),
        ("POST", "/api/v1/tenants/{tenant}/groups") => json!({ "name": "Floor 9" }),
        ("POST", "/api/v1/tenants/{tenant}/policies")
        | ("PUT", "/api/v1/tenants/{tenant}/policies/{policy}")
        | ("POST", "/api/v1/tenants/{tenant}/policies/{policy}/dry-run") => json!({
            "name": "Matrix baseline", "mode": "remediate",
            "settings": { "network.telnet.enabled": false }
        }),
        ("POST", "/api/v1/tenants/{tenant}/policies/{policy}/rollouts") => json!({
            "change": { "name": "Matrix baseline", "mode": "remediate",
                "settings": { "network.telnet.enabled": false } },
            "plan": { "canary": { "percent": 10 }, "waves": [100], "halt_when_failed_percent": 10 }
        }),
        ("POST", "/api/v1/tenants/{tenant}/policies/{policy}/assignments")
        | ("POST", "/api/v1/tenants/{tenant}/policies/{policy}/assignments/dry-run") => {
            json!({ "group": w.g2, "priority": 10 })
        }
        ("POST", "/api/v1/tenants/{tenant}/devices/{device}/secrets/{setting}/reveal") => {
            json!({ "password": PASSWORD, "reason": "matrix" })
        }
        ("PUT", "/api/v1/tenants/{tenant}/groups/{group}/rule") => {
            json!({ "rule": { "all": true } })
        }
        ("PUT", "/api/v1/tenants/{tenant}/devices/{device}/attributes") => {
            json!({ "site": "HQ", "tags": ["lobby"] })
        }
        ("POST", "/api/v1/tenants/{tenant}/devices/{device}/work")
        | ("POST", "/api/v1/tenants/{tenant}/groups/{group}/work") => {
            json!({ "kind": "report_now" })
        }
        ("POST", "/api/v1/tenants/{tenant}/enrolment-tokens") => {
            json!({ "name": "Building B", "valid_for_hours": 24, "max_uses": 50 })
        }
        ("POST", "/device/v1/enrol") => json!({
            "token": enrol_token, "serial": "MATRIX-0001", "model": "LaserJet M507", "firmware": "2506.1",
            "public_key": hex::encode(printfleet_protocol::KeyPair::generate(&mut printfleet_protocol::system_rng()).public.to_bytes())
        }),
        (m, _) if m != "GET" && m != "DELETE" => json!({}),
        _ => return None,
    };
    let _ = w;
    Some(v)
}

/// Calls one route as one identity in a fresh world and returns the status.
async fn call(method: &'static str, template: &'static str, who: Who) -> u16 {
    let app = spawn_app().await;
    let w = world(&app).await;
    let status = call_in(&app, &w, method, template, who).await;
    app.stop().await;
    status
}

async fn call_in(app: &TestApp, w: &World, method: &str, template: &str, who: Who) -> u16 {
    let it_ctx = app.ctx(w.it_admin, w.a).await;
    let role = app
        .store
        .role_create(
            &it_ctx,
            "Auditors",
            [printfleet_domain::Permission::AuditRead]
                .into_iter()
                .collect(),
        )
        .await
        .unwrap();
    let RoleRef::Custom(role_id) = role.reference else {
        unreachable!()
    };
    let (invitation, _) = app
        .store
        .invitation_create(
            &it_ctx,
            Email::parse("e", "invited@a.example").unwrap(),
            RoleRef::BuiltIn(printfleet_domain::BuiltInRole::ReportAdmin),
            Scope::Tenant,
            3_600_000,
        )
        .await
        .unwrap();
    let (_, invite_secret) = app
        .store
        .invitation_create(
            &it_ctx,
            Email::parse("e", "accept@a.example").unwrap(),
            RoleRef::BuiltIn(printfleet_domain::BuiltInRole::ReportAdmin),
            Scope::Tenant,
            3_600_000,
        )
        .await
        .unwrap();
    let (enrolment_token, enrol_secret) = app
        .store
        .enrolment_token_create(
            &printfleet_domain::Ctx::system(w.a),
            "matrix",
            3_600_000,
            None,
        )
        .await
        .unwrap();
    let pa_ctx = app.ctx(w.printer_admin, w.a).await;
    let (token, token_secret) = app.store.token_create(&pa_ctx, "ci", None).await.unwrap();
    let policy = crate::helpers::policy_fixture(app, &it_ctx, w.g2).await;
    let mut rollout = String::new();
    if template.contains("{rollout}") {
        let plan = serde_json::from_value(serde_json::json!({
            "canary": { "percent": 50 }, "waves": [100], "halt_when_failed_percent": 10
        }))
        .unwrap();
        rollout = app
            .store
            .rollout_start(&it_ctx, policy, plan, false)
            .await
            .unwrap()
            .id;
        if template.ends_with("/resume") {
            sqlx::query("UPDATE rollouts SET state = 'halted' WHERE id = $1")
                .bind(&rollout)
                .execute(app.store.raw_pool())
                .await
                .unwrap();
        }
    }
    let user = match who {
        Who::ItAdmin => Some(w.it_admin),
        Who::PrinterAdmin => Some(w.printer_admin),
        Who::ReportAdmin => Some(w.report_admin),
        Who::Scoped => Some(w.scoped),
        Who::OtherTenant => Some(w.other_tenant_admin),
        Who::Token | Who::Anonymous => None,
    };
    let mut session_id = uuid::Uuid::new_v4().to_string();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(u) = user {
        let (secret, csrf) = app.session(u).await;
        let me = printfleet_domain::context::Me {
            user: u,
            session: None,
            source: None,
        };
        session_id = app.store.sessions_list(&me).await.unwrap()[0]
            .id
            .to_string();
        headers.insert(
            "cookie",
            format!("{}={secret}", app.cookie_name()).parse().unwrap(),
        );
        headers.insert("x-csrf-token", csrf.parse().unwrap());
    }
    if who == Who::Token {
        headers.insert(
            "authorization",
            format!("Bearer {}", token_secret.expose()).parse().unwrap(),
        );
    }
    let path = template
        .replace("{tenant}", &w.a.to_string())
        .replace("{member}", &w.target_member.to_string())
        .replace("{invitation}", &invitation.id.to_string())
        .replace("{role}", &role_id.to_string())
        .replace(
            "enrolment-tokens/{token}",
            &format!("enrolment-tokens/{}", enrolment_token.id),
        )
        .replace("{token}", &token.id.to_string())
        .replace("{device}", &w.device.to_string())
        .replace("{group}", &w.g2.to_string())
        .replace("{session}", &session_id)
        .replace("{policy}", &policy.to_string())
        .replace("{rollout}", &rollout)
        .replace("{setting}", "security.ews.admin_password")
        .replace("{from}", "1")
        .replace("{to}", "1");
    let client = reqwest::Client::new();
    let mut req = client
        .request(method.parse().unwrap(), app.url(&path))
        .headers(headers);
    if let Some(b) = body_for(
        method,
        template,
        w,
        invite_secret.expose(),
        enrol_secret.expose(),
    ) {
        req = req.json(&b);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_identity_exactly() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app
        .client()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.stop().await;
    assert_eq!(
        doc["openapi"].as_str().map(|v| &v[..3]),
        Some("3.1"),
        "OpenAPI 3.1 document"
    );
    let mut routes: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    for ops in ["/api/v1/openapi.json", "/healthz", "/readyz", "/metrics"] {
        routes.insert(("GET".into(), ops.into()));
    }
    let table = table();
    let missing: Vec<_> = routes
        .iter()
        .filter(|(m, p)| !table.contains_key(&(m.as_str(), p.as_str())))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without expected answers in the matrix: {missing:?}"
    );
    let stale: Vec<_> = table
        .keys()
        .filter(|(m, p)| !routes.contains(&(m.to_string(), p.to_string())))
        .collect();
    assert!(
        stale.is_empty(),
        "matrix rows for routes that do not exist: {stale:?}"
    );

    let cases: Vec<(&'static str, &'static str, Who, u16)> = table
        .iter()
        .flat_map(|((m, p), row)| {
            WHO.iter()
                .zip(row.iter())
                .map(move |(w, s)| (*m, *p, *w, *s))
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(cases)
        .map(|(m, p, who, want)| async move { (m, p, who, want, call(m, p, who).await) })
        .buffer_unordered(6)
        .collect()
        .await;
    let wrong: Vec<String> = results
        .iter()
        .filter(|(_, _, _, want, got)| want != got)
        .map(|(m, p, who, want, got)| format!("{m} {p} as {who:?}: expected {want}, got {got}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} answers differ:\n{}",
        wrong.len(),
        results.len(),
        wrong.join("\n")
    );
}
