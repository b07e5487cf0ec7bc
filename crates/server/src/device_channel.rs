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
use printfleet_protocol::session::{self, SessionHeader};
use printfleet_protocol::{
    Direction, Header, KeyPair, MessageId, MessageType, OpenError, OpenLimits, PublicKey,
    ReplayCache,
};
use printfleet_storage::resolver::{self, DeviceKey};
use printfleet_storage::Store;
use tokio::sync::{Notify, OnceCell};

use crate::device_sessions::{SeqRefused, Session, Sessions};
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
            Refused::Open(OpenError::Tampered | OpenError::UnknownSession)
            | Refused::UnknownSender => StatusCode::UNAUTHORIZED,
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
    /// The request's message id (a session body's is made of its session id and seq), which
    /// answers name in `reply_to`.
    pub message_id: MessageId,
    pub plaintext: Vec<u8>,
    reply: Reply,
}

impl Opened {
    /// Whether the request came as a session body (and is answered in the session).
    pub fn in_session(&self) -> bool {
        matches!(self.reply, Reply::Session { .. })
    }
}

/// How the answer is sealed: as a sealed body (HPKE) or in the session the request came in.
enum Reply {
    Sealed,
    Session { session: Arc<Session>, seq: u64 },
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
    pub sessions: Sessions,
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
            sessions: Sessions::default(),
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
            Ok(o) if o.in_session() => {
                metrics.session_accepted(type_name(expected));
                self.saw(o.sender.device, now_ms);
            }
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
        if session::is_session_body(body) {
            return Ok(self.open_in_session(now_ms, expected, body, &limits));
        }
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
        let opens_session = opens_session(expected);
        let opened = {
            let mut replay = self.replay.lock().unwrap_or_else(PoisonError::into_inner);
            if opens_session {
                printfleet_protocol::open_opening(
                    &server.private,
                    &sender_key,
                    body,
                    &limits,
                    &mut *replay,
                )
                .map(|(h, p, keys)| (h, p, Some(keys)))
            } else {
                printfleet_protocol::open(&server.private, &sender_key, body, &limits, &mut *replay)
                    .map(|(h, p)| (h, p, None))
            }
        };
        match opened {
            Ok((header, plaintext, keys)) => {
                if let Some(keys) = keys {
                    self.sessions
                        .insert(keys, sender.clone(), sender_key.clone(), now_ms);
                }
                Ok(Ok(Opened {
                    sender,
                    sender_key,
                    message_id: header.message_id,
                    plaintext,
                    reply: Reply::Sealed,
                }))
            }
            Err(e) => Ok(Err(Refused::Open(e))),
        }
    }

    /// A session body (protocol §2.8): found by its session id, authenticated with the
    /// session's key, its seq taken once. No database work.
    fn open_in_session(
        &self,
        now_ms: i64,
        expected: MessageType,
        body: &[u8],
        limits: &OpenLimits,
    ) -> Result<Opened, Refused> {
        let header = SessionHeader::parse(body, limits.max_body_len).map_err(Refused::Open)?;
        if !opens_session(expected) {
            // Proofs (re_enrol) bind keys and must be sealed bodies.
            return Err(Refused::Open(OpenError::UnknownSuite));
        }
        if header.message_type != expected {
            return Err(Refused::WrongType);
        }
        let session = self
            .sessions
            .get(&header.session_id, now_ms)
            .ok_or(Refused::Open(OpenError::UnknownSession))?;
        let (header, plaintext) =
            session::open_in_session(&session.keys, Direction::Up, body, limits)
                .map_err(Refused::Open)?;
        self.sessions
            .accept(&header.session_id, header.seq, now_ms)
            .map_err(|r| {
                Refused::Open(match r {
                    SeqRefused::Gone => OpenError::UnknownSession,
                    SeqRefused::Replayed => OpenError::Replayed,
                })
            })?;
        Ok(Opened {
            sender: session.sender.clone(),
            sender_key: session.sender_key.clone(),
            message_id: header.message_id(),
            plaintext,
            reply: Reply::Session {
                seq: header.seq,
                session,
            },
        })
    }

    /// Seals `plaintext` as the answer to `request`, as an `application/octet-stream` body:
    /// in the request's session when it came in one, else sealed to the printer's key.
    pub async fn answer(
        &self,
        store: &Store,
        now_ms: i64,
        request: &Opened,
        kind: MessageType,
        status: StatusCode,
        plaintext: &[u8],
    ) -> Result<Response, ApiError> {
        let bytes = match &request.reply {
            Reply::Session { session, seq } => {
                let header = SessionHeader {
                    message_type: kind,
                    session_id: session.keys.id,
                    seq: *seq,
                    timestamp_ms: now_ms.max(0) as u64,
                };
                session::seal_in_session(&session.keys, Direction::Down, &header, plaintext)
                    .map_err(|e| ApiError::Internal(format!("sealing an answer: {}", e.code())))?
            }
            Reply::Sealed => {
                let to = &request.sender_key;
                let server = self.server_key(store).await?;
                let mut rng = printfleet_protocol::system_rng();
                let header = Header::new(kind, &server.public, to, now_ms.max(0) as u64, &mut rng);
                printfleet_protocol::seal(
                    to,
                    &server.private,
                    &server.public,
                    &header,
                    plaintext,
                    &mut rng,
                )
                .map_err(|e| ApiError::Internal(format!("sealing an answer: {}", e.code())))?
                .into_bytes()
            }
        };
        Ok((
            status,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
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

/// The exchanges whose sealed bodies open a session, and which may then come as session bodies.
fn opens_session(t: MessageType) -> bool {
    matches!(t, MessageType::CheckIn | MessageType::Fetch)
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
