//! The printers' HTTPS side: on its ring, a printer fetches its work with the agent's
//! `DeviceClient` (sealed `fetch`, sealed `work` back), checks it holds the `report_now` item,
//! and acknowledges it `done` in a second fetch, which must come back empty.
//!
//! `report_now` asks a printer for a full check-in before it acknowledges (docs/protocol.md
//! §7.4); the benchmark leaves the check-in out: it measures the doorbell and the fetch.

use std::sync::Arc;
use std::time::Instant;

use printfleet_agent::{DeviceClient, Enrolment};
use printfleet_protocol::heartbeat::derive_heartbeat_key;
use printfleet_protocol::messages::{Outcome, WorkAck};
use printfleet_protocol::KeyPair;
use printfleet_storage::provision::Provisioned;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::setup::{https_client, Env};

/// What the fetching printers achieved.
pub struct Fetched {
    /// Printers whose `report_now` was fetched and whose acknowledgement was answered.
    pub acknowledged: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    /// When the last acknowledgement was answered.
    pub last_done: Option<Instant>,
}

type Outcomes = Vec<Result<Instant, String>>;

pub struct Fetchers(Vec<JoinHandle<Outcomes>>);

/// Starts `concurrency` workers, each taking the next rung printer and fetching for it, until
/// the rings' channel closes.
pub fn start(
    env: &Env,
    rung: UnboundedReceiver<usize>,
    concurrency: u64,
) -> anyhow::Result<Fetchers> {
    let workers = usize::try_from(concurrency)?;
    let http = https_client(&env.cert_pem, workers)?;
    let clients: Arc<Vec<DeviceClient>> = Arc::new(
        env.printers
            .iter()
            .map(|p| DeviceClient::new(http.clone(), vec![env.base.clone()], enrolment(env, p)))
            .collect(),
    );
    let rung = Arc::new(Mutex::new(rung));
    Ok(Fetchers(
        (0..workers)
            .map(|_| {
                let rung = rung.clone();
                let clients = clients.clone();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    loop {
                        let next = rung.lock().await.recv().await;
                        let Some(i) = next else { break };
                        let r = match clients.get(i) {
                            Some(c) => fetch_and_ack(c).await,
                            None => Err(format!("no printer {i}")),
                        };
                        out.push(r.map(|()| Instant::now()));
                    }
                    out
                })
            })
            .collect(),
    ))
}

impl Fetchers {
    /// Waits for every rung printer's fetch (the channel closes when the rings' pass ends).
    pub async fn finish(self) -> anyhow::Result<Fetched> {
        let mut f = Fetched {
            acknowledged: 0,
            errors: 0,
            first_error: None,
            last_done: None,
        };
        for t in self.0 {
            for r in t.await? {
                match r {
                    Ok(at) => {
                        f.acknowledged += 1;
                        f.last_done = f.last_done.max(Some(at));
                    }
                    Err(e) => {
                        f.errors += 1;
                        f.first_error.get_or_insert(e);
                    }
                }
            }
        }
        Ok(f)
    }
}

/// What the printer knows after enrolment, rebuilt from what provisioning returned.
fn enrolment(env: &Env, p: &Provisioned) -> Enrolment {
    Enrolment {
        printer_id: p.device.as_uuid(),
        key: KeyPair::derive(&p.kem_seed),
        server_key: env.server_key.clone(),
        heartbeat_keys: derive_heartbeat_key(&p.enrolment_secret, p.device.as_uuid().as_bytes())
            .keys(),
        // Only `apply_settings` uses it (secret verifiers); provisioning keeps it server-side.
        verifier_key: [0; 32],
        parameters: printfleet_wire::DeviceParameters {
            heartbeat_port: 0,
            heartbeat_interval_s: 60,
            keepalive_interval_s: 25,
            https_ports: Vec::new(),
        },
    }
}

async fn fetch_and_ack(c: &DeviceClient) -> Result<(), String> {
    let now = super::now_ms().map_err(|e| e.to_string())?;
    let work = c
        .fetch(Vec::new(), 0, now)
        .await
        .map_err(|e| e.to_string())?;
    let item = match work.items.as_slice() {
        [one] if one.kind == "report_now" => one,
        other => {
            return Err(format!(
                "fetch: expected one report_now item, got {}",
                other.len()
            ))
        }
    };
    let ack = WorkAck::new(item.id.clone(), Outcome::Done, None);
    let now = super::now_ms().map_err(|e| e.to_string())?;
    let rest = c
        .fetch(vec![ack], 0, now)
        .await
        .map_err(|e| e.to_string())?;
    if !rest.items.is_empty() {
        return Err(format!(
            "after the acknowledgement {} items still pending",
            rest.items.len()
        ));
    }
    Ok(())
}
