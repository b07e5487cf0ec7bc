//! `printfleet demo`: a loopback server with a demo tenant and one user per built-in role.

use printfleet_crypto::{PasswordHasher, PasswordParams};
use printfleet_domain::clock::{Clock, SystemClock};
use printfleet_domain::tenant::Contact;
use printfleet_domain::user::Profile;
use printfleet_domain::{BuiltInRole, RoleRef, Scope};
use printfleet_server::config::Config;
use rand::rngs::OsRng;
use std::sync::Arc;

/// The sign-in details of the demo users, kept (mode 0600) in the demo's data directory so a
/// second start can print them again. A demo convenience only: real deployments never store
/// passwords.
const LOGINS_FILE: &str = "demo-logins.txt";

pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let logins_path = cfg.data_dir.join(LOGINS_FILE);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = printfleet_server::open_store(&cfg, clock).await?;
    if store.tenant_ids().await?.is_empty() {
        let logins = seed(&cfg, &store).await?;
        printfleet_crypto::keys::write_private(&logins_path, &logins)
            .map_err(anyhow::Error::msg)?;
    }
    let token = prepare_simulator(&store).await?;
    store.close().await;
    let logins = std::fs::read_to_string(&logins_path)
        .unwrap_or_else(|_| "(the demo logins file is missing)\n".into());
    let scheme = if cfg.plain_http { "http" } else { "https" };
    let insecure_tls = !cfg.plain_http;
    crate::serve(cfg, move |_, addrs| {
        let url = format!("{scheme}://{}", addrs[0]);
        let args = crate::simulate::SimulateArgs {
            printers: SIMULATED,
            server: url.clone(),
            token: token.expose().clone(),
            interval_s: 10,
            report_every: 3,
            duration_s: None,
            insecure_tls,
            serial_prefix: "DEMO".into(),
            offline_percent: 2.0,
            no_udp: false,
            seed: None,
            apply_failure_percent: 2.0,
            drift_percent: 1.0,
        };
        tokio::spawn(async move {
            let tally = std::sync::Arc::new(crate::simulate::Tally::default());
            if let Err(e) = crate::simulate::simulate(&args, tally, false).await {
                tracing::warn!("demo simulator stopped: {e:#}");
            }
        });
        println!();
        println!("Printfleet demo is running at {url}");
        println!("API: {url}/api/v1  (OpenAPI: {url}/api/v1/openapi.json)");
        println!();
        println!("Sign in with any of these (POST {url}/api/v1/auth/sign-in):");
        print!("{logins}");
        println!();
        println!("Example:");
        println!("  curl -s -c jar -H 'content-type: application/json' \\");
        println!("    -d '{{\"email\":\"it-admin@demo.printfleet.test\",\"password\":\"<password above>\"}}' {url}/api/v1/auth/sign-in");
        println!("  curl -s -b jar {url}/api/v1/me");
        println!();
        println!("{SIMULATED} simulated printers are enrolling and heartbeating: GET {url}/api/v1/tenants/<tenant id>/devices");
        println!("The \"Baseline security\" policy gives each printer its own admin password; as IT Admin, reveal one (break-glass):");
        println!("  POST {url}/api/v1/tenants/<tenant id>/devices/<device id>/secrets/security.ews.admin_password/reveal  {{\"password\":\"<yours>\",\"reason\":\"…\"}}");
        println!("Try a change first: POST …/policies/<policy id>/dry-run (the body of PUT …/policies/<policy id>), or stage it: POST …/policies/<policy id>/rollouts");
        println!();
        println!("Stop with Ctrl-C.");
    })
    .await
}

const SIMULATED: u32 = 50;

/// A fresh fleet on every start: the previous run's simulated printers are removed (their keys
/// lived only in that process) and a token for exactly this many new ones is made.
async fn prepare_simulator(
    store: &printfleet_storage::Store,
) -> anyhow::Result<printfleet_domain::Redacted<String>> {
    let tenant = *store
        .tenant_ids()
        .await?
        .first()
        .ok_or_else(|| anyhow::anyhow!("the demo tenant is missing"))?;
    let sys = printfleet_domain::Ctx::system(tenant);
    for d in store.devices_list(&sys).await? {
        if d.serial.starts_with("DEMO") {
            store.device_remove(&sys, d.id).await?;
        }
    }
    let (_, token) = store
        .enrolment_token_create(
            &sys,
            "demo simulator",
            86_400_000,
            Some(i64::from(SIMULATED)),
        )
        .await?;
    Ok(token)
}

async fn seed(cfg: &Config, store: &printfleet_storage::Store) -> anyhow::Result<String> {
    let params = PasswordParams {
        memory_kib: cfg.auth.argon2_memory_kib,
        iterations: cfg.auth.argon2_iterations,
        parallelism: 1,
    };
    let hasher = PasswordHasher::new(params, &mut OsRng).map_err(anyhow::Error::msg)?;
    let contact = Contact::parse(
        Some("Dana Demo"),
        Some("dana@demo.printfleet.test"),
        Some("+1 555 0100"),
        Some("1 Demo Way, Springfield"),
    )?;
    let tenant = store
        .create_tenant("Demo Company", "us", &contact, None)
        .await?;
    let sys = printfleet_domain::Ctx::system(tenant);
    let floor1 = store.group_create(&sys, "Floor 1").await?;
    store.group_create(&sys, "Floor 2").await?;
    baseline_policy(store, &sys).await?;
    let people = [
        (
            "it-admin",
            "Ivy",
            "Admin",
            RoleRef::BuiltIn(BuiltInRole::ItAdmin),
            Scope::Tenant,
        ),
        (
            "printer-admin",
            "Pat",
            "Printer",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Tenant,
        ),
        (
            "report-admin",
            "Rae",
            "Reports",
            RoleRef::BuiltIn(BuiltInRole::ReportAdmin),
            Scope::Tenant,
        ),
        (
            "floor1-admin",
            "Flo",
            "Scoped",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Groups([floor1.id].into_iter().collect()),
        ),
    ];
    let mut out = String::new();
    for (who, first, last, role, scope) in people {
        let email = format!("{who}@demo.printfleet.test");
        let password = printfleet_crypto::token::generate("", &mut OsRng)[..20].to_string();
        let hash = hasher
            .hash(&password, &mut OsRng)
            .map_err(anyhow::Error::msg)?;
        let profile = Profile::parse(&email, first, last, "en")?;
        store
            .add_member_as_system(tenant, &profile, &hash, role, scope.clone())
            .await?;
        let what = match (&role, &scope) {
            (_, Scope::Groups(_)) => "Printer Admin, only group Floor 1".to_string(),
            (RoleRef::BuiltIn(b), _) => b.display_name().to_string(),
            _ => String::new(),
        };
        out.push_str(&format!("  {email:<38} {password}   ({what})\n"));
    }
    out.push_str(&format!("  tenant id: {tenant}\n"));
    Ok(out)
}

/// The demo's baseline: every catalogue setting at its recommended secure value, and an
/// administrator password unique to each printer (generated, rotated every 30 days), remediated
/// on every printer (a dynamic "All printers" group).
async fn baseline_policy(
    store: &printfleet_storage::Store,
    sys: &printfleet_domain::Ctx,
) -> anyhow::Result<()> {
    use printfleet_domain::policy::{self, PolicyMode, ResolvedItem};
    let catalogue = printfleet_domain::catalogue::Catalogue::builtin()?;
    let mut items = std::collections::BTreeMap::new();
    for s in &catalogue.settings {
        if let Some(v) = &s.secure {
            items.insert(s.id.to_string(), ResolvedItem::Value(v.clone()));
        }
    }
    // Unique per printer: Printfleet generates each printer's administrator password, sends it
    // sealed to that printer only and rotates it monthly (break-glass reveals it).
    items.insert(
        "security.ews.admin_password".into(),
        ResolvedItem::Generate(policy::GenerateRule {
            rotate_days: 30,
            length: None,
        }),
    );
    let (items, secrets) =
        policy::build_version(items, None, &sys.actor.audit_id(), store.now_ms())?;
    let all = store.group_create(sys, "All printers").await?;
    store
        .group_set_rule(
            sys,
            all.id,
            Some(policy::GroupRule {
                all: true,
                ..Default::default()
            }),
        )
        .await?;
    let p = store
        .policy_create(
            sys,
            printfleet_storage::policies::PolicyWrite {
                name: "Baseline security".into(),
                description: Some("Every setting at the catalogue's recommended secure value; a unique administrator password per printer, rotated every 30 days.".into()),
                mode: PolicyMode::Remediate,
                items,
                secrets,
                catalogue_version: catalogue.version.clone(),
                enters_secrets: true,
            },
        )
        .await?;
    store.policy_assign(sys, p.id, all.id, 100).await?;
    Ok(())
}
