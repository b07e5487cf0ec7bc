//! Printfleet storage: one interface over two real backends, SQLite (embedded, WAL) and
//! PostgreSQL, through sqlx's `Any` driver and one set of SQL statements.
//!
//! Every method that touches tenant data takes the caller's [`Ctx`] and enforces tenant, scope and
//! permission here, in the data layer. The only look-ups without a context live in [`resolver`],
//! which is how contexts are made.

pub mod assessment;
pub mod audit;
pub mod checkpoint;
mod codec;
pub mod compliance;
mod counts;
pub mod device_secrets;
pub mod devices;
pub mod dry_run;
pub mod dynamic_groups;
pub mod enrolment;
pub mod error;
pub mod groups;
mod ingest;
pub mod invitations;
pub mod keyring;
pub mod memberships;
mod migrate;
pub mod outbox;
pub mod policies;
pub mod provision;
pub mod rekey;
mod rekey_secrets;
pub mod resolver;
pub mod roles;
pub mod rollouts;
pub mod server_keys;
pub mod sessions;
pub mod telemetry;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod window_log;

pub use error::StoreError;
pub use printfleet_domain::Ctx;

use printfleet_crypto::{AuditKey, MasterKey};
use printfleet_domain::clock::Clock;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// PostgreSQL only: the schema to use (created when missing). Tests give each test its own.
    pub pg_schema: Option<String>,
    pub max_connections: u32,
    /// Where the audit chain heads are checkpointed, outside the database.
    pub checkpoint_path: PathBuf,
}

/// The keys a store needs, all kept outside the database.
#[derive(Clone, Debug)]
pub struct StoreKeys {
    /// The current master key first, then older ones still accepted while re-wrapping.
    pub masters: Vec<MasterKey>,
    pub audit: AuditKey,
}

/// The storage handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) keys: Arc<keyring::Keyring>,
    pub(crate) audit_key: Arc<AuditKey>,
    pub(crate) checkpoints: Arc<checkpoint::Checkpoints>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Serialises write transactions in this process: SQLite allows one writer anyway, and the
    /// audit chain needs its appends in order. A second node would rely on the primary keys.
    pub(crate) write_lock: Arc<tokio::sync::Mutex<()>>,
    /// The group-commit writer of check-ins, started on first use.
    ingest: Arc<std::sync::OnceLock<ingest::Ingest>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl Store {
    /// Connects, applies migrations and loads the keyring.
    pub async fn open(
        opts: StoreOptions,
        keys: StoreKeys,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if opts.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if opts.url.starts_with("postgres://") || opts.url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(
                "database.url must start with sqlite:// or postgres://".into(),
            ));
        };
        let mut url = opts.url.clone();
        if backend == Backend::Sqlite && !url.contains('?') {
            url.push_str("?mode=rwc");
        }
        let connect = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(format!("database.url: {e}")))?
            .log_statements(tracing::log::LevelFilter::Trace);
        if let Some(schema) = &opts.pg_schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::Config("invalid schema name".into()));
            }
        }
        let schema = opts.pg_schema.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => opts.max_connections.max(1),
                Backend::Postgres => opts.max_connections.max(2),
            })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            conn.execute("PRAGMA journal_mode=WAL").await?;
                            conn.execute("PRAGMA synchronous=FULL").await?;
                            conn.execute("PRAGMA foreign_keys=ON").await?;
                            conn.execute("PRAGMA busy_timeout=10000").await?;
                            // 32 MiB of page cache per connection (the default is 2 MiB): the
                            // check-in writer re-reads printers' states, which missed it.
                            conn.execute("PRAGMA cache_size=-32768").await?;
                        }
                        Backend::Postgres => {
                            if let Some(s) = schema {
                                conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {s}").as_str())
                                    .await?;
                                conn.execute(format!("SET search_path TO {s}").as_str())
                                    .await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Config(format!("database: cannot connect: {e}")))?;
        migrate::apply(&pool, backend).await?;
        let keys_ring = keyring::Keyring::load(&pool, keys.masters, clock.clone()).await?;
        let store = Self {
            pool,
            backend,
            keys: Arc::new(keys_ring),
            audit_key: Arc::new(keys.audit),
            checkpoints: Arc::new(checkpoint::Checkpoints::new(opts.checkpoint_path)),
            clock,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            ingest: Arc::new(std::sync::OnceLock::new()),
        };
        store.backfill_kem_key_ids().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction while holding the process-wide write lock.
    pub(crate) async fn write(&self) -> Result<(tokio::sync::OwnedMutexGuard<()>, Tx), StoreError> {
        let guard = self.write_lock.clone().lock_owned().await;
        let tx = self.begin_tx().await?;
        Ok((guard, tx))
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads and then writes fails at once with "database is
    /// locked", without waiting, when another process (`printfleet admin …` beside a running
    /// server) committed in between; an immediate one waits (busy_timeout) instead.
    pub(crate) async fn begin_tx(&self) -> Result<Tx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub(crate) fn ingest(&self) -> &ingest::Ingest {
        self.ingest.get_or_init(|| {
            ingest::Ingest::start(
                self.backend,
                self.pool.clone(),
                self.write_lock.clone(),
                self.clock.clone(),
            )
        })
    }

    /// The raw pool, for benchmarks and tests that inspect rows directly.
    pub fn raw_pool(&self) -> &AnyPool {
        &self.pool
    }
}
