//! The load generator: printers speaking the heartbeat protocol (`printfleet_protocol`'s printer
//! side: sealed requests with strictly increasing counters, answers opened and checked), spread
//! over a few UDP sockets, one task per socket.
//!
//! Two ways to drive them:
//! - [`closed_loop`]: as fast as answers come back, with a fixed number of requests
//!   outstanding per socket (a new request for the next printer as soon as one is answered or
//!   times out). Measures capacity.
//! - [`paced`]: each printer heartbeats every interval from a random start, like a real fleet;
//!   a request unanswered within the timeout is retried once with a new counter (as a printer
//!   would), and counts as failed if the retry is unanswered too.
//!
//! The same generator drives the doorbell and the bare echo server. Against the echo server the
//! answer is the request itself, which is checked by opening it with the up key: the client
//! does the same work (one seal, one open per heartbeat) in both runs.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use printfleet_protocol::heartbeat::{
    self, open_answer, open_request, seal_request, HeartbeatKeys, ReplayWindow, Request,
    RequestType,
};
use tokio::net::UdpSocket;

use super::sys::Histogram;

/// Datagrams read per wake-up.
const RECV_BATCH: usize = 256;

/// What answers the load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The doorbell: answers sealed with the down key, carrying the request's counter.
    Doorbell,
    /// The bare echo server: the request's own bytes come back.
    Echo,
}

/// One simulated printer.
pub struct Printer {
    keys: HeartbeatKeys,
    /// The last counter used (strictly increasing).
    counter: u64,
    /// The counter of the request waiting for its answer (0: none).
    waiting: u64,
    sent_at: Instant,
    /// Paced mode: when it first heartbeats, after the start (µs), and which heartbeat of it
    /// (interval number) the waiting request is, and whether it is the retry.
    offset_us: u32,
    round: u32,
    retry: bool,
}

impl Printer {
    pub fn offset_us(&self) -> u32 {
        self.offset_us
    }

    pub fn new(keys: HeartbeatKeys, offset_us: u32) -> Self {
        Self {
            keys,
            counter: 0,
            waiting: 0,
            sent_at: Instant::now(),
            offset_us,
            round: 0,
            retry: false,
        }
    }
}

/// The printers of one socket.
pub struct Shard {
    socket: UdpSocket,
    printers: Vec<Printer>,
    index: HashMap<[u8; 8], u32>,
    next: usize,
}

/// What one run of the generator saw.
#[derive(Clone, Default)]
pub struct Stats {
    pub sent: u64,
    pub answered: u64,
    /// Requests unanswered within the timeout (closed loop), or whose retry was unanswered
    /// too (paced).
    pub timeouts: u64,
    /// Paced: first tries that timed out and were retried; answered on the retry.
    pub retries: u64,
    pub answered_on_retry: u64,
    /// Answers for a request no longer waited for (after its timeout).
    pub late: u64,
    /// Datagrams that were not a valid answer to any printer of the socket.
    pub bad: u64,
    pub latency: Histogram,
    pub elapsed: Duration,
}

impl Stats {
    pub fn merge(&mut self, o: &Stats) {
        self.sent += o.sent;
        self.answered += o.answered;
        self.timeouts += o.timeouts;
        self.retries += o.retries;
        self.answered_on_retry += o.answered_on_retry;
        self.late += o.late;
        self.bad += o.bad;
        self.latency.merge(&o.latency);
        self.elapsed = self.elapsed.max(o.elapsed);
    }

    pub fn rate(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// An answer matched to the request a printer was waiting for.
pub struct Answered {
    retry: bool,
    round: u32,
    us: u64,
}

/// Live totals across shards, for progress displays.
#[derive(Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    pub failed: AtomicU64,
}

impl Shard {
    /// `printers` must be sorted by `offset_us` for [`paced`].
    pub fn new(socket: UdpSocket, printers: Vec<Printer>) -> anyhow::Result<Self> {
        let mut index = HashMap::with_capacity(printers.len());
        for (i, p) in printers.iter().enumerate() {
            index.insert(p.keys.key_id().0, u32::try_from(i)?);
        }
        Ok(Self {
            socket,
            printers,
            index,
            next: 0,
        })
    }

    pub fn len(&self) -> usize {
        self.printers.len()
    }

    /// Points the socket at another server (the next phase), after throwing away whatever the
    /// previous one still sent.
    pub async fn connect(&self, to: SocketAddr) -> io::Result<()> {
        let mut buf = [0u8; 64];
        while self.socket.try_recv(&mut buf).is_ok() {}
        self.socket.connect(to).await
    }

    /// Seals the next request of printer `i` and sends it.
    async fn send(&mut self, i: usize, now: Instant) -> io::Result<Option<u64>> {
        let Some(p) = self.printers.get_mut(i) else {
            return Ok(None);
        };
        p.counter += 1;
        p.waiting = p.counter;
        p.sent_at = now;
        let d = seal_request(
            &p.keys,
            p.counter,
            Request {
                kind: RequestType::Heartbeat,
                flags: 0,
            },
        )
        .map_err(|e| io::Error::other(e.code()))?;
        let counter = p.counter;
        match self.socket.try_send(&d) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.send(&d).await?,
            r => r?,
        };
        Ok(Some(counter))
    }

    /// Reads every datagram waiting (up to a batch) and matches it to its printer; appends the
    /// printers answered to `answered`.
    fn drain(&mut self, target: Target, stats: &mut Stats, answered: &mut Vec<Answered>) {
        let mut buf = [0u8; 64];
        for _ in 0..RECV_BATCH {
            let n = match self.socket.try_recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // E.g. ECONNREFUSED after the server went away: nothing to read.
                Err(_) => return,
            };
            let d = buf.get(..n).unwrap_or(&buf);
            let Ok(clear) = heartbeat::peek(d) else {
                stats.bad += 1;
                continue;
            };
            let Some(&i) = self.index.get(&clear.key_id.0) else {
                stats.bad += 1;
                continue;
            };
            let i = i as usize;
            let Some(p) = self.printers.get_mut(i) else {
                continue;
            };
            if p.waiting == 0 || p.waiting != clear.counter {
                stats.late += 1;
                continue;
            }
            let ok = match target {
                Target::Doorbell => open_answer(&p.keys, clear.counter, d).is_ok(),
                Target::Echo => open_request(&p.keys, d, &mut ReplayWindow::new()).is_ok(),
            };
            if !ok {
                stats.bad += 1;
                continue;
            }
            p.waiting = 0;
            let us = u64::try_from(p.sent_at.elapsed().as_micros()).unwrap_or(u64::MAX);
            stats.latency.record(us);
            stats.answered += 1;
            answered.push(Answered {
                retry: p.retry,
                round: p.round,
                us,
            });
        }
    }

    /// Waits until the socket is readable or `until`.
    async fn wait(&self, until: Instant) {
        let _ = tokio::time::timeout_at(until.into(), self.socket.readable()).await;
    }
}

/// Closed loop for `duration`: `window` requests outstanding on the socket, each for a different
/// printer, the next printer in turn as soon as one is answered or times out.
pub async fn closed_loop(
    shard: Shard,
    target: Target,
    window: usize,
    duration: Duration,
    timeout: Duration,
    live: Arc<Live>,
) -> anyhow::Result<(Shard, Stats)> {
    run_closed(shard, target, window, duration, timeout, live, None).await
}

/// Like [`closed_loop`], but one heartbeat per printer, then waits for the last answers (or
/// `duration`, whichever comes first).
pub async fn one_pass(
    shard: Shard,
    target: Target,
    window: usize,
    duration: Duration,
    timeout: Duration,
    live: Arc<Live>,
) -> anyhow::Result<(Shard, Stats)> {
    let n = shard.printers.len() as u64;
    run_closed(shard, target, window, duration, timeout, live, Some(n)).await
}

async fn run_closed(
    mut shard: Shard,
    target: Target,
    window: usize,
    duration: Duration,
    timeout: Duration,
    live: Arc<Live>,
    limit: Option<u64>,
) -> anyhow::Result<(Shard, Stats)> {
    let n = shard.printers.len();
    let window = window.min(n);
    let mut stats = Stats::default();
    let mut fifo: VecDeque<(usize, u64, Instant)> = VecDeque::new();
    let mut outstanding = 0usize;
    let mut answered = Vec::new();
    let start = Instant::now();
    let deadline = start + duration;
    loop {
        let now = Instant::now();
        let all_sent = limit.is_some_and(|l| stats.sent >= l);
        if now >= deadline || (all_sent && outstanding == 0) {
            break;
        }
        while outstanding < window && limit.is_none_or(|l| stats.sent < l) {
            let i = shard.next;
            shard.next = (shard.next + 1) % n;
            if shard.printers.get(i).is_some_and(|p| p.waiting != 0) {
                continue;
            }
            if let Some(c) = shard.send(i, now).await? {
                fifo.push_back((i, c, now));
                outstanding += 1;
                stats.sent += 1;
                live.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        let wake = fifo
            .front()
            .map_or(deadline, |f| (f.2 + timeout).min(deadline));
        shard.wait(wake).await;
        answered.clear();
        shard.drain(target, &mut stats, &mut answered);
        outstanding -= answered.len();
        live.answered
            .fetch_add(answered.len() as u64, Ordering::Relaxed);
        let now = Instant::now();
        while let Some(&(i, c, t)) = fifo.front() {
            let Some(p) = shard.printers.get_mut(i) else {
                fifo.pop_front();
                continue;
            };
            if p.waiting != c {
                fifo.pop_front();
            } else if now.duration_since(t) >= timeout {
                p.waiting = 0;
                outstanding -= 1;
                stats.timeouts += 1;
                live.failed.fetch_add(1, Ordering::Relaxed);
                fifo.pop_front();
            } else {
                break;
            }
        }
    }
    stats.elapsed = start.elapsed();
    // Forget what is still outstanding: the next phase starts clean.
    for p in &mut shard.printers {
        p.waiting = 0;
    }
    Ok((shard, stats))
}

/// Per-interval results of [`paced`].
#[derive(Clone, Default)]
pub struct Rounds(pub Vec<Stats>);

/// Each printer heartbeats every `interval`, first at its `offset_us` after `start`, for
/// `rounds` intervals; unanswered after `timeout` → one retry with a new counter; unanswered
/// again → failed. Returns the statistics of each interval (by the heartbeat's own interval).
pub async fn paced(
    mut shard: Shard,
    interval: Duration,
    rounds: u32,
    timeout: Duration,
    start: Instant,
    live: Arc<Live>,
) -> anyhow::Result<(Shard, Rounds)> {
    let n = shard.printers.len();
    let mut per_round: Vec<Stats> = vec![Stats::default(); rounds as usize];
    let mut fifo: VecDeque<(usize, u64, Instant)> = VecDeque::new();
    let mut answered = Vec::new();
    let mut round = 0u32;
    let due = |shard: &Shard, round: u32| -> Option<Instant> {
        let p = shard.printers.get(shard.next)?;
        Some(start + Duration::from_micros(u64::from(p.offset_us)) + interval * round)
    };
    let mut scratch = Stats::default();
    loop {
        let now = Instant::now();
        // Heartbeats due.
        while round < rounds {
            let Some(at) = due(&shard, round) else { break };
            if at > now {
                break;
            }
            let i = shard.next;
            if let Some(p) = shard.printers.get_mut(i) {
                if p.waiting != 0 {
                    // Its previous heartbeat (or retry) is still unanswered: that one fails.
                    p.waiting = 0;
                    if let Some(s) = per_round.get_mut(p.round as usize) {
                        s.timeouts += 1;
                    }
                    live.failed.fetch_add(1, Ordering::Relaxed);
                }
                p.round = round;
                p.retry = false;
            }
            if let Some(c) = shard.send(i, now).await? {
                fifo.push_back((i, c, now));
                if let Some(s) = per_round.get_mut(round as usize) {
                    s.sent += 1;
                }
                live.sent.fetch_add(1, Ordering::Relaxed);
            }
            shard.next += 1;
            if shard.next == n {
                shard.next = 0;
                round += 1;
            }
        }
        // Answers.
        answered.clear();
        shard.drain(Target::Doorbell, &mut scratch, &mut answered);
        live.answered
            .fetch_add(answered.len() as u64, Ordering::Relaxed);
        for a in &answered {
            let Some(s) = per_round.get_mut(a.round as usize) else {
                continue;
            };
            s.answered += 1;
            if a.retry {
                s.answered_on_retry += 1;
            }
            s.latency.record(a.us);
        }
        // Timeouts: retry once, then fail.
        let now = Instant::now();
        while let Some(&(i, c, t)) = fifo.front() {
            let waiting = shard.printers.get(i).map_or(0, |p| p.waiting);
            if waiting != c {
                fifo.pop_front();
                continue;
            }
            if now.duration_since(t) < timeout {
                break;
            }
            fifo.pop_front();
            let Some(p) = shard.printers.get_mut(i) else {
                continue;
            };
            let r = p.round as usize;
            if p.retry {
                p.waiting = 0;
                if let Some(s) = per_round.get_mut(r) {
                    s.timeouts += 1;
                }
                live.failed.fetch_add(1, Ordering::Relaxed);
            } else {
                p.retry = true;
                if let Some(s) = per_round.get_mut(r) {
                    s.retries += 1;
                }
                if let Some(c) = shard.send(i, now).await? {
                    fifo.push_back((i, c, now));
                    live.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if round >= rounds && fifo.is_empty() {
            break;
        }
        let next_due = if round < rounds {
            due(&shard, round)
        } else {
            None
        };
        let next_timeout = fifo.front().map(|f| f.2 + timeout);
        let wake = [next_due, next_timeout]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| now + Duration::from_millis(10));
        shard.wait(wake).await;
    }
    for s in &mut per_round {
        s.late += scratch.late;
        s.bad += scratch.bad;
        scratch.late = 0;
        scratch.bad = 0;
    }
    Ok((shard, Rounds(per_round)))
}
