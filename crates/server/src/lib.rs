//! The Printfleet server: configuration, the HTTP API with sign-in and sessions, metrics, TLS.
//! Domain rules live in `printfleet-domain`; tenant, scope and permission are enforced by
//! `printfleet-storage`; this crate turns HTTP into calls on those and errors into answers.

pub mod app;
pub mod assessor;
pub mod auth;
pub mod config;
pub mod device_channel;
pub mod device_sessions;
pub mod doorbell;
pub mod error;
pub mod json;
pub mod keys;
pub mod metrics;
pub mod rollout_driver;
pub mod routes;
pub mod state;
pub mod throttle;
pub mod tls;
mod views;

use anyhow::Context;
use config::Config;
use printfleet_crypto::{PasswordHasher, PasswordParams};
use printfleet_domain::clock::Clock;
use printfleet_storage::sessions::SessionPolicy;
use printfleet_storage::{Store, StoreOptions};
use rand::rngs::OsRng;
use state::{AppState, Inner, Settings};
use std::net::SocketAddr;
use std::sync::Arc;
use throttle::{Throttle, ThrottlePolicy};

/// Opens the store named by the configuration, with the keys from outside the database.
pub async fn open_store(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Store> {
    let keys = keys::load(cfg)?;
    open_store_with(cfg, keys, clock).await
}

/// Like [`open_store`], with keys the caller already loaded (so key files are read once).
pub async fn open_store_with(
    cfg: &Config,
    keys: printfleet_storage::StoreKeys,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", cfg.data_dir.display()))?;
    let store = Store::open(
        StoreOptions {
            url: cfg.database_url(),
            pg_schema: None,
            max_connections: cfg.database_max_connections.max(4),
            checkpoint_path: cfg.checkpoint_file(),
        },
        keys,
        clock,
    )
    .await?;
    Ok(store)
}

/// Everything the handlers share, from the configuration.
pub fn build_state(
    cfg: &Config,
    store: Store,
    params: PasswordParams,
    clock: Arc<dyn Clock>,
    csrf_key: [u8; 32],
) -> anyhow::Result<AppState> {
    let hasher = PasswordHasher::new(params, &mut OsRng).map_err(anyhow::Error::msg)?;
    let a = &cfg.auth;
    let tls = !cfg.plain_http;
    let public_url = if cfg.public_url.is_empty() {
        format!("{}://{}", if tls { "https" } else { "http" }, cfg.listen)
    } else {
        cfg.public_url.trim_end_matches('/').to_string()
    };
    Ok(Arc::new(Inner {
        store,
        hasher,
        throttle: Throttle::new(clock.clone()),
        metrics: metrics::Metrics::new(),
        settings: Settings {
            session: SessionPolicy {
                idle_ms: a.session_idle_minutes * 60_000,
                absolute_ms: a.session_absolute_hours * 3_600_000,
            },
            invitation_ttl_ms: a.invitation_ttl_hours * 3_600_000,
            throttle_account: ThrottlePolicy {
                threshold: a.lockout_threshold,
                base_ms: a.lockout_base_seconds * 1000,
                max_ms: a.lockout_max_seconds * 1000,
            },
            throttle_address: ThrottlePolicy {
                threshold: a.lockout_threshold_per_address,
                base_ms: a.lockout_base_seconds * 1000,
                max_ms: a.lockout_max_seconds * 1000,
            },
            secure_cookies: tls,
            public_url,
            max_body_bytes: cfg.max_body_bytes,
        },
        csrf_key: printfleet_crypto::BlindIndexKey::from_bytes(csrf_key),
        clock,
        channel: crate::device_channel::DeviceChannel::new(Arc::new(
            printfleet_domain::catalogue::Catalogue::builtin()
                .map_err(|e| anyhow::anyhow!("the built-in settings catalogue: {e}"))?,
        )),
        doorbell: std::sync::OnceLock::new(),
        assessor: crate::assessor::Assessor::default(),
    }))
}

/// A running server: its bound addresses and a handle to stop it.
pub struct Running {
    pub addrs: Vec<SocketAddr>,
    /// Where the heartbeat service listens, when it runs.
    pub heartbeat_addr: Option<SocketAddr>,
    pub handle: axum_server::Handle,
    pub tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    doorbell_stop: Option<DoorbellTask>,
    assessor: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.assessor.abort();
        if let Some((stop, task)) = self.doorbell_stop {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Binds every configured address (port 0 picks a free port) and serves until stopped.
pub async fn start(cfg: &Config, state: AppState) -> anyhow::Result<Running> {
    let tls = !cfg.plain_http;
    let (heartbeat_addr, doorbell_stop) = start_doorbell(cfg, &state).await?;
    let assessor = tokio::spawn(crate::rollout_driver::with_assessor(state.clone()));
    let app = app::router(state, tls);
    let mut listen = vec![cfg.listen_addr()?];
    for l in &cfg.extra_listen {
        listen.push(l.parse().context("extra_listen")?);
    }
    let rustls = if tls {
        let (c, k) = tls::ensure_cert(
            cfg.tls_cert.as_deref(),
            cfg.tls_key.as_deref(),
            &cfg.data_dir,
        )?;
        Some(tls::rustls_config(&c, &k).await?)
    } else {
        None
    };
    let handle = axum_server::Handle::new();
    let mut addrs = Vec::new();
    let mut tasks = Vec::new();
    for addr in listen {
        let l = std::net::TcpListener::bind(addr)
            .with_context(|| format!("listen: cannot bind {addr}"))?;
        l.set_nonblocking(true)?;
        addrs.push(l.local_addr()?);
        let svc = app
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        let h = handle.clone();
        let task = match &rustls {
            Some(r) => {
                let server = axum_server::from_tcp_rustls(l, r.clone()).handle(h);
                tokio::spawn(async move { server.serve(svc).await })
            }
            None => {
                let server = axum_server::from_tcp(l).handle(h);
                tokio::spawn(async move { server.serve(svc).await })
            }
        };
        tasks.push(task);
    }
    Ok(Running {
        addrs,
        heartbeat_addr,
        handle,
        tasks,
        doorbell_stop,
        assessor,
    })
}

type DoorbellTask = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// Starts the UDP heartbeat service on `heartbeat_listen` (unless empty), backed by the store.
async fn start_doorbell(
    cfg: &Config,
    state: &AppState,
) -> anyhow::Result<(Option<SocketAddr>, Option<DoorbellTask>)> {
    if cfg.heartbeat_listen.is_empty() {
        return Ok((None, None));
    }
    let bind: SocketAddr = cfg.heartbeat_listen.parse().context("heartbeat_listen")?;
    let config = printfleet_doorbell::DoorbellConfig {
        bind,
        ..Default::default()
    };
    let backends = doorbell::store_backends(&state.store, state.clock.clone())
        .await
        .context("opening the heartbeat window log")?;
    let server = printfleet_doorbell::DoorbellServer::bind(config, backends)
        .await
        .with_context(|| format!("heartbeat_listen: cannot bind UDP {bind}"))?;
    let addr = server.local_addr()?;
    let _ = state.doorbell.set(server.doorbell());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    Ok((Some(addr), Some((tx, task))))
}
