//! After the receive loop has accepted a datagram: group commit of the replay windows, then the
//! answers.
//!
//! - The **writer** takes everything the loop accepted while the previous commit was running
//!   (up to [`MAX_BATCH`]), keeps the latest window of each key, and saves them all in one call
//!   to [`crate::ReplayStore::save_many`] (one transaction in the database). Under light load a
//!   batch holds one datagram, so nothing waits for a timer; under heavy load batches grow and
//!   the commits (the `fsync`s) are shared.
//! - Only a batch that committed goes on to the **answerer**, which records presence, asks once
//!   for the whole batch which printers have work waiting, and seals and sends the answers. A
//!   failed batch is dropped whole: nothing unpersisted is ever answered.
//!
//! The answerer runs while the writer commits the next batch, so the two overlap.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::{
    AcceptedRequest, AnswerType, HeartbeatKeyId, RequestType, WINDOW_BYTES_LEN,
};
use tokio::sync::mpsc;

use crate::backend::WindowUpdate;
use crate::cache::KeyMaterial;
use crate::counters::DropReason;
use crate::server::Shared;

/// The most datagrams whose windows go into one commit.
pub const MAX_BATCH: usize = 4096;

/// A datagram the loop accepted (its counter is in the in-memory window), on its way to be
/// persisted and answered.
pub(crate) struct Accepted {
    pub material: Arc<KeyMaterial>,
    pub key_id: HeartbeatKeyId,
    /// The key's whole window after this datagram (a later save supersedes an earlier one).
    pub window: [u8; WINDOW_BYTES_LEN],
    /// `None`: authentic but of an unknown type; persisted, not answered.
    pub request: Option<AcceptedRequest>,
    pub from: SocketAddr,
    /// Order of acceptance (from 1); see [`Shared::committed`].
    pub seq: u64,
}

pub(crate) async fn writer(
    s: Arc<Shared>,
    mut rx: mpsc::Receiver<Accepted>,
    answers: mpsc::Sender<Vec<Accepted>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut latest: HashMap<HeartbeatKeyId, usize> = HashMap::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        latest.clear();
        for (i, a) in batch.iter().enumerate() {
            latest.insert(a.key_id, i);
        }
        let mut updates: Vec<WindowUpdate<'_>> = latest
            .values()
            .filter_map(|&i| batch.get(i))
            .map(|a| WindowUpdate {
                printer: a.material.printer,
                key_id: a.key_id,
                window: &a.window,
            })
            .collect();
        updates.sort_unstable_by_key(|u| u.key_id);
        let saved = s.backends.replay.save_many(&updates).await;
        s.counters.window_commit(updates.len());
        drop(updates);
        let last_seq = batch.last().map_or(0, |a| a.seq);
        let items = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        // Finished either way: the database holds the latest windows of every key in the batch
        // (or, after a failure, none of the batch was answered, so re-accepting its counters
        // after a reload answers each at most once).
        s.committed.fetch_max(last_seq, Ordering::AcqRel);
        match saved {
            Ok(()) => {
                if answers.send(items).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let unanswered = items.iter().filter(|a| a.request.is_some()).count();
                tracing::warn!(error = %e, datagrams = unanswered,
                    "doorbell: replay windows not persisted; datagrams dropped unanswered");
                for _ in 0..unanswered {
                    s.counters.dropped(DropReason::Backend);
                }
            }
        }
    }
}

/// What the answerer does for one datagram of a committed batch.
enum Todo {
    Answer {
        material: Arc<KeyMaterial>,
        request: AcceptedRequest,
        from: SocketAddr,
    },
    /// A keepalive now held in presence: answered "come fetch" if work waits.
    Held { material: Arc<KeyMaterial> },
}

pub(crate) async fn answerer(s: Arc<Shared>, mut rx: mpsc::Receiver<Vec<Accepted>>) {
    let mut todo = Vec::new();
    let mut printers = Vec::new();
    while let Some(batch) = rx.recv().await {
        answer_batch(&s, batch, &mut todo, &mut printers).await;
    }
}

async fn answer_batch(
    s: &Shared,
    batch: Vec<Accepted>,
    todo: &mut Vec<Todo>,
    printers: &mut Vec<DeviceId>,
) {
    todo.clear();
    printers.clear();
    let now = s.backends.clock.now_ms();
    for a in batch {
        let Some(request) = a.request else { continue };
        // Forgotten (revoked, removed, re-enrolled) since it was accepted: not answered.
        if !a.material.is_live() {
            s.counters.dropped(DropReason::UnknownKey);
            continue;
        }
        let printer = a.material.printer;
        s.presence.record(printer, a.from, a.key_id, now);
        printers.push(printer);
        if s.config.hold_keepalives && request.request().kind == RequestType::Keepalive {
            // Hold first, then look for work: work queued (and rung) while we look is then
            // either seen by the look-up or answered by the ring — never missed by both.
            s.presence.hold(printer, request);
            todo.push(Todo::Held {
                material: a.material,
            });
        } else {
            todo.push(Todo::Answer {
                material: a.material,
                request,
                from: a.from,
            });
        }
    }
    if todo.is_empty() {
        return;
    }
    let pending = pending_work(s, printers).await;
    for t in todo.drain(..) {
        match t {
            Todo::Answer {
                material,
                request,
                from,
            } => {
                let kind = if pending.contains(&material.printer) {
                    AnswerType::ComeFetch
                } else {
                    AnswerType::Nothing
                };
                if !material.is_live() {
                    s.counters.dropped(DropReason::UnknownKey);
                } else if s.send(&material.keys, request, kind, from).await {
                    s.counters.answered();
                }
            }
            Todo::Held { material } => {
                let taken = if pending.contains(&material.printer) && material.is_live() {
                    s.presence.take_held(material.printer)
                } else {
                    None
                };
                match taken {
                    Some((request, to)) => {
                        if s.send(&material.keys, request, AnswerType::ComeFetch, to)
                            .await
                        {
                            s.counters.answered();
                        }
                    }
                    None => s.counters.held(),
                }
            }
        }
    }
}

/// The printers among `printers` with work waiting: one backend call per batch. A failing work
/// queue says "nothing": the printer asks again at its next heartbeat, whereas "come fetch"
/// from every printer at once would turn a database hiccup into a fetch storm.
async fn pending_work(s: &Shared, printers: &mut Vec<DeviceId>) -> HashSet<DeviceId> {
    let asked = printers.len();
    printers.sort_unstable();
    printers.dedup();
    match s.backends.work.pending_among(printers).await {
        Ok(set) => set,
        Err(e) => {
            for _ in 0..asked {
                s.counters.work_error();
            }
            tracing::warn!(error = %e, "doorbell: work look-up failed; answering nothing");
            HashSet::new()
        }
    }
}
