//! The UDP heartbeat: a printer tells the server it is alive in one 35-byte datagram, the server
//! answers "nothing" or "come fetch" in one datagram no larger. Symmetric keys only (derived at
//! enrolment), so a small printer spends one ChaCha20-Poly1305 operation per heartbeat.
//! Pure codec: sockets, timers and key look-up belong to the server and the printer agent.

mod datagram;
mod keys;
mod window;

pub use datagram::{
    open_answer, open_request, peek, seal_answer, seal_request, AcceptedRequest, Answer,
    AnswerType, Clear, Request, RequestType, CLEAR_LEN, DATAGRAM_LEN, DATAGRAM_VERSION,
    PAYLOAD_LEN,
};
pub use keys::{
    derive_heartbeat_key, HeartbeatKey, HeartbeatKeyId, HeartbeatKeys, DOWN_KEY_INFO,
    HEARTBEAT_KEY_INFO, HEARTBEAT_SALT, KEY_ID_INFO, UP_KEY_INFO,
};
pub use window::{ReplayWindow, WindowDecodeError, WINDOW_BYTES_LEN, WINDOW_SIZE};

/// Why a heartbeat datagram was refused; `code()` is stable (see `docs/protocol.md`).
/// The server never answers a refused datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    #[error("datagram length is not that of its version")]
    BadLength,
    #[error("unknown datagram version")]
    BadVersion,
    #[error("counter 0 is never valid")]
    BadCounter,
    #[error("datagram names another key")]
    WrongKey,
    #[error("counter too far below the highest accepted one")]
    TooOld,
    #[error("counter already accepted")]
    Replayed,
    #[error("datagram failed authentication")]
    Tampered,
    #[error("unknown payload type")]
    UnknownType,
    #[error("answer does not carry the counter of the outstanding request")]
    UnexpectedCounter,
    #[error("answer would be larger than the request")]
    AnswerTooLarge,
}

impl HeartbeatError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadLength => "bad_length",
            Self::BadVersion => "bad_version",
            Self::BadCounter => "bad_counter",
            Self::WrongKey => "wrong_key",
            Self::TooOld => "too_old",
            Self::Replayed => "replayed",
            Self::Tampered => "tampered",
            Self::UnknownType => "unknown_type",
            Self::UnexpectedCounter => "unexpected_counter",
            Self::AnswerTooLarge => "answer_too_large",
        }
    }
}
