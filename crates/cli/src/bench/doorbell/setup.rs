//! The run's server: the benchmark fixture's configuration with the doorbell on, HTTPS, a tenant
//! with an IT Admin's API token, the printers and a group holding all of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use printfleet_crypto::{PasswordHasher, PasswordParams};
use printfleet_domain::clock::{Clock, SystemClock};
use printfleet_domain::context::Me;
use printfleet_domain::policy::GroupRule;
use printfleet_domain::tenant::Contact;
use printfleet_domain::user::Profile;
use printfleet_domain::{BuiltInRole, Ctx, GroupId, RoleRef, Scope, TenantId};
use printfleet_protocol::PublicKey;
use printfleet_server::doorbell::service::CounterSnapshot;
use printfleet_server::state::AppState;
use printfleet_storage::provision::{ProvisionPlan, Provisioned};
use printfleet_storage::{resolver, Store};
use rand::rngs::OsRng;

use super::DoorbellArgs;
use crate::bench::fixture::{server_config, TempDatabase};

/// How long the assessor may take over the new printers before the run gives up.
const ASSESS_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Env {
    running: printfleet_server::Running,
    state: AppState,
    store: Store,
    pub heartbeat_addr: SocketAddr,
    /// `https://127.0.0.1:port`.
    pub base: String,
    pub cert_pem: Vec<u8>,
    pub server_key: PublicKey,
    pub tenant: TenantId,
    group: GroupId,
    token: String,
    admin: reqwest::Client,
    pub printers: Vec<Provisioned>,
    pub provisioned_in: Duration,
    pub assessed_in: Duration,
}

pub async fn start(args: &DoorbellArgs, db: &TempDatabase) -> anyhow::Result<Env> {
    let mut cfg = server_config(db, false)?;
    cfg.heartbeat_listen = "127.0.0.1:0".into();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = printfleet_server::keys::load(&cfg)?;
    let csrf_key = printfleet_server::keys::csrf_key(&keys);
    let store = printfleet_server::open_store(&cfg, clock.clone()).await?;
    let params = PasswordParams {
        memory_kib: cfg.auth.argon2_memory_kib,
        iterations: cfg.auth.argon2_iterations,
        parallelism: 1,
    };
    let (tenant, admin_ctx, token) = seed(&store, params).await?;
    let t = Instant::now();
    let printers = provision(&store, &admin_ctx, usize::try_from(args.printers)?).await?;
    let provisioned_in = t.elapsed();
    let group = store.group_create(&admin_ctx, "All printers").await?;
    let rule = GroupRule {
        all: true,
        ..GroupRule::default()
    };
    store
        .group_set_rule(&admin_ctx, group.id, Some(rule))
        .await?;
    let server_key = store.server_device_keypair().await?.public;
    let state = printfleet_server::build_state(&cfg, store.clone(), params, clock, csrf_key)?;
    let running = printfleet_server::start(&cfg, state.clone()).await?;
    let addr = *running
        .addrs
        .first()
        .context("the server bound no address")?;
    let heartbeat_addr = running
        .heartbeat_addr
        .context("the server started no doorbell")?;
    let (cert, _) = printfleet_server::tls::ensure_cert(None, None, &cfg.data_dir)?;
    let cert_pem = std::fs::read(&cert).context("reading the server certificate")?;
    let admin = https_client(&cert_pem, 1)?;
    let t = Instant::now();
    wait_for_assessor(&store).await?;
    Ok(Env {
        running,
        state,
        store,
        heartbeat_addr,
        base: format!("https://{addr}"),
        cert_pem,
        server_key,
        tenant,
        group: group.id,
        token,
        admin,
        printers,
        provisioned_in,
        assessed_in: t.elapsed(),
    })
}

impl Env {
    pub async fn stop(self) {
        self.running.stop().await;
        self.store.close().await;
    }

    /// The doorbell's counters (received, held, rung…).
    pub fn counters(&self) -> CounterSnapshot {
        self.state
            .doorbell
            .get()
            .map(|d| d.counters())
            .unwrap_or_default()
    }

    /// The one change: `report_now` for the whole group, over HTTPS with the admin's token.
    /// Returns how many printers the server queued it for.
    pub async fn queue_report_now(&self) -> anyhow::Result<u64> {
        let url = format!(
            "{}/api/v1/tenants/{}/groups/{}/work",
            self.base, self.tenant, self.group
        );
        let resp = self
            .admin
            .post(url)
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "kind": "report_now" }))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.text().await?;
        if status != reqwest::StatusCode::OK {
            return Err(super::refused("POST …/groups/{group}/work", status, &body));
        }
        let v: serde_json::Value =
            serde_json::from_str(&body).context("the answer to POST …/work")?;
        v.get("queued")
            .and_then(serde_json::Value::as_u64)
            .context("the answer to POST …/work has no `queued`")
    }

    /// Work items the printers acknowledged `done`, counted in the database.
    pub async fn work_done(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE tenant_id = $1 AND kind = 'report_now' AND status = 'done'",
        )
        .bind(self.tenant.to_string())
        .fetch_one(self.store.raw_pool())
        .await?)
    }
}

/// A tenant with an IT Admin (a real Argon2 hash, never used to sign in) and that admin's API
/// token, which the request carries as automation would.
async fn seed(store: &Store, params: PasswordParams) -> anyhow::Result<(TenantId, Ctx, String)> {
    let tenant = store
        .create_tenant("Bench Doorbell", "us", &Contact::default(), None)
        .await?;
    let hasher = PasswordHasher::new(params, &mut OsRng).map_err(anyhow::Error::msg)?;
    let password = printfleet_crypto::token::generate("", &mut OsRng);
    let hash = hasher
        .hash(&password, &mut OsRng)
        .map_err(anyhow::Error::msg)?;
    let profile = Profile::parse(
        "doorbell-admin@bench.printfleet.test",
        "Bench",
        "Admin",
        "en",
    )?;
    let (user, _) = store
        .add_member_as_system(
            tenant,
            &profile,
            &hash,
            RoleRef::BuiltIn(BuiltInRole::ItAdmin),
            Scope::Tenant,
        )
        .await?;
    let me = Me {
        user,
        session: None,
        source: None,
    };
    let ctx = resolver::tenant_ctx(store, &me, tenant).await?;
    let (_, secret) = store.token_create(&ctx, "bench doorbell", None).await?;
    Ok((tenant, ctx, secret.expose().clone()))
}

async fn provision(store: &Store, ctx: &Ctx, n: usize) -> anyhow::Result<Vec<Provisioned>> {
    let (token, _) = store
        .enrolment_token_create(ctx, "bench", 86_400_000, None)
        .await?;
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:<26} [{bar:30}] {pos}/{len}")?.progress_chars("=> "),
    );
    bar.set_prefix("provisioning printers");
    let plan = ProvisionPlan {
        count: n,
        serial_prefix: "BELL-".into(),
        model: "Bench Printer".into(),
        firmware: "1.0".into(),
    };
    let b = bar.clone();
    let printers = store
        .provision_printers(ctx, token.id, &plan, &move |done| {
            b.set_position(done as u64)
        })
        .await?;
    bar.finish();
    Ok(printers)
}

/// New printers are due for assessment; the assessor starts on them when the server starts.
/// The run waits for it, so the measurement is not also measuring that sweep.
async fn wait_for_assessor(store: &Store) -> anyhow::Result<()> {
    let start = Instant::now();
    while !store.assessment_due(1).await?.is_empty() {
        if start.elapsed() > ASSESS_TIMEOUT {
            anyhow::bail!("the assessor had not assessed the printers after {ASSESS_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sweep filled the group's memberships after the bulk load. PostgreSQL plans from table
    // statistics, which autovacuum gathers within a minute of such a load — but not on servers
    // running with it off (this machine's): without them the group's printers were joined by
    // nested scans and queueing the work took 9.4 s. ANALYZE does what autovacuum would
    // (harmless on SQLite).
    sqlx::query("ANALYZE").execute(store.raw_pool()).await?;
    Ok(())
}

/// A client trusting the run's self-signed certificate, keeping connections alive.
pub fn https_client(cert_pem: &[u8], connections: usize) -> anyhow::Result<reqwest::Client> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    printfleet_server::tls::install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(c.context("the server certificate")?)?;
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .pool_max_idle_per_host(connections)
        .build()?)
}
