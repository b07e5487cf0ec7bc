//! Doorbell settings. Plain data with defaults; the server's configuration loader can fill it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The heartbeat port (UDP).
pub const DEFAULT_PORT: u16 = 9930;

/// How long a printer's address counts as fresh after its latest authenticated datagram.
///
/// 60 s is deliberately shorter than common NAT UDP mapping timeouts (often about 120 s; some
/// home routers go as low as 60–90 s, RFC 4787 asks for at least 2 minutes): once the mapping
/// may have expired, a datagram to the old address could reach nobody — or whoever the NAT
/// hands the port to next — so the doorbell stops ringing well before that. Printers that want
/// to stay ringable send a keepalive more often than this.
pub const DEFAULT_FRESH_FOR: Duration = Duration::from_secs(60);

/// The receive buffer asked for the heartbeat socket (`SO_RCVBUF`; Linux caps it at
/// `net.core.rmem_max` and counts about 1 KiB per small datagram). The system default (about
/// 200 KiB on Linux) holds only a couple of hundred datagrams, too few for the bursts of a
/// large fleet; 4 MiB holds several thousand.
pub const DEFAULT_RECV_BUFFER: usize = 4 << 20;

/// How long a printer's keys and replay window stay in memory after its latest datagram.
///
/// Twice the freshness bound: a printer that heartbeats every 60 s ± 10 % (protocol §3.4) and
/// loses one datagram keeps its entry, so steady printers never go back to the database, while
/// printers that went quiet leave memory within a few minutes (memory follows the printers that
/// are online, not the registered ones). An evicted printer's next datagram reloads both.
pub const DEFAULT_EVICT_AFTER: Duration = Duration::from_secs(120);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoorbellConfig {
    /// Where to listen; default `0.0.0.0:9930`. Tests use `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// See [`DEFAULT_FRESH_FOR`]. A printer is online, and ringable, while its latest
    /// authenticated datagram is at most this old.
    pub fresh_for: Duration,
    /// Hold keepalives that find no work unanswered, so that [`crate::Doorbell::ring`] can
    /// answer them "come fetch" when work appears (default `true`).
    ///
    /// Why: the protocol crate can seal a server → printer datagram only as the answer to an
    /// accepted request (that is what keeps the down key's nonces unique), so a ring needs an
    /// accepted request that was not answered yet. Keepalives are the natural carrier: a
    /// heartbeat asks "anything for me?" and gets an immediate answer, a keepalive is a standing
    /// question answered when there is news. With `false`, keepalives are answered at once like
    /// heartbeats (the literal reading of `docs/protocol.md` §3.2) and `ring` can never send.
    pub hold_keepalives: bool,
    /// See [`DEFAULT_EVICT_AFTER`]. Entries whose window update is not committed yet are never
    /// evicted, whatever their age.
    pub evict_after: Duration,
    /// See [`DEFAULT_RECV_BUFFER`]; 0 leaves the system default.
    pub recv_buffer: usize,
}

impl Default for DoorbellConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_PORT)),
            fresh_for: DEFAULT_FRESH_FOR,
            hold_keepalives: true,
            evict_after: DEFAULT_EVICT_AFTER,
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }
}

impl DoorbellConfig {
    /// `fresh_for` in milliseconds, saturating (the clock speaks `i64` milliseconds).
    pub(crate) fn fresh_for_ms(&self) -> i64 {
        millis(self.fresh_for)
    }

    /// `evict_after` in milliseconds, saturating.
    pub(crate) fn evict_after_ms(&self) -> i64 {
        millis(self.evict_after)
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = DoorbellConfig::default();
        assert_eq!(c.bind.to_string(), "0.0.0.0:9930");
        assert_eq!(c.fresh_for_ms(), 60_000);
        assert!(c.hold_keepalives);
        assert_eq!(c.evict_after_ms(), 120_000);
        let huge = DoorbellConfig {
            fresh_for: Duration::MAX,
            ..c
        };
        assert_eq!(huge.fresh_for_ms(), i64::MAX);
    }
}
