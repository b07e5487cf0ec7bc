//! What the doorbell did, as plain atomic counters: refused datagrams get no answer and no log
//! line per datagram (a flood must not become a log flood), so counters by reason are how an
//! operator sees probing, replays or a broken backend. Relaxed ordering: each counter is
//! monotonic on its own and nothing is synchronised through them.

use std::sync::atomic::{AtomicU64, Ordering};

use printfleet_protocol::heartbeat::HeartbeatError;

/// Why a received datagram got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Wrong length (empty, short, oversized), unknown version, or counter 0.
    Malformed,
    /// The key id is not a live printer's (unknown, revoked, removed).
    UnknownKey,
    /// Authentication failed: forged, corrupted, or sealed with another key.
    BadAuth,
    /// The counter was accepted before, or is too far below the highest accepted one.
    Replayed,
    /// Authentic, but a payload type this server does not know (newer firmware); the counter
    /// stays recorded, as the protocol requires.
    UnknownType,
    /// A backend failed (key look-up, replay window load/decode/save). Fail closed: no answer.
    Backend,
    /// The key id was not in memory and too many look-ups were already waiting for the
    /// database (a flood of unknown key ids, or a mass reconnect): dropped without asking the
    /// database. The printer's next heartbeat is looked up again.
    Busy,
}

impl DropReason {
    /// The reason for a protocol refusal. `UnexpectedCounter` and `AnswerTooLarge` are not
    /// produced when opening requests; they are counted as malformed should that ever change.
    pub fn of(e: HeartbeatError) -> Self {
        match e {
            HeartbeatError::BadLength
            | HeartbeatError::BadVersion
            | HeartbeatError::BadCounter
            | HeartbeatError::UnexpectedCounter
            | HeartbeatError::AnswerTooLarge => Self::Malformed,
            HeartbeatError::WrongKey => Self::UnknownKey,
            HeartbeatError::TooOld | HeartbeatError::Replayed => Self::Replayed,
            HeartbeatError::Tampered => Self::BadAuth,
            HeartbeatError::UnknownType => Self::UnknownType,
        }
    }
}

/// The live counters, shared by the receive loop and every [`crate::Doorbell`] handle.
#[derive(Debug, Default)]
pub struct Counters {
    received: AtomicU64,
    answered: AtomicU64,
    held: AtomicU64,
    rung: AtomicU64,
    ring_missed: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_unknown_key: AtomicU64,
    dropped_bad_auth: AtomicU64,
    dropped_replayed: AtomicU64,
    dropped_unknown_type: AtomicU64,
    dropped_backend: AtomicU64,
    dropped_busy: AtomicU64,
    work_errors: AtomicU64,
    send_errors: AtomicU64,
    recv_errors: AtomicU64,
    key_lookups: AtomicU64,
    window_commits: AtomicU64,
    windows_saved: AtomicU64,
}

/// A copy of the counters at one moment (each read on its own, so not a consistent cut).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Datagrams read from the socket, valid or not, counted once the doorbell has decided what
    /// to do with them (a datagram waiting for its key's look-up is counted when it returns).
    pub received: u64,
    /// Answers sent to accepted requests (not counting rings), each after its window update
    /// committed.
    pub answered: u64,
    /// Keepalives accepted and held unanswered so a later ring can answer them.
    pub held: u64,
    /// Unsolicited "come fetch" sent by [`crate::Doorbell::ring`].
    pub rung: u64,
    /// Rings that sent nothing (offline, no held request, key revoked, send failed).
    pub ring_missed: u64,
    pub dropped_malformed: u64,
    pub dropped_unknown_key: u64,
    pub dropped_bad_auth: u64,
    pub dropped_replayed: u64,
    pub dropped_unknown_type: u64,
    pub dropped_backend: u64,
    pub dropped_busy: u64,
    /// Work-queue look-ups that failed (the printer was then told "nothing").
    pub work_errors: u64,
    /// Answers or rings the socket refused to send.
    pub send_errors: u64,
    /// Errors reading the socket.
    pub recv_errors: u64,
    /// Key ids looked up in the backend (cache misses, not counting unknown ids answered from
    /// the short-lived memory of unknown ids).
    pub key_lookups: u64,
    /// Group commits of replay windows (successful or not).
    pub window_commits: u64,
    /// Windows written by those commits (one per key per commit).
    pub windows_saved: u64,
}

impl CounterSnapshot {
    /// All datagrams dropped unanswered, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_malformed
            + self.dropped_unknown_key
            + self.dropped_bad_auth
            + self.dropped_replayed
            + self.dropped_unknown_type
            + self.dropped_backend
            + self.dropped_busy
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn received(&self) {
        bump(&self.received);
    }
    pub(crate) fn answered(&self) {
        bump(&self.answered);
    }
    pub(crate) fn held(&self) {
        bump(&self.held);
    }
    pub(crate) fn rung(&self) {
        bump(&self.rung);
    }
    pub(crate) fn ring_missed(&self) {
        bump(&self.ring_missed);
    }
    pub(crate) fn work_error(&self) {
        bump(&self.work_errors);
    }
    pub(crate) fn send_error(&self) {
        bump(&self.send_errors);
    }
    pub(crate) fn recv_error(&self) {
        bump(&self.recv_errors);
    }
    pub(crate) fn key_lookups(&self, n: usize) {
        self.key_lookups.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn window_commit(&self, windows: usize) {
        bump(&self.window_commits);
        self.windows_saved
            .fetch_add(windows as u64, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self, reason: DropReason) {
        bump(match reason {
            DropReason::Malformed => &self.dropped_malformed,
            DropReason::UnknownKey => &self.dropped_unknown_key,
            DropReason::BadAuth => &self.dropped_bad_auth,
            DropReason::Replayed => &self.dropped_replayed,
            DropReason::UnknownType => &self.dropped_unknown_type,
            DropReason::Backend => &self.dropped_backend,
            DropReason::Busy => &self.dropped_busy,
        });
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            received: r(&self.received),
            answered: r(&self.answered),
            held: r(&self.held),
            rung: r(&self.rung),
            ring_missed: r(&self.ring_missed),
            dropped_malformed: r(&self.dropped_malformed),
            dropped_unknown_key: r(&self.dropped_unknown_key),
            dropped_bad_auth: r(&self.dropped_bad_auth),
            dropped_replayed: r(&self.dropped_replayed),
            dropped_unknown_type: r(&self.dropped_unknown_type),
            dropped_backend: r(&self.dropped_backend),
            dropped_busy: r(&self.dropped_busy),
            work_errors: r(&self.work_errors),
            send_errors: r(&self.send_errors),
            recv_errors: r(&self.recv_errors),
            key_lookups: r(&self.key_lookups),
            window_commits: r(&self.window_commits),
            windows_saved: r(&self.windows_saved),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_refusal_maps_to_a_reason() {
        use HeartbeatError as E;
        let cases = [
            (E::BadLength, DropReason::Malformed),
            (E::BadVersion, DropReason::Malformed),
            (E::BadCounter, DropReason::Malformed),
            (E::WrongKey, DropReason::UnknownKey),
            (E::TooOld, DropReason::Replayed),
            (E::Replayed, DropReason::Replayed),
            (E::Tampered, DropReason::BadAuth),
            (E::UnknownType, DropReason::UnknownType),
        ];
        for (e, want) in cases {
            assert_eq!(DropReason::of(e), want, "{e:?}");
        }
    }

    #[test]
    fn snapshot_counts_by_reason() {
        let c = Counters::default();
        c.received();
        c.dropped(DropReason::Replayed);
        c.dropped(DropReason::Replayed);
        c.dropped(DropReason::Backend);
        let s = c.snapshot();
        assert_eq!(s.received, 1);
        assert_eq!(s.dropped_replayed, 2);
        assert_eq!(s.dropped_backend, 1);
        assert_eq!(s.dropped(), 3);
    }
}
