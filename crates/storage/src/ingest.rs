//! Group commit for printers' check-ins. Each check-in must be durable before it is
//! acknowledged, and one fsync per report caps SQLite at a few thousand reports a second; so
//! check-ins queue here and one writer task stores everything that queued meanwhile in a single
//! transaction, then answers each. Under light load a batch holds one report (no added delay);
//! under heavy load batches grow and the fsyncs are shared.
//!
//! The writer holds only the pool, the write lock and the clock (not a `Store`), so it ends when
//! the last `Store` handle is dropped.

use std::sync::Arc;

use printfleet_domain::clock::Clock;
use printfleet_domain::telemetry::{Checked, DataClass};
use printfleet_domain::{DeviceId, TenantId};
use printfleet_protocol::messages::CheckIn;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::telemetry::{check_in_batch, CheckInOutcome, Pending};
use crate::StoreError;

/// The most reports stored in one transaction.
pub const MAX_BATCH: usize = 512;
/// Reports waiting beyond this are refused quickly rather than queued without bound.
const QUEUE: usize = 16 * 1024;

pub(crate) struct Job {
    pub tenant: TenantId,
    pub device: DeviceId,
    pub report: CheckIn,
    /// The report's stateless checks and its history documents, made on the request's task
    /// so that the writer's serial work is only what needs the printer's stored state.
    pub checked: Checked,
    pub history: Vec<(DataClass, String)>,
}

type Reply = oneshot::Sender<Result<CheckInOutcome, StoreError>>;

pub(crate) struct Ingest {
    tx: mpsc::Sender<(Job, Reply)>,
}

impl Ingest {
    pub(crate) fn start(
        backend: crate::Backend,
        pool: AnyPool,
        write_lock: Arc<tokio::sync::Mutex<()>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(rx, backend, pool, write_lock, clock));
        Self { tx }
    }

    pub(crate) async fn submit(&self, job: Job) -> Result<CheckInOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((job, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the check-in writer stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the check-in writer stopped".into()))?
    }
}

async fn writer(
    mut rx: mpsc::Receiver<(Job, Reply)>,
    backend: crate::Backend,
    pool: AnyPool,
    write_lock: Arc<tokio::sync::Mutex<()>>,
    clock: Arc<dyn Clock>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The writer keeps its own connection: SQLite's page cache then still holds the pages the
    // previous batch read and wrote (a pooled connection that other work used in between has
    // to read them again). Dropped after a failure, so a broken connection is replaced.
    let mut conn: Option<PoolConnection<Any>> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let (outcomes, replies) =
            store_batch(jobs, backend, &pool, &mut conn, &write_lock, clock.now_ms()).await;
        match outcomes {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                conn = None;
                tracing::warn!(error = %e, "check-in batch not stored; its printers retry");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(
                        "storing the report failed; retry".into(),
                    )));
                }
            }
        }
    }
}

/// Stores a batch in one transaction; on any database error nothing of it is stored.
async fn store_batch(
    jobs: Vec<(Job, Reply)>,
    backend: crate::Backend,
    pool: &AnyPool,
    conn: &mut Option<PoolConnection<Any>>,
    write_lock: &Arc<tokio::sync::Mutex<()>>,
    now: i64,
) -> (Result<Vec<CheckInOutcome>, StoreError>, Vec<Reply>) {
    let (jobs, replies): (Vec<Job>, Vec<Reply>) = jobs.into_iter().unzip();
    let result = async {
        let _guard = write_lock.lock().await;
        let conn = match conn {
            Some(c) => c,
            None => conn.insert(pool.acquire().await?),
        };
        let mut tx = conn.begin().await?;
        let pending: Vec<Pending<'_>> = jobs
            .iter()
            .map(|j| Pending {
                tenant: j.tenant,
                device: j.device,
                report: &j.report,
                checked: &j.checked,
                history: &j.history,
            })
            .collect();
        let outcomes = check_in_batch(&mut tx, backend, now, &pending).await?;
        tx.commit().await?;
        Ok(outcomes)
    }
    .await;
    (result, replies)
}
