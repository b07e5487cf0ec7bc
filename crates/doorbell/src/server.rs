//! The UDP receive loop and the ring.
//!
//! For every datagram (`docs/protocol.md` §3.5): read the clear fields, find the key and its
//! replay window in memory ([`crate::cache`], loaded from the backends on a miss),
//! authenticate and record the counter, **persist the window**, record the printer's exact
//! source address with the time, then answer "come fetch" or "nothing" to that address.
//! Anything refused is dropped silently and counted: the port never answers unauthenticated or
//! replayed traffic, and an answer is never larger than its request (`seal_answer` refuses
//! otherwise), so it cannot amplify or reflect traffic.
//!
//! The work is a pipeline, so the receive loop never waits for the database:
//!
//! 1. **Receive loop** (one task): reads every datagram that is ready, authenticates it against
//!    the cached key and moves the in-memory window. Datagrams are handled one at a time, in
//!    order, so load → check → update of a window is race-free without per-printer locks. A
//!    datagram whose key is not in memory waits (bounded) while the resolver looks it up.
//! 2. **Writer** ([`crate::pipeline`]): group commit of the windows accepted meanwhile, one
//!    backend call (one transaction) per batch.
//! 3. **Answerer**: for a committed batch only, records presence, asks once which of its
//!    printers have work, seals and sends the answers. Nothing is answered before its window
//!    update is durable; a failed commit drops its answers.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use printfleet_domain::clock::Clock;
use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::{
    self, AcceptedRequest, Answer, AnswerType, HeartbeatKeyId, DATAGRAM_LEN,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::backend::{HeartbeatKeys, ReplayStore, WorkQueue};
use crate::cache::{self, Accept, Cache, MemoryStats};
use crate::config::DoorbellConfig;
use crate::counters::{CounterSnapshot, Counters, DropReason};
use crate::pipeline::{self, Accepted};
use crate::presence::{NoTarget, Presence, PrinterStatus};
use crate::resolve::{self, Resolution, Resolved};

/// Larger than any valid datagram, so an oversized one is seen as such (the kernel truncates
/// what does not fit, and a truncated length is still too long).
const RECV_BUF_LEN: usize = 512;

/// Pause after a socket read error, so a persistent error cannot spin the loop.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Datagrams read per wake-up before the loop looks at its other inputs again.
const RECV_BATCH: usize = 256;

/// Accepted datagrams waiting for the writer; when full the loop waits (and the socket buffer
/// fills), which is the back-pressure of a slow database.
const WRITER_QUEUE: usize = 2 * pipeline::MAX_BATCH;

/// Distinct key ids waiting for a look-up; datagrams of further unknown ids are dropped as
/// `busy` without asking the database. A fleet's first interval brings first contacts at random
/// moments (16 700/s for a million printers at 60 s), so the queue has bursts: 8 192 ids (half a
/// second of them, a few MiB at most) ride them out where 2 048 dropped thousands
/// (docs/benchmarks.md, "Fleet"). The database still sees only the resolver's batches.
const MAX_PARKED_KEYS: usize = 16 * resolve::LOOKUP_BATCH;
/// Datagrams kept per key id waiting for its look-up.
const MAX_PARKED_PER_KEY: usize = 4;

/// How often the loop wakes up without traffic to prune presence and evict idle keys.
const TICK: Duration = Duration::from_secs(1);

/// What the doorbell reads and where its time comes from.
#[derive(Clone)]
pub struct Backends {
    pub keys: Arc<dyn HeartbeatKeys>,
    pub replay: Arc<dyn ReplayStore>,
    pub work: Arc<dyn WorkQueue>,
    /// Milliseconds since the Unix epoch; `ManualClock` in tests.
    pub clock: Arc<dyn Clock>,
}

/// Printers whose keys [`Doorbell::ring_many`] looks up in one backend query.
pub const RING_LOOKUP_BATCH: usize = 128;

/// What [`Doorbell::try_ring`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingOutcome {
    /// "Come fetch" went to the printer's latest address.
    Sent,
    /// Not heard from within the freshness bound (or never): nothing sent.
    Offline,
    /// Fresh, but its latest datagram was already answered, so there is no request whose
    /// counter the answer could carry (see [`DoorbellConfig::hold_keepalives`]).
    NothingHeld,
    /// Its key is no longer live (revoked or removed): nothing sent.
    KeyRevoked,
    /// A backend or the socket failed; nothing (complete) was sent.
    Failed,
}

pub(crate) struct Shared {
    socket: UdpSocket,
    pub(crate) config: DoorbellConfig,
    pub(crate) backends: Backends,
    pub(crate) presence: Presence,
    pub(crate) counters: Counters,
    pub(crate) cache: Cache,
    /// The highest pipeline sequence number whose batch the writer finished (committed or
    /// failed); keys with later updates are not evicted.
    pub(crate) committed: AtomicU64,
}

/// The heartbeat server: bind, hand out [`Doorbell`]s, then [`run`](Self::run).
pub struct DoorbellServer {
    shared: Arc<Shared>,
}

/// A handle to ring printers, read their status and make the doorbell forget them; cheap to
/// clone.
#[derive(Clone)]
pub struct Doorbell {
    shared: Arc<Shared>,
}

impl DoorbellServer {
    /// Binds the UDP socket at `config.bind`.
    pub async fn bind(config: DoorbellConfig, backends: Backends) -> io::Result<Self> {
        let socket = bind_udp(config.bind, config.recv_buffer)?;
        let presence = Presence::new(config.fresh_for_ms());
        Ok(Self {
            shared: Arc::new(Shared {
                socket,
                config,
                backends,
                presence,
                counters: Counters::default(),
                cache: Cache::default(),
                committed: AtomicU64::new(0),
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.socket.local_addr()
    }

    pub fn doorbell(&self) -> Doorbell {
        Doorbell {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves until the task is dropped.
    pub async fn run(self) {
        self.run_until(std::future::pending()).await;
    }

    /// Serves until `shutdown` completes. Datagrams already accepted are then still committed
    /// and answered before this returns, so a window is never left saved-but-unanswered by the
    /// shutdown itself (datagrams waiting for a key look-up are dropped).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let s = self.shared;
        let (to_writer, writer_rx) = mpsc::channel(WRITER_QUEUE);
        let (to_answerer, answerer_rx) = mpsc::channel(4);
        let (to_resolver, resolver_rx) = mpsc::unbounded_channel();
        let (resolved_tx, mut resolved_rx) = mpsc::channel(4);
        let writer = tokio::spawn(pipeline::writer(s.clone(), writer_rx, to_answerer));
        let answerer = tokio::spawn(pipeline::answerer(s.clone(), answerer_rx));
        let resolver = tokio::spawn(resolve::resolver(s.clone(), resolver_rx, resolved_tx));
        let now = s.backends.clock.now_ms();
        let mut lp = Loop {
            s: &s,
            to_writer,
            to_resolver,
            parked: HashMap::new(),
            seq: 0,
            next_prune: now.saturating_add(s.config.fresh_for_ms()),
            next_evict: now.saturating_add(evict_every_ms(&s.config)),
        };
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(r) = resolved_rx.recv() => lp.resolved(r).await,
                r = s.socket.readable() => match r {
                    Ok(()) => lp.drain().await,
                    Err(e) => lp.recv_failed(&e).await,
                },
                _ = tick.tick() => {}
            }
            lp.maintain();
        }
        // Closing the writer's queue lets it commit what it has, hand it to the answerer and
        // stop; the answerer stops once that is answered.
        drop(lp);
        resolver.abort();
        let _ = writer.await;
        let _ = answerer.await;
    }
}

/// A non-blocking tokio UDP socket bound at `addr` with a receive buffer of `recv_buffer` bytes
/// asked for (0: the system default). Must be called within a tokio runtime.
pub fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if recv_buffer > 0 {
        socket.set_recv_buffer_size(recv_buffer)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

fn evict_every_ms(config: &DoorbellConfig) -> i64 {
    (config.evict_after_ms() / 4).max(1_000)
}

/// The receive loop's own state.
struct Loop<'a> {
    s: &'a Shared,
    to_writer: mpsc::Sender<Accepted>,
    to_resolver: mpsc::UnboundedSender<HeartbeatKeyId>,
    /// Datagrams waiting for their key's look-up, by key id, in arrival order.
    parked: HashMap<HeartbeatKeyId, Vec<([u8; DATAGRAM_LEN], SocketAddr)>>,
    /// Sequence number of the latest datagram handed to the writer.
    seq: u64,
    next_prune: i64,
    next_evict: i64,
}

impl Loop<'_> {
    /// Reads what the socket holds (up to [`RECV_BATCH`] datagrams) without waiting.
    async fn drain(&mut self) {
        let mut buf = [0u8; RECV_BUF_LEN];
        let now = self.s.backends.clock.now_ms();
        for _ in 0..RECV_BATCH {
            match self.s.socket.try_recv_from(&mut buf) {
                Ok((n, from)) => {
                    self.datagram(buf.get(..n).unwrap_or(&buf), from, now, true)
                        .await
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.recv_failed(&e).await,
            }
        }
    }

    async fn recv_failed(&self, e: &io::Error) {
        self.s.counters.recv_error();
        tracing::debug!(error = %e, "doorbell: socket read failed");
        tokio::time::sleep(RECV_ERROR_PAUSE).await;
    }

    /// Handles one datagram; `may_park`: whether a key that is not in memory may be looked up
    /// (not again for a datagram that already waited for its look-up).
    async fn datagram(&mut self, d: &[u8], from: SocketAddr, now: i64, may_park: bool) {
        let s = self.s;
        let clear = match heartbeat::peek(d) {
            Ok(c) => c,
            Err(e) => return self.refuse(DropReason::of(e), from),
        };
        let outcome = s.cache.lock().accept(clear, d, from, now, self.seq + 1);
        match outcome {
            Accept::Accepted(a) => {
                s.counters.received();
                self.seq += 1;
                if a.request.is_none() {
                    s.counters.dropped(DropReason::UnknownType);
                }
                // Err: the writer stopped (shutting down); the datagram stays unanswered.
                let _ = self.to_writer.send(a).await;
            }
            Accept::Dropped(reason) => self.refuse(reason, from),
            Accept::Miss if may_park => self.park(clear.key_id, d, from),
            Accept::Miss => self.refuse(DropReason::Busy, from),
        }
    }

    fn refuse(&self, reason: DropReason, from: SocketAddr) {
        self.s.counters.received();
        self.s.counters.dropped(reason);
        tracing::debug!(?reason, %from, "doorbell: datagram dropped");
    }

    fn park(&mut self, key_id: HeartbeatKeyId, d: &[u8], from: SocketAddr) {
        let Ok(bytes) = <[u8; DATAGRAM_LEN]>::try_from(d) else {
            return self.refuse(DropReason::Malformed, from);
        };
        if let Some(waiting) = self.parked.get_mut(&key_id) {
            if waiting.len() < MAX_PARKED_PER_KEY {
                waiting.push((bytes, from));
                return;
            }
        } else if self.parked.len() < MAX_PARKED_KEYS && self.to_resolver.send(key_id).is_ok() {
            self.parked.insert(key_id, vec![(bytes, from)]);
            return;
        }
        self.refuse(DropReason::Busy, from);
    }

    /// Installs what the resolver found and handles the datagrams that waited for it.
    async fn resolved(&mut self, r: Resolved) {
        let now = self.s.backends.clock.now_ms();
        let mut outcomes = Vec::with_capacity(r.results.len());
        {
            let mut cache = self.s.cache.lock();
            if cache.epoch() != r.epoch {
                // The cache forgot something while these were looked up: they may predate a
                // revocation. Look them up again (their datagrams keep waiting).
                drop(cache);
                for (key_id, _) in r.results {
                    if self.to_resolver.send(key_id).is_err() {
                        self.parked.remove(&key_id);
                    }
                }
                return;
            }
            for (key_id, res) in r.results {
                let outcome = match res {
                    Resolution::Found(keys, window) => {
                        cache.install(keys, window, now);
                        None
                    }
                    Resolution::Unknown => {
                        cache.mark_unknown(key_id, now);
                        Some(DropReason::UnknownKey)
                    }
                    Resolution::Failed => Some(DropReason::Backend),
                };
                outcomes.push((key_id, outcome));
            }
        }
        for (key_id, outcome) in outcomes {
            for (d, from) in self.parked.remove(&key_id).unwrap_or_default() {
                match outcome {
                    None => self.datagram(&d, from, now, false).await,
                    Some(reason) => self.refuse(reason, from),
                }
            }
        }
    }

    /// Prunes presence and evicts idle keys when due.
    fn maintain(&mut self) {
        let s = self.s;
        let now = s.backends.clock.now_ms();
        if now >= self.next_prune {
            s.presence.prune(now);
            self.next_prune = now.saturating_add(s.config.fresh_for_ms());
        }
        if now >= self.next_evict {
            let committed = s.committed.load(Ordering::Acquire);
            let evicted = s
                .cache
                .lock()
                .evict(now, s.config.evict_after_ms(), committed);
            if evicted > 0 {
                tracing::debug!(evicted, "doorbell: idle printers' keys evicted");
            }
            self.next_evict = now.saturating_add(evict_every_ms(&s.config));
        }
    }
}

impl Doorbell {
    /// Sends an unsolicited "come fetch" if the printer's address is fresh and a request of its
    /// is held; returns whether it was sent. See [`try_ring`](Self::try_ring).
    pub async fn ring(&self, printer: DeviceId) -> bool {
        self.try_ring(printer).await == RingOutcome::Sent
    }

    /// Like [`ring`](Self::ring), saying why nothing was sent.
    ///
    /// Sends only to the exact source address of the printer's latest authenticated datagram,
    /// and only as the answer to that datagram's counter (a held keepalive), sealed with the
    /// down key: the protocol allows no other server → printer datagram. Each held request is
    /// answered at most once, by a ring or by the answerer.
    pub async fn try_ring(&self, printer: DeviceId) -> RingOutcome {
        let outcome = self.shared.ring(printer).await;
        if outcome == RingOutcome::Sent {
            self.shared.counters.rung();
        } else {
            self.shared.counters.ring_missed();
        }
        outcome
    }

    /// [`try_ring`](Self::try_ring) for many printers: their keys are looked up in batches
    /// (one backend query per [`RING_LOOKUP_BATCH`] printers instead of one each), so one change
    /// reaching thousands of printers rings them all quickly. One outcome per printer, in order.
    pub async fn ring_many(&self, printers: &[DeviceId]) -> Vec<RingOutcome> {
        let outcomes = self.shared.ring_many(printers).await;
        for o in &outcomes {
            if *o == RingOutcome::Sent {
                self.shared.counters.rung();
            } else {
                self.shared.counters.ring_missed();
            }
        }
        outcomes
    }

    /// `Online` while the printer's latest authenticated datagram is within the freshness bound.
    pub fn status(&self, printer: DeviceId) -> PrinterStatus {
        let now = self.shared.backends.clock.now_ms();
        self.shared.presence.status(printer, now)
    }

    /// Forgets everything the doorbell holds in memory about a printer: its cached keys and
    /// replay window (reloaded from the backends on its next datagram), its address and any
    /// held keepalive. Answers to its datagrams still in the pipeline are not sent.
    ///
    /// Call it **after** the change is committed when a printer is removed, its key revoked, or
    /// it re-enrolled (its heartbeat key id changed): from then on its old key's datagrams are
    /// looked up again and refused.
    pub fn forget_printer(&self, printer: DeviceId) {
        self.shared.cache.lock().forget_printer(printer);
        self.shared.presence.forget(printer);
    }

    /// Forgets one heartbeat key (as [`forget_printer`](Self::forget_printer) does for the
    /// printer's current key), and that it was unknown, if it was.
    pub fn forget_key(&self, key_id: HeartbeatKeyId) {
        let printer = self.shared.cache.lock().forget_key(key_id);
        if let Some(p) = printer {
            self.shared.presence.forget(p);
        }
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    /// How many printers the doorbell holds in memory, and the size of each one's state.
    pub fn memory(&self) -> MemoryStats {
        let (cached_keys, unknown_keys) = self.shared.cache.lock().stats();
        MemoryStats {
            cached_keys,
            unknown_keys,
            present_printers: self.shared.presence.len(),
            key_entry_bytes: cache::key_entry_bytes(),
            presence_entry_bytes: crate::presence::entry_bytes(),
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.socket.local_addr()
    }
}

impl Shared {
    /// Seals the answer to `accepted` (consuming it) and sends it to `to`.
    pub(crate) async fn send(
        &self,
        keys: &heartbeat::HeartbeatKeys,
        accepted: AcceptedRequest,
        kind: AnswerType,
        to: SocketAddr,
    ) -> bool {
        let answer = Answer { kind, flags: 0 };
        let sealed = match heartbeat::seal_answer(keys, accepted, answer) {
            Ok(b) => b,
            Err(e) => {
                self.counters.send_error();
                tracing::error!(code = e.code(), "doorbell: answer refused by the protocol");
                return false;
            }
        };
        let sent = match self.socket.try_send_to(&sealed, to) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.socket.send_to(&sealed, to).await
            }
            r => r,
        };
        match sent {
            Ok(n) if n == sealed.len() => true,
            Ok(_) => {
                self.counters.send_error();
                false
            }
            Err(e) => {
                self.counters.send_error();
                tracing::debug!(error = %e, %to, "doorbell: send failed");
                false
            }
        }
    }

    async fn ring_many(&self, printers: &[DeviceId]) -> Vec<RingOutcome> {
        let now = self.backends.clock.now_ms();
        let mut out = vec![RingOutcome::Failed; printers.len()];
        let mut targets = Vec::new();
        for (i, p) in printers.iter().enumerate() {
            match self.presence.take_for_ring(*p, now) {
                Ok(t) => targets.push((i, t)),
                Err(NoTarget::Offline) => out[i] = RingOutcome::Offline,
                Err(NoTarget::NothingHeld) => out[i] = RingOutcome::NothingHeld,
            }
        }
        while !targets.is_empty() {
            let rest = targets.split_off(targets.len().min(RING_LOOKUP_BATCH));
            let chunk = std::mem::replace(&mut targets, rest);
            let ids: Vec<HeartbeatKeyId> = chunk.iter().map(|(_, t)| t.key_id).collect();
            // As in `ring`: the backend, not the cache, says whether the key is still live.
            let keys = match self.backends.keys.lookup_many(&ids).await {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "doorbell: key look-up for rings failed");
                    continue;
                }
            };
            for ((i, t), k) in chunk.into_iter().zip(keys) {
                out[i] = match k {
                    Some(k) if k.printer == printers[i] => {
                        if self
                            .send(&k.keys, t.held, AnswerType::ComeFetch, t.addr)
                            .await
                        {
                            RingOutcome::Sent
                        } else {
                            RingOutcome::Failed
                        }
                    }
                    _ => {
                        self.cache.lock().forget_key(t.key_id);
                        RingOutcome::KeyRevoked
                    }
                };
            }
        }
        out
    }

    async fn ring(&self, printer: DeviceId) -> RingOutcome {
        let now = self.backends.clock.now_ms();
        let target = match self.presence.take_for_ring(printer, now) {
            Ok(t) => t,
            Err(NoTarget::Offline) => return RingOutcome::Offline,
            Err(NoTarget::NothingHeld) => return RingOutcome::NothingHeld,
        };
        // Ask the backend, not the cache: a printer revoked since its last datagram is not
        // rung even if nobody told the cache (and the cache then forgets it).
        let keys = match self.backends.keys.lookup(target.key_id).await {
            Ok(Some(k)) if k.printer == printer => k,
            Ok(_) => {
                self.cache.lock().forget_key(target.key_id);
                return RingOutcome::KeyRevoked;
            }
            Err(e) => {
                tracing::warn!(error = %e, "doorbell: key look-up for a ring failed");
                return RingOutcome::Failed;
            }
        };
        if self
            .send(&keys.keys, target.held, AnswerType::ComeFetch, target.addr)
            .await
        {
            RingOutcome::Sent
        } else {
            RingOutcome::Failed
        }
    }
}
