//! One simulated printer's life after enrolment, over real sockets: a full check-in, then
//! heartbeats at the interval with keep-alives in between (listening for the doorbell), a report
//! every few heartbeats, work fetched when the server says so; the HTTPS long-poll instead of
//! the doorbell where UDP is blocked; now and then switched off for a while.

use super::printer::SimPrinter;
use super::tally::Tally;
use printfleet_agent::{DeviceClient, Heartbeater, Reply};
use printfleet_protocol::heartbeat::RequestType;
use printfleet_protocol::messages::{CheckIn, WorkAck, MAX_WAIT_MS};
use rand::rngs::StdRng;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep, sleep_until, Instant};

/// After this many unanswered heartbeats in a row the printer assumes UDP is blocked.
const UDP_BLOCKED_AFTER: u32 = 3;
/// A switched-off printer stays off for this many heartbeat intervals.
const OFF_INTERVALS: u32 = 4;
/// Pause after a failed long-poll, so an unreachable server is not hammered.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub interval: Duration,
    /// A report every this many heartbeats.
    pub report_every: u64,
    /// Chance per heartbeat (after the first) of being switched off for a while.
    pub offline_chance: f64,
    /// Never use UDP: the long-poll only.
    pub no_udp: bool,
    /// Chance per setting of an `apply_settings` item that the firmware fails it.
    pub apply_failure_chance: f64,
    /// Chance per report interval that a setting is changed back to an insecure value.
    pub drift_chance: f64,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub struct Agent {
    pub(super) client: DeviceClient,
    pub(super) heartbeater: Option<Heartbeater>,
    pub(super) printer: SimPrinter,
    pub(super) rng: StdRng,
    /// Firmware failures and drift: seeded apart from `rng`, whose draws depend on timing.
    pub(super) policy_rng: StdRng,
    pub(super) tally: Arc<Tally>,
    pub(super) timing: Timing,
    /// The next report's `seq`.
    pub(super) seq: u64,
    /// A report sent without an answer: sent again (same `seq`) before the next one.
    pub(super) outstanding: Option<CheckIn>,
    /// Outcomes of handled work items not yet acknowledged to the server.
    pub(super) acks: Vec<WorkAck>,
    unanswered: u32,
}

impl Agent {
    pub fn new(
        client: DeviceClient,
        heartbeater: Option<Heartbeater>,
        printer: SimPrinter,
        (rng, policy_rng): (StdRng, StdRng),
        tally: Arc<Tally>,
        timing: Timing,
    ) -> Self {
        Self {
            client,
            heartbeater,
            printer,
            rng,
            policy_rng,
            tally,
            timing,
            seq: 1,
            outstanding: None,
            acks: Vec::new(),
            unanswered: 0,
        }
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        self.report(true).await;
        let interval = self.timing.interval;
        // The first heartbeat soon after enrolment, spread over a fifth of the interval.
        let mut next = Instant::now() + interval.mul_f64(self.rng.gen_range(0.0..0.2));
        let mut beats = 0u64;
        loop {
            self.wait_until(next).await;
            let restarted = beats > 0 && self.rng.gen_bool(self.timing.offline_chance);
            if restarted {
                sleep(interval * OFF_INTERVALS).await;
                self.printer.restart(now_ms());
            }
            self.heartbeat().await;
            beats += 1;
            if restarted {
                // After boot the printer says what it is again.
                self.report(true).await;
            } else if beats.is_multiple_of(self.timing.report_every.max(1)) {
                self.printer.advance(&mut self.rng, now_ms());
                if self.policy_rng.gen_bool(self.timing.drift_chance) {
                    self.printer.drift(&mut self.policy_rng);
                }
                self.report(false).await;
            }
            // Each interval drawn within ±10 %, so printers started together drift apart.
            next = Instant::now() + interval.mul_f64(self.rng.gen_range(0.9..1.1));
        }
    }

    fn doorbell(&self) -> bool {
        !self.timing.no_udp && self.heartbeater.is_some() && self.unanswered < UDP_BLOCKED_AFTER
    }

    async fn heartbeat(&mut self) {
        if self.timing.no_udp {
            return;
        }
        let Some(hb) = self.heartbeater.as_mut() else {
            return;
        };
        self.tally.count(|t| &t.beats);
        match hb.beat(RequestType::Heartbeat).await {
            Ok(Reply::Nothing) => {
                self.unanswered = 0;
                self.tally.count(|t| &t.nothing);
            }
            Ok(Reply::ComeFetch) => {
                self.unanswered = 0;
                self.tally.count(|t| &t.come_fetch);
                self.fetch_work(0).await;
            }
            Ok(Reply::NoAnswer) | Err(_) => {
                self.unanswered += 1;
                self.tally.count(|t| &t.no_answer);
            }
        }
    }

    /// Until `deadline`: keep-alives listening for the doorbell, or long-polls where UDP is
    /// blocked.
    async fn wait_until(&mut self, deadline: Instant) {
        loop {
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left < Duration::from_millis(20) {
                sleep_until(deadline).await;
                return;
            }
            if self.doorbell() {
                let keepalive = self.keepalive_interval();
                let slot_end = now + keepalive.min(left);
                let Some(hb) = self.heartbeater.as_mut() else {
                    return;
                };
                self.tally.count(|t| &t.keepalives);
                let reply = hb.keepalive_and_listen(slot_end - now).await;
                let fetched = match reply {
                    Ok(Reply::ComeFetch) => {
                        self.tally.count(|t| &t.rung);
                        self.fetch_work(0).await
                    }
                    _ => false,
                };
                if !fetched {
                    // No ring (or the fetch failed): the next keep-alive when it is due, also
                    // where a server answers keep-alives at once.
                    sleep_until(slot_end).await;
                }
            } else {
                let wait_ms = (left.as_millis() as u64).min(MAX_WAIT_MS);
                if !self.fetch_work(wait_ms).await {
                    sleep_until(deadline.min(Instant::now() + RETRY_PAUSE)).await;
                }
            }
        }
    }

    fn keepalive_interval(&self) -> Duration {
        let s = self.client.enrolment().parameters.keepalive_interval_s;
        Duration::from_secs(u64::from(s.max(1)))
    }
}
