//! The benchmark's environment: a throw-away database, a server started in-process on
//! 127.0.0.1, a seeded tenant with an IT Admin, and a signed-in HTTP client.

use super::load::{Op, OpFuture};
use super::Backend;
use anyhow::Context;
use printfleet_crypto::{PasswordHasher, PasswordParams};
use printfleet_domain::clock::{Clock, SystemClock};
use printfleet_domain::tenant::Contact;
use printfleet_domain::user::Profile;
use printfleet_domain::{BuiltInRole, Ctx, RoleRef, Scope, TenantId};
use printfleet_server::config::Config;
use printfleet_storage::Store;
use rand::rngs::OsRng;
use reqwest::StatusCode;
use sqlx::{Connection, Executor};
use std::sync::Arc;

const ADMIN_EMAIL: &str = "bench-admin@bench.printfleet.test";

/// About the size of a group row plus its audit entry.
const RAW_PAYLOAD: &str = "{\"name\":\"bench group\",\"action\":\"group.created\",\"target\":\"group:00000000-0000-0000-0000-000000000000\",\"actor\":\"user:00000000-0000-0000-0000-000000000000\"}";

/// A database that exists only for this run: SQLite in a temporary directory, or a fresh
/// PostgreSQL database dropped by [`TempDatabase::remove`].
pub struct TempDatabase {
    pub(super) dir: tempfile::TempDir,
    pub(super) url: String,
    postgres: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl TempDatabase {
    pub async fn create(backend: Backend, url: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("pf-bench-")
            .tempdir()
            .context("creating a temporary data directory")?;
        match backend {
            Backend::Sqlite => {
                if url.is_some() {
                    anyhow::bail!("--database-url is only used with --backend postgres");
                }
                let url = format!("sqlite://{}", dir.path().join("printfleet.db").display());
                Ok(Self {
                    dir,
                    url,
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin_url = url.context("--backend postgres needs --database-url")?;
                let name = format!("pf_bench_{}", uuid::Uuid::new_v4().simple());
                let url = with_database(admin_url, &name)?;
                create_pg_database(admin_url, &name).await?;
                Ok(Self {
                    dir,
                    url,
                    postgres: Some(PgDatabase {
                        admin_url: admin_url.to_string(),
                        name,
                    }),
                })
            }
        }
    }

    /// Drops the PostgreSQL database (if any) and deletes the temporary directory.
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Some(pg) = &self.postgres {
            let mut c = sqlx::PgConnection::connect(&pg.admin_url)
                .await
                .context("connecting to PostgreSQL to drop the benchmark database")?;
            c.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name).as_str())
                .await
                .with_context(|| format!("dropping database {}", pg.name))?;
            c.close().await?;
        }
        self.dir
            .close()
            .context("removing the temporary data directory")
    }
}

/// Runs `measure` against a fresh database (warning first about a debug build), stopping early
/// on Ctrl-C; the database is removed either way.
pub async fn on_temp_database<T>(
    backend: Backend,
    url: Option<&str>,
    measure: impl AsyncFnOnce(&TempDatabase) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; build with --release for meaningful figures");
    }
    let db = TempDatabase::create(backend, url).await?;
    let outcome = tokio::select! {
        r = measure(&db) => r,
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => Err(anyhow::anyhow!("interrupted")),
            Err(e) => Err(e.into()),
        },
    };
    let cleanup = db.remove().await;
    let r = outcome?;
    cleanup?;
    Ok(r)
}

/// The server configuration of a benchmark on `db`: loopback, heartbeats off, quiet logs;
/// validated, with logging set up.
pub fn server_config(db: &TempDatabase, plain_http: bool) -> anyhow::Result<Config> {
    let mut cfg = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: db.dir.path().to_path_buf(),
        database_url: db.url.clone(),
        plain_http,
        heartbeat_listen: String::new(),
        ..Config::default()
    };
    cfg.log.level = "warn,sqlx=error,sqlx_core=error".into();
    cfg.validate()?;
    if plain_http {
        crate::check_plain_http(&cfg)?;
    }
    crate::init_tracing(&cfg);
    Ok(cfg)
}

/// The same URL naming another database on the same server.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("--database-url must start with postgres:// or postgresql://");
    }
    let mut u = reqwest::Url::parse(url).context("--database-url")?;
    match u.host_str() {
        Some("127.0.0.1" | "::1" | "[::1]" | "localhost") => {}
        other => eprintln!(
            "warning: PostgreSQL at {} is not on loopback; network time is part of the figures",
            other.unwrap_or("(a socket)")
        ),
    }
    u.set_path(&format!("/{name}"));
    Ok(u.to_string())
}

async fn create_pg_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut c = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connecting to --database-url")?;
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .with_context(|| format!("creating database {name}"))?;
    c.close().await?;
    Ok(())
}

/// A running server with a signed-in client.
pub struct Bench {
    running: printfleet_server::Running,
    store: Store,
    client: reqwest::Client,
    base: String,
    tenant: TenantId,
    group: String,
    csrf: String,
    /// The server's database pool size (the raw baseline shares the pool).
    pub pool_size: u32,
}

impl Bench {
    pub async fn start(db: &TempDatabase, concurrency: u64) -> anyhow::Result<Self> {
        Ok(Self::start_prepared(db, concurrency, async |_, _| Ok(()))
            .await?
            .0)
    }

    /// Like [`Bench::start`], with `prepare` run on the store and the seeded tenant before
    /// the server starts (so its background tasks find the data already in place).
    pub async fn start_prepared<T>(
        db: &TempDatabase,
        concurrency: u64,
        prepare: impl AsyncFnOnce(&Store, TenantId) -> anyhow::Result<T>,
    ) -> anyhow::Result<(Self, T)> {
        let cfg = server_config(db, true)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let keys = printfleet_server::keys::load(&cfg)?;
        let csrf_key = printfleet_server::keys::csrf_key(&keys);
        let store = printfleet_server::open_store(&cfg, clock.clone()).await?;
        let params = PasswordParams {
            memory_kib: cfg.auth.argon2_memory_kib,
            iterations: cfg.auth.argon2_iterations,
            parallelism: 1,
        };
        let password = printfleet_crypto::token::generate("", &mut OsRng);
        let (tenant, group) = seed(&store, params, &password).await?;
        let prepared = prepare(&store, tenant).await?;
        let state = printfleet_server::build_state(&cfg, store.clone(), params, clock, csrf_key)?;
        let running = printfleet_server::start(&cfg, state).await?;
        let addr = *running
            .addrs
            .first()
            .context("the server bound no address")?;
        let base = format!("http://{addr}");
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .pool_max_idle_per_host(usize::try_from(concurrency)?)
            .build()?;
        let csrf = sign_in(&client, &base, &password).await?;
        let me = client.get(format!("{base}/api/v1/me")).send().await?;
        if me.status() != StatusCode::OK {
            anyhow::bail!("GET /api/v1/me after sign-in answered {}", me.status());
        }
        let pool_size = store.raw_pool().options().get_max_connections();
        let bench = Self {
            running,
            store,
            client,
            base,
            tenant,
            group,
            csrf,
            pool_size,
        };
        Ok((bench, prepared))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The signed-in client, the server's base URL and the session's CSRF token.
    pub fn client(&self) -> (&reqwest::Client, &str, &str) {
        (&self.client, &self.base, &self.csrf)
    }

    pub async fn stop(self) {
        self.running.stop().await;
        self.store.close().await;
    }

    pub async fn create_raw_table(&self) -> anyhow::Result<()> {
        sqlx::query(
            "CREATE TABLE bench_raw (id TEXT PRIMARY KEY, payload TEXT NOT NULL, at BIGINT NOT NULL)",
        )
        .execute(self.store.raw_pool())
        .await
        .context("creating the bench_raw table")?;
        Ok(())
    }

    /// One row per transaction, on the server's own pool (same pragmas, same size). With
    /// `serialized`, one transaction at a time, as the store's write lock does for API writes.
    pub fn raw_insert_op(&self, serialized: bool) -> Op {
        let pool = self.store.raw_pool().clone();
        let lock = serialized.then(|| Arc::new(tokio::sync::Mutex::new(())));
        let prefix = if serialized { "s" } else { "c" };
        let clock = SystemClock;
        Arc::new(move |worker, seq| -> OpFuture {
            let pool = pool.clone();
            let lock = lock.clone();
            let id = format!("{prefix}{worker}-{seq}");
            let at = clock.now_ms();
            Box::pin(async move {
                let _guard = match &lock {
                    Some(l) => Some(l.clone().lock_owned().await),
                    None => None,
                };
                let mut tx = pool.begin().await?;
                sqlx::query("INSERT INTO bench_raw (id, payload, at) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(RAW_PAYLOAD)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            })
        })
    }

    /// `POST /api/v1/tenants/{tenant}/groups` with a unique name; only 201 counts.
    pub fn write_op(&self) -> Op {
        let client = self.client.clone();
        let url = format!("{}/api/v1/tenants/{}/groups", self.base, self.tenant);
        let csrf = self.csrf.clone();
        Arc::new(move |worker, seq| -> OpFuture {
            let req = client
                .post(&url)
                .header("x-csrf-token", &csrf)
                .json(&serde_json::json!({ "name": format!("bench {worker}-{seq}") }));
            Box::pin(async move { expect(req.send().await?, StatusCode::CREATED).await })
        })
    }

    /// `GET /api/v1/tenants/{tenant}/groups/{id}` with the session cookie.
    pub fn read_op(&self) -> Op {
        let url = format!(
            "{}/api/v1/tenants/{}/groups/{}",
            self.base, self.tenant, self.group
        );
        self.get_op(url)
    }

    /// `GET /healthz`: no authentication, no database.
    pub fn healthz_op(&self) -> Op {
        self.get_op(format!("{}/healthz", self.base))
    }

    /// `GET url` with the session cookie; only 200 counts.
    pub fn get_op(&self, url: String) -> Op {
        let client = self.client.clone();
        Arc::new(move |_, _| -> OpFuture {
            let req = client.get(&url);
            Box::pin(async move { expect(req.send().await?, StatusCode::OK).await })
        })
    }
}

/// Reads the whole body (so the connection is reused) and checks the status.
pub async fn expect(resp: reqwest::Response, want: StatusCode) -> anyhow::Result<()> {
    let status = resp.status();
    let body = resp.bytes().await?;
    if status != want {
        anyhow::bail!(
            "answered {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        );
    }
    Ok(())
}

/// A tenant, its IT Admin (Argon2 with the production parameters) and one group to read.
async fn seed(
    store: &Store,
    params: PasswordParams,
    password: &str,
) -> anyhow::Result<(TenantId, String)> {
    let contact = Contact::parse(
        Some("Bench"),
        Some("bench@bench.printfleet.test"),
        None,
        None,
    )?;
    let tenant = store
        .create_tenant("Bench Company", "us", &contact, None)
        .await?;
    let hasher = PasswordHasher::new(params, &mut OsRng).map_err(anyhow::Error::msg)?;
    let hash = hasher
        .hash(password, &mut OsRng)
        .map_err(anyhow::Error::msg)?;
    let profile = Profile::parse(ADMIN_EMAIL, "Bench", "Admin", "en")?;
    store
        .add_member_as_system(
            tenant,
            &profile,
            &hash,
            RoleRef::BuiltIn(BuiltInRole::ItAdmin),
            Scope::Tenant,
        )
        .await?;
    let group = store
        .group_create(&Ctx::system(tenant), "Bench read target")
        .await?;
    Ok((tenant, group.id.to_string()))
}

/// Signs in over HTTP (the client keeps the cookie) and returns the CSRF token.
async fn sign_in(client: &reqwest::Client, base: &str, password: &str) -> anyhow::Result<String> {
    let resp = client
        .post(format!("{base}/api/v1/auth/sign-in"))
        .json(&serde_json::json!({ "email": ADMIN_EMAIL, "password": password }))
        .send()
        .await?;
    let status = resp.status();
    if status != StatusCode::OK {
        anyhow::bail!("sign-in answered {status}: {}", resp.text().await?);
    }
    let view: serde_json::Value = resp.json().await?;
    view.get("csrf_token")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .context("the sign-in answer has no csrf_token")
}
