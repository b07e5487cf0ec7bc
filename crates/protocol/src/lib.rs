//! The pure core of the Printfleet device protocol (no I/O): how printers and the server seal
//! bodies to each other and how printers send heartbeats. The format is specified in
//! `docs/protocol.md`; `docs/protocol-vectors.json` holds test vectors a firmware team can check
//! its implementation against.
//!
//! - [`sealed`]: HPKE (RFC 9180) auth mode, suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
//!   ChaCha20-Poly1305, via the `hpke` crate. `seal` / `open`, freshness and replay checks.
//! - [`heartbeat`]: the 35-byte UDP heartbeat, ChaCha20-Poly1305 under per-direction keys,
//!   with a persistable sliding replay window.
//! - [`session`]: sessions keyed by the HPKE exporter of one sealed body, so that later bodies
//!   cost no public-key operation.
//! - [`verifier`]: secret verifiers, proving which secret a printer holds without sending it.
//!
//! Time and randomness are passed in. Randomness is `rand_core` 0.10's [`CryptoRng`] (the
//! generation `hpke` uses, re-exported here); [`system_rng`] gives the operating system's.

pub mod aead;
pub mod error;
pub mod header;
pub mod heartbeat;
pub mod keys;
pub mod messages;
pub mod payload;
pub mod replay_cache;
pub mod sealed;
pub mod session;
pub mod verifier;

pub use error::{OpenError, SealError};
pub use header::{Header, MessageId, MessageType, Suite, MAX_BODY_LEN};
pub use hpke::rand_core::{self, CryptoRng};
pub use keys::{KeyId, KeyPair, PrivateKey, PublicKey};
pub use payload::{PayloadError, SealedToDevice};
pub use replay_cache::{ReplayCache, ReplayGuard};
pub use sealed::{open, open_opening, peek_header, seal, seal_opening, OpenLimits, SealedBody};
pub use session::{Direction, SessionHeader, SessionId, SessionKeys};

/// The operating system's random source (`getrandom`). Panics only if the OS cannot provide
/// randomness, which no caller could recover from anyway.
pub fn system_rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}
