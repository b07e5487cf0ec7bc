//! The UDP receive loop and the ring.
//!
//! For every datagram (`docs/protocol.md` §3.5): read the clear fields, find the keys by key id,
//! load the key's replay window, authenticate and record the counter, **persist the window**,
//! record the printer's exact source address with the time, then answer "come fetch" or
//! "nothing" to that address. Anything refused is dropped silently and counted: the port never
//! answers unauthenticated or replayed traffic, and an answer is never larger than its request
//! (`seal_answer` refuses otherwise), so it cannot amplify or reflect traffic.
//!
//! Datagrams are handled one at a time, in order. That makes the load → check → save of a
//! replay window race-free without per-printer locks, at the price of one backend round trip
//! per datagram on the loop; sharding by key id is the next step if that ever limits.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use printfleet_domain::clock::Clock;
use printfleet_domain::DeviceId;
use printfleet_protocol::heartbeat::{
    self, AcceptedRequest, Answer, AnswerType, HeartbeatError, HeartbeatKeyId, ReplayWindow,
    RequestType,
};
use tokio::net::UdpSocket;

use crate::backend::{BackendError, HeartbeatKeys, ReplayStore, WorkQueue};
use crate::config::DoorbellConfig;
use crate::counters::{CounterSnapshot, Counters, DropReason};
use crate::presence::{NoTarget, Presence, PrinterStatus};

/// Larger than any valid datagram, so an oversized one is seen as such (the kernel truncates
/// what does not fit, and a truncated length is still too long).
const RECV_BUF_LEN: usize = 512;

/// Pause after a socket read error, so a persistent error cannot spin the loop.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// What the doorbell reads and where its time comes from.
#[derive(Clone)]
pub struct Backends {
    pub keys: Arc<dyn HeartbeatKeys>,
    pub replay: Arc<dyn ReplayStore>,
    pub work: Arc<dyn WorkQueue>,
    /// Milliseconds since the Unix epoch; `ManualClock` in tests.
    pub clock: Arc<dyn Clock>,
}

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

struct Shared {
    socket: UdpSocket,
    config: DoorbellConfig,
    backends: Backends,
    presence: Presence,
    counters: Counters,
}

/// The heartbeat server: bind, hand out [`Doorbell`]s, then [`run`](Self::run).
pub struct DoorbellServer {
    shared: Arc<Shared>,
}

/// A handle to ring printers and read their status; cheap to clone.
#[derive(Clone)]
pub struct Doorbell {
    shared: Arc<Shared>,
}

impl DoorbellServer {
    /// Binds the UDP socket at `config.bind`.
    pub async fn bind(config: DoorbellConfig, backends: Backends) -> io::Result<Self> {
        let socket = UdpSocket::bind(config.bind).await?;
        let presence = Presence::new(config.fresh_for_ms());
        Ok(Self {
            shared: Arc::new(Shared {
                socket,
                config,
                backends,
                presence,
                counters: Counters::default(),
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

    /// Serves until `shutdown` completes. A datagram being handled is finished first, so a
    /// window is never left saved-but-unanswered by the shutdown itself.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let s = &self.shared;
        tokio::pin!(shutdown);
        let mut buf = [0u8; RECV_BUF_LEN];
        let mut next_prune = s
            .backends
            .clock
            .now_ms()
            .saturating_add(s.config.fresh_for_ms());
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                r = s.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => s.handle(buf.get(..n).unwrap_or(&buf), from).await,
                    Err(e) => {
                        s.counters.recv_error();
                        tracing::debug!(error = %e, "doorbell: socket read failed");
                        tokio::time::sleep(RECV_ERROR_PAUSE).await;
                    }
                },
            }
            let now = s.backends.clock.now_ms();
            if now >= next_prune {
                s.presence.prune(now);
                next_prune = now.saturating_add(s.config.fresh_for_ms());
            }
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
    /// answered at most once, by a ring or by the receive loop.
    pub async fn try_ring(&self, printer: DeviceId) -> RingOutcome {
        let outcome = self.shared.ring(printer).await;
        if outcome == RingOutcome::Sent {
            self.shared.counters.rung();
        } else {
            self.shared.counters.ring_missed();
        }
        outcome
    }

    /// `Online` while the printer's latest authenticated datagram is within the freshness bound.
    pub fn status(&self, printer: DeviceId) -> PrinterStatus {
        let now = self.shared.backends.clock.now_ms();
        self.shared.presence.status(printer, now)
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.shared.counters.snapshot()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.socket.local_addr()
    }
}

fn backend_failed(what: &str, e: &BackendError) -> DropReason {
    tracing::warn!(error = %e, "doorbell: {what} failed; datagram dropped");
    DropReason::Backend
}

impl Shared {
    async fn handle(&self, datagram: &[u8], from: SocketAddr) {
        self.counters.received();
        if let Err(reason) = self.accept_and_answer(datagram, from).await {
            self.counters.dropped(reason);
            tracing::debug!(?reason, %from, "doorbell: datagram dropped");
        }
    }

    async fn accept_and_answer(&self, datagram: &[u8], from: SocketAddr) -> Result<(), DropReason> {
        let clear = heartbeat::peek(datagram).map_err(DropReason::of)?;
        let found = self
            .backends
            .keys
            .lookup(clear.key_id)
            .await
            .map_err(|e| backend_failed("key look-up", &e))?
            .ok_or(DropReason::UnknownKey)?;
        let printer = found.printer;
        let mut window = self.load_window(printer, clear.key_id).await?;
        let accepted = match heartbeat::open_request(&found.keys, datagram, &mut window) {
            Ok(a) => a,
            Err(HeartbeatError::UnknownType) => {
                // Authentic: the counter stays recorded (protocol §3.5 step 6), unanswered.
                let _ = self.save_window(printer, clear.key_id, &window).await;
                return Err(DropReason::UnknownType);
            }
            Err(e) => return Err(DropReason::of(e)),
        };
        // Persist before answering: if the save fails the datagram is dropped, so nothing
        // that was answered can be replayed after a restart.
        self.save_window(printer, clear.key_id, &window).await?;
        let now = self.backends.clock.now_ms();
        self.presence.record(printer, from, clear.key_id, now);

        let hold = self.config.hold_keepalives && accepted.request().kind == RequestType::Keepalive;
        if !hold {
            let kind = self.answer_kind(printer).await;
            if self.send(&found.keys, accepted, kind, from).await {
                self.counters.answered();
            }
            return Ok(());
        }
        // Hold first, then look for work: work queued (and rung) while we look is then either
        // seen by the look-up or answered by the ring — never missed by both.
        self.presence.hold(printer, accepted);
        if self.answer_kind(printer).await == AnswerType::ComeFetch {
            if let Some(accepted) = self.presence.take_held(printer) {
                if self
                    .send(&found.keys, accepted, AnswerType::ComeFetch, from)
                    .await
                {
                    self.counters.answered();
                }
            }
        } else {
            self.counters.held();
        }
        Ok(())
    }

    async fn load_window(
        &self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
    ) -> Result<ReplayWindow, DropReason> {
        match self.backends.replay.load(printer, key_id).await {
            Ok(None) => Ok(ReplayWindow::new()),
            // Corrupt state fails closed: starting over empty would re-open old counters.
            Ok(Some(bytes)) => ReplayWindow::from_bytes(&bytes)
                .map_err(|e| backend_failed("replay window decode", &BackendError::new(e))),
            Err(e) => Err(backend_failed("replay window load", &e)),
        }
    }

    async fn save_window(
        &self,
        printer: DeviceId,
        key_id: HeartbeatKeyId,
        window: &ReplayWindow,
    ) -> Result<(), DropReason> {
        self.backends
            .replay
            .save(printer, key_id, &window.to_bytes())
            .await
            .map_err(|e| backend_failed("replay window save", &e))
    }

    /// "Come fetch" if work waits. A failing work queue says "nothing": the printer asks again
    /// at its next heartbeat, whereas "come fetch" from every printer at once would turn a
    /// database hiccup into a fetch storm.
    async fn answer_kind(&self, printer: DeviceId) -> AnswerType {
        match self.backends.work.has_work(printer).await {
            Ok(true) => AnswerType::ComeFetch,
            Ok(false) => AnswerType::Nothing,
            Err(e) => {
                self.counters.work_error();
                tracing::warn!(error = %e, "doorbell: work look-up failed; answering nothing");
                AnswerType::Nothing
            }
        }
    }

    /// Seals the answer to `accepted` (consuming it) and sends it to `to`.
    async fn send(
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
        match self.socket.send_to(&sealed, to).await {
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

    async fn ring(&self, printer: DeviceId) -> RingOutcome {
        let now = self.backends.clock.now_ms();
        let target = match self.presence.take_for_ring(printer, now) {
            Ok(t) => t,
            Err(NoTarget::Offline) => return RingOutcome::Offline,
            Err(NoTarget::NothingHeld) => return RingOutcome::NothingHeld,
        };
        // Look the key up again: a printer revoked since its last datagram is not rung.
        let keys = match self.backends.keys.lookup(target.key_id).await {
            Ok(Some(k)) if k.printer == printer => k,
            Ok(_) => return RingOutcome::KeyRevoked,
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
