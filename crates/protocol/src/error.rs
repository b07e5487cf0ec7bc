//! Errors of sealing and opening. Each has a stable snake_case code (`code()`), listed in
//! `docs/protocol.md`; codes are never renamed or reused, new ones may be added.

/// Why a sealed body was refused. Checked in the order of the variants (see
/// `docs/protocol.md`, "Opening a sealed body").
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("sealed body larger than the limit")]
    Oversized,
    #[error("sealed body shorter than its format requires")]
    Truncated,
    #[error("not a Printfleet sealed body")]
    BadMagic,
    #[error("unknown sealed body version")]
    BadVersion,
    #[error("unknown cipher suite")]
    UnknownSuite,
    #[error("unknown message type")]
    UnknownType,
    #[error("sealed body is for another recipient key")]
    WrongRecipient,
    #[error("sealed body names another sender key")]
    WrongSender,
    #[error("sealed body timestamp outside the freshness window")]
    Stale,
    #[error("sealed body failed authentication")]
    Tampered,
    #[error("sealed body already received")]
    Replayed,
    /// A session body (suite `0x02`) naming a session the receiver does not hold (never opened,
    /// expired, forgotten at a restart): the printer opens a new one with a sealed body.
    #[error("session unknown to the receiver")]
    UnknownSession,
}

impl OpenError {
    /// The stable wire/log code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::Truncated => "truncated",
            Self::BadMagic => "bad_magic",
            Self::BadVersion => "bad_version",
            Self::UnknownSuite => "unknown_suite",
            Self::UnknownType => "unknown_type",
            Self::WrongRecipient => "wrong_recipient",
            Self::WrongSender => "wrong_sender",
            Self::Stale => "stale",
            Self::Tampered => "tampered",
            Self::Replayed => "replayed",
            Self::UnknownSession => "unknown_session",
        }
    }

    pub const ALL: [OpenError; 12] = [
        Self::Oversized,
        Self::Truncated,
        Self::BadMagic,
        Self::BadVersion,
        Self::UnknownSuite,
        Self::UnknownType,
        Self::WrongRecipient,
        Self::WrongSender,
        Self::Stale,
        Self::Tampered,
        Self::Replayed,
        Self::UnknownSession,
    ];
}

/// Why a body could not be sealed (all are caller mistakes, except `Hpke`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("plaintext larger than the sealed body limit allows")]
    TooLarge,
    #[error("header sender key id does not match the sender key")]
    SenderKeyIdMismatch,
    #[error("header recipient key id does not match the recipient key")]
    RecipientKeyIdMismatch,
    #[error("sender private and public keys do not belong together")]
    SenderKeyPairMismatch,
    #[error("HPKE encapsulation or encryption failed (low-order recipient key?)")]
    Hpke,
    #[error("header names another session than the keys'")]
    SessionMismatch,
}

impl SealError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::SenderKeyIdMismatch => "sender_key_id_mismatch",
            Self::RecipientKeyIdMismatch => "recipient_key_id_mismatch",
            Self::SenderKeyPairMismatch => "sender_key_pair_mismatch",
            Self::Hpke => "hpke",
            Self::SessionMismatch => "session_mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_distinct_snake_case() {
        let codes: HashSet<_> = OpenError::ALL.iter().map(OpenError::code).collect();
        assert_eq!(codes.len(), OpenError::ALL.len());
        assert!(codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }
}
