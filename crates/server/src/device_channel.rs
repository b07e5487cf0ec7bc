//! The server's end of the sealed device channel (`docs/protocol.md` §7): opening printers'
//! bodies (find the sender by key id, refuse what is stale, replayed, tampered…), sealing the
//! answers, and the long-poll waiters. Refusals are logged by code only and counted in
//! `/metrics`; bodies are never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use printfleet_domain::catalogue::Catalogue;
use printfleet_domain::DeviceId;
use printfleet_protocol::sealed::DEFAULT_MAX_SKEW_MS;
use printfleet_protocol::{
    Header, KeyPair, MessageType, OpenError, OpenLimits, PublicKey, ReplayCache,
};
use printfleet_storage::resolver::{self, DeviceKey};
use printfleet_storage::Store;
use tokio::sync::{Notify, OnceCell};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Why a body was not accepted, in the clear (it could not be opened, or was not acceptable
/// before opening). Codes are those of `docs/protocol.md` §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Open(OpenError),
    WrongType,
    UnknownSender,
    KeyRevoked,
}

impl Refused {
    pub fn code(self) -> &'static str {
        match self {
            Refused::Open(e) => e.code(),
            Refused::WrongType => "wrong_type",
            Refused::UnknownSender => "unknown_sender",
            Refused::KeyRevoked => "key_revoked",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Refused::Open(OpenError::Oversized) => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Open(OpenError::Tampered) | Refused::UnknownSender => StatusCode::UNAUTHORIZED,
            Refused::Open(OpenError::Replayed) => StatusCode::CONFLICT,
            Refused::KeyRevoked => StatusCode::FORBIDDEN,
            Refused::Open(_) | Refused::WrongType => StatusCode::BAD_REQUEST,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Refused::Open(_) => "the sealed body was refused",
            Refused::WrongType => "this endpoint does not take that message type",
            Refused::UnknownSender => "the sender key is not an enrolled printer's",
            Refused::KeyRevoked => {
                "this printer's key was revoked; re-enrol with an admin's approval"
            }
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code(), "message": self.message() });
        (self.status(), axum::Json(body)).into_response()
    }
}

/// An opened body: who sent it and what it says.
pub struct Opened {
    pub sender: DeviceKey,
    pub sender_key: PublicKey,
    pub header: Header,
    pub plaintext: Vec<u8>,
}

pub struct DeviceChannel {
    server_key: OnceCell<KeyPair>,
    /// In memory and empty after a restart: every printer → server type is idempotent
    /// (protocol §7), so a replay after a restart changes nothing.
    replay: Mutex<ReplayCache>,
    pub catalogue: Arc<Catalogue>,
    waiters: Mutex<HashMap<DeviceId, Arc<Notify>>>,
    /// When each printer's latest body was opened: printers that cannot use UDP are online
    /// through their long-polls. Pruned of entries older than [`ONLINE_FOR_MS`].
    seen: Mutex<HashMap<DeviceId, i64>>,
}

/// A printer is online while it was heard from within this bound (its keep-alives every 25 s or
/// its long-polls of up to 25 s keep it fresh).
pub const ONLINE_FOR_MS: i64 = 60_000;

impl DeviceChannel {
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        Self {
            server_key: OnceCell::new(),
            replay: Mutex::new(ReplayCache::new(
                printfleet_protocol::replay_cache::DEFAULT_REPLAY_CAPACITY,
            )),
            catalogue,
            waiters: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub async fn server_key(&self, store: &Store) -> Result<&KeyPair, ApiError> {
        self.server_key
            .get_or_try_init(|| async { store.server_device_keypair().await })
            .await
            .map_err(ApiError::from)
    }

    /// Opens a printer's body of type `expected` (checks in the order of protocol §2.4, the
    /// sender found by its key id), counting the outcome.
    pub async fn open(
        &self,
        store: &Store,
        metrics: &Metrics,
        now_ms: i64,
        expected: MessageType,
        body: &[u8],
    ) -> Result<Result<Opened, Refused>, ApiError> {
        let r = self.open_inner(store, now_ms, expected, body).await?;
        match &r {
            Ok(o) => {
                metrics.sealed_accepted(type_name(expected));
                self.saw(o.sender.device, now_ms);
            }
            Err(refused) => {
                metrics.sealed_refused(refused.code());
                tracing::info!(code = refused.code(), "device body refused");
            }
        }
        Ok(r)
    }

    async fn open_inner(
        &self,
        store: &Store,
        now_ms: i64,
        expected: MessageType,
        body: &[u8],
    ) -> Result<Result<Opened, Refused>, ApiError> {
        let limits = OpenLimits {
            now_ms: now_ms.max(0) as u64,
            max_skew_ms: DEFAULT_MAX_SKEW_MS,
            max_body_len: printfleet_protocol::MAX_BODY_LEN,
        };
        let header = match printfleet_protocol::peek_header(body, &limits) {
            Ok(h) => h,
            Err(e) => return Ok(Err(Refused::Open(e))),
        };
        if header.message_type != expected {
            return Ok(Err(Refused::WrongType));
        }
        let Some(sender) = resolver::device_by_kem_key(store, &header.sender_key_id.0).await?
        else {
            return Ok(Err(Refused::UnknownSender));
        };
        if sender.revoked {
            return Ok(Err(Refused::KeyRevoked));
        }
        let Some(sender_key) = PublicKey::from_bytes(&sender.public_key) else {
            return Err(ApiError::Internal(
                "stored printer key does not parse".into(),
            ));
        };
        let server = self.server_key(store).await?;
        let mut replay = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
        match printfleet_protocol::open(&server.private, &sender_key, body, &limits, &mut *replay) {
            Ok((header, plaintext)) => Ok(Ok(Opened {
                sender,
                sender_key,
                header,
                plaintext,
            })),
            Err(e) => Ok(Err(Refused::Open(e))),
        }
    }

    /// Seals `plaintext` to the printer as an `application/octet-stream` answer.
    pub async fn answer(
        &self,
        store: &Store,
        now_ms: i64,
        to: &PublicKey,
        kind: MessageType,
        status: StatusCode,
        plaintext: &[u8],
    ) -> Result<Response, ApiError> {
        let server = self.server_key(store).await?;
        let mut rng = printfleet_protocol::system_rng();
        let header = Header::new(kind, &server.public, to, now_ms.max(0) as u64, &mut rng);
        let sealed = printfleet_protocol::seal(
            to,
            &server.private,
            &server.public,
            &header,
            plaintext,
            &mut rng,
        )
        .map_err(|e| ApiError::Internal(format!("sealing an answer: {}", e.code())))?;
        Ok((
            status,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            sealed.into_bytes(),
        )
            .into_response())
    }

    fn saw(&self, device: DeviceId, now_ms: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // Prune when the map doubles, so memory follows the printers recently heard from.
        if seen.len() >= 1024 && seen.len().is_power_of_two() {
            seen.retain(|_, t| now_ms.saturating_sub(*t) <= ONLINE_FOR_MS);
        }
        seen.insert(device, now_ms);
    }

    /// When the printer's latest sealed body arrived, if within [`ONLINE_FOR_MS`].
    pub fn last_seen(&self, device: DeviceId, now_ms: i64) -> Option<i64> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(&device)
            .copied()
            .filter(|t| now_ms.saturating_sub(*t) <= ONLINE_FOR_MS)
    }

    /// A waiter for a long-polling printer; dropped when the poll ends, so an idle printer
    /// costs nothing here.
    pub fn waiter(&self, device: DeviceId) -> Arc<Notify> {
        let mut w = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        w.entry(device).or_default().clone()
    }

    pub fn forget_waiter(&self, device: DeviceId, waiter: &Arc<Notify>) {
        let mut w = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the last poller removes the entry (another may share it).
        if w.get(&device).is_some_and(|n| Arc::ptr_eq(n, waiter)) && Arc::strong_count(waiter) <= 2
        {
            w.remove(&device);
        }
    }

    /// Wakes a printer's long-poll; whether one was waiting.
    pub fn wake(&self, device: DeviceId) -> bool {
        let w = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        match w.get(&device) {
            Some(n) => {
                n.notify_waiters();
                true
            }
            None => false,
        }
    }
}

fn type_name(t: MessageType) -> &'static str {
    match t {
        MessageType::SealedToDevice => "sealed_to_device",
        MessageType::CheckIn => "check_in",
        MessageType::CheckInAck => "check_in_ack",
        MessageType::Fetch => "fetch",
        MessageType::Work => "work",
        MessageType::ReEnrol => "re_enrol",
    }
}
