//! The printers' UDP side: the heartbeat protocol's printer rules (`printfleet_protocol::
//! heartbeat`: strictly increasing counters, answers opened with the down key and checked
//! against the counter waited for), many printers per socket. A printer's answers come back to
//! the socket it sent from; the socket's task finds the printer by the datagram's key id.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use printfleet_protocol::heartbeat::{
    derive_heartbeat_key, open_answer, open_request, peek, seal_request, AnswerType, HeartbeatKeys,
    ReplayWindow, Request, RequestType,
};
use printfleet_server::doorbell::service as doorbell;
use printfleet_storage::provision::Provisioned;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// Datagrams read per wake-up before yielding.
const RECV_BATCH: usize = 256;

/// Printers heartbeating for the first time at once, over all sockets: half the doorbell's
/// bound on key ids waiting for a look-up (2 048), beyond which it drops datagrams as busy.
const FIRST_HEARTBEATS_AT_ONCE: usize = 1024;

/// What a pass sends and what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Send a heartbeat per printer; wait for each one's "nothing".
    Heartbeat,
    /// Send a keep-alive per printer; wait for each one's "come fetch" (a ring).
    Ring,
    /// Send nothing; wait for each printer's datagram prepared by [`Fleet::baseline_datagrams`].
    Baseline,
}

struct Printer {
    /// The printer's index in the run (its place in the provisioned list).
    global: usize,
    keys: HeartbeatKeys,
    /// The last counter used.
    counter: u64,
    /// The counter whose answer it waits for (0: none).
    waiting: u64,
    /// A heartbeat of it was answered: the doorbell holds its keys in memory.
    known: bool,
}

struct Shard {
    socket: UdpSocket,
    printers: Vec<Printer>,
    index: HashMap<[u8; 8], usize>,
}

/// What a pass saw: when each printer's awaited datagram arrived (by run index).
pub struct Pass {
    pub arrivals: Vec<Option<Instant>>,
    pub received: usize,
    /// Valid answers of another kind than awaited (e.g. "nothing" to a held keep-alive).
    pub unexpected: u64,
}

pub struct Fleet {
    shards: Vec<Shard>,
    size: usize,
    server: SocketAddr,
}

/// The socket tasks of a pass under way.
pub struct Listening(Vec<JoinHandle<anyhow::Result<Heard>>>);

/// A socket's pass: the shard back, each awaited datagram's printer and arrival, and how many
/// valid answers were of another kind.
type Heard = (Shard, Vec<(usize, Instant)>, u64);

impl Fleet {
    /// Derives every printer's heartbeat keys and deals the printers out to `sockets` sockets
    /// with the doorbell's receive buffer.
    pub fn new(printers: &[Provisioned], sockets: u64, server: SocketAddr) -> anyhow::Result<Self> {
        let k = usize::try_from(sockets)?.clamp(1, printers.len().max(1));
        let mut shards = Vec::with_capacity(k);
        for _ in 0..k {
            let socket = doorbell::bind_udp(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                doorbell::DEFAULT_RECV_BUFFER,
            )?;
            shards.push(Shard {
                socket,
                printers: Vec::new(),
                index: HashMap::new(),
            });
        }
        for (i, p) in printers.iter().enumerate() {
            let keys =
                derive_heartbeat_key(&p.enrolment_secret, p.device.as_uuid().as_bytes()).keys();
            if let Some(s) = shards.get_mut(i % k) {
                s.index.insert(keys.key_id().0, s.printers.len());
                s.printers.push(Printer {
                    global: i,
                    keys,
                    counter: 0,
                    waiting: 0,
                    known: false,
                });
            }
        }
        Ok(Self {
            shards,
            size: printers.len(),
            server,
        })
    }

    /// One heartbeat per printer, answered "nothing" at once, so the doorbell holds every
    /// printer's keys in memory; a limited number of first heartbeats at a time, as a fleet's
    /// printers come online over time rather than in one instant. Returns how many answered.
    pub async fn warm_up(&mut self, timeout: Duration) -> anyhow::Result<usize> {
        let per_socket = (FIRST_HEARTBEATS_AT_ONCE / self.shards.len().max(1)).max(1);
        let mut known = 0;
        while known < self.size {
            let l = self.start_limited(Mode::Heartbeat, timeout, None, per_socket);
            let round = self.finish(l).await?.received;
            if round == 0 {
                break;
            }
            known += round;
        }
        Ok(known)
    }

    /// Starts a pass (its requests are sent by the time the sockets' tasks listen); see
    /// [`Fleet::finish`].
    pub fn start(
        &mut self,
        mode: Mode,
        timeout: Duration,
        notify: Option<UnboundedSender<usize>>,
    ) -> Listening {
        self.start_limited(mode, timeout, notify, usize::MAX)
    }

    /// Like [`Fleet::start`]; a heartbeat pass sends to at most `limit` printers per socket
    /// that have not been answered yet.
    fn start_limited(
        &mut self,
        mode: Mode,
        timeout: Duration,
        notify: Option<UnboundedSender<usize>>,
        limit: usize,
    ) -> Listening {
        let deadline = Instant::now() + timeout;
        let server = self.server;
        Listening(
            std::mem::take(&mut self.shards)
                .into_iter()
                .map(|s| tokio::spawn(s.pass(mode, server, deadline, notify.clone(), limit)))
                .collect(),
        )
    }

    /// Waits for a pass's sockets: every awaited answer in, or the deadline.
    pub async fn finish(&mut self, l: Listening) -> anyhow::Result<Pass> {
        let mut pass = Pass {
            arrivals: vec![None; self.size],
            received: 0,
            unexpected: 0,
        };
        for t in l.0 {
            let (shard, got, unexpected) = t.await??;
            for (i, at) in got {
                if let Some(slot) = pass.arrivals.get_mut(i) {
                    *slot = Some(at);
                    pass.received += 1;
                }
            }
            pass.unexpected += unexpected;
            self.shards.push(shard);
        }
        Ok(pass)
    }

    /// For the baseline: one datagram per printer, addressed to its socket — a request sealed
    /// with its next counter, which its socket's task checks by opening it with the up key (the
    /// same cost as opening an answer with the down key). In run order, so the sockets take
    /// turns as they do when the printers are rung.
    pub fn baseline_datagrams(&mut self) -> anyhow::Result<Vec<(SocketAddr, Vec<u8>)>> {
        let mut out = Vec::with_capacity(self.size);
        for s in &mut self.shards {
            let to = s.socket.local_addr()?;
            for p in &mut s.printers {
                p.counter += 1;
                p.waiting = p.counter;
                let d = seal_request(&p.keys, p.counter, request(RequestType::Keepalive))
                    .map_err(|e| anyhow::anyhow!("sealing: {}", e.code()))?;
                out.push((p.global, to, d));
            }
        }
        out.sort_by_key(|o| o.0);
        Ok(out.into_iter().map(|(_, to, d)| (to, d)).collect())
    }
}

fn request(kind: RequestType) -> Request {
    Request { kind, flags: 0 }
}

impl Shard {
    async fn pass(
        mut self,
        mode: Mode,
        server: SocketAddr,
        deadline: Instant,
        notify: Option<UnboundedSender<usize>>,
        limit: usize,
    ) -> anyhow::Result<Heard> {
        let kind = match mode {
            Mode::Heartbeat => Some(RequestType::Heartbeat),
            Mode::Ring => Some(RequestType::Keepalive),
            Mode::Baseline => None,
        };
        // Baseline: the datagrams prepared for every printer.
        let mut expected = self.printers.iter().filter(|p| p.waiting != 0).count();
        if let Some(kind) = kind {
            expected = 0;
            for p in &mut self.printers {
                if expected == limit {
                    break;
                }
                if kind == RequestType::Heartbeat && p.known {
                    continue;
                }
                p.counter += 1;
                p.waiting = p.counter;
                let d = seal_request(&p.keys, p.counter, request(kind))
                    .map_err(|e| anyhow::anyhow!("sealing: {}", e.code()))?;
                send_to(&self.socket, &d, server).await?;
                expected += 1;
            }
        }
        let mut got = Vec::with_capacity(expected);
        let mut unexpected = 0;
        let mut buf = [0u8; 64];
        while got.len() < expected {
            match tokio::time::timeout_at(deadline.into(), self.socket.readable()).await {
                Err(_) => break,
                Ok(r) => r?,
            }
            for _ in 0..RECV_BATCH {
                let n = match self.socket.try_recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.into()),
                };
                let at = Instant::now();
                let d = buf.get(..n).unwrap_or_default();
                match self.accept(mode, d) {
                    Some(Ok(i)) => {
                        got.push((i, at));
                        if let Some(tx) = &notify {
                            // The receiver outlives the pass unless the run is failing anyway.
                            let _ = tx.send(i);
                        }
                    }
                    Some(Err(())) => unexpected += 1,
                    None => {}
                }
            }
        }
        Ok((self, got, unexpected))
    }

    /// The run index of the printer whose awaited datagram `d` is; `Err` for a valid answer of
    /// another kind; `None` for anything else (not awaited, not authentic).
    fn accept(&mut self, mode: Mode, d: &[u8]) -> Option<Result<usize, ()>> {
        let clear = peek(d).ok()?;
        let p = self
            .index
            .get(&clear.key_id.0)
            .and_then(|&i| self.printers.get_mut(i))?;
        if p.waiting == 0 || clear.counter != p.waiting {
            return None;
        }
        let wanted = match mode {
            Mode::Heartbeat => AnswerType::Nothing,
            Mode::Ring => AnswerType::ComeFetch,
            Mode::Baseline => {
                open_request(&p.keys, d, &mut ReplayWindow::new()).ok()?;
                p.waiting = 0;
                return Some(Ok(p.global));
            }
        };
        let a = open_answer(&p.keys, p.waiting, d).ok()?;
        p.waiting = 0;
        p.known = true;
        if a.kind == wanted {
            Some(Ok(p.global))
        } else {
            Some(Err(()))
        }
    }
}

/// Sends one datagram, waiting for room in the socket buffer if it is full.
pub async fn send_to(socket: &UdpSocket, d: &[u8], to: SocketAddr) -> io::Result<()> {
    match socket.try_send_to(d, to) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.send_to(d, to).await.map(|_| ()),
        r => r.map(|_| ()),
    }
}
