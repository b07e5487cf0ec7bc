//! The plaintext of message type `sealed_to_device` (0x01): something only one printer can open
//! (a Wi-Fi passphrase, a one-time token…). Encoding:
//! `purpose_len (u8, 1..=64) || purpose (ASCII [a-z0-9._-]) || content (the rest)`.
//! What `content` means is defined by `purpose`; the receiver refuses purposes it does not know.

/// Longest purpose label.
pub const MAX_PURPOSE_LEN: usize = 64;

/// A payload for one device. Seal it at delivery time (the freshness window is minutes).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedToDevice {
    /// What the content is for, e.g. `wifi.psk`; ASCII lowercase letters, digits, `.`, `_`, `-`.
    pub purpose: String,
    /// Opaque bytes whose meaning `purpose` defines.
    pub content: Vec<u8>,
}

impl std::fmt::Debug for SealedToDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedToDevice")
            .field("purpose", &self.purpose)
            .field(
                "content",
                &format_args!("[redacted; {} bytes]", self.content.len()),
            )
            .finish()
    }
}

/// Why a `sealed_to_device` plaintext was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("purpose is empty, longer than 64 bytes or has characters outside [a-z0-9._-]")]
    BadPurpose,
    #[error("payload shorter than its purpose length says")]
    Truncated,
}

impl PayloadError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadPurpose => "bad_purpose",
            Self::Truncated => "truncated_payload",
        }
    }
}

fn purpose_ok(p: &[u8]) -> bool {
    (1..=MAX_PURPOSE_LEN).contains(&p.len())
        && p.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

impl SealedToDevice {
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        let purpose = self.purpose.as_bytes();
        if !purpose_ok(purpose) {
            return Err(PayloadError::BadPurpose);
        }
        let mut out = Vec::with_capacity(1 + purpose.len() + self.content.len());
        // purpose_ok bounds the length to 64, so it fits a byte.
        out.push(purpose.len() as u8);
        out.extend_from_slice(purpose);
        out.extend_from_slice(&self.content);
        Ok(out)
    }

    pub fn decode(plaintext: &[u8]) -> Result<Self, PayloadError> {
        let (&len, rest) = plaintext.split_first().ok_or(PayloadError::Truncated)?;
        let len = usize::from(len);
        let purpose = rest.get(..len).ok_or(PayloadError::Truncated)?;
        if !purpose_ok(purpose) {
            return Err(PayloadError::BadPurpose);
        }
        let content = rest.get(len..).unwrap_or_default();
        Ok(Self {
            purpose: String::from_utf8_lossy(purpose).into_owned(),
            content: content.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let p = SealedToDevice {
            purpose: "wifi.psk".into(),
            content: b"secret".to_vec(),
        };
        let b = p.encode().unwrap();
        assert_eq!(b, b"\x08wifi.psksecret");
        assert_eq!(SealedToDevice::decode(&b), Ok(p.clone()));
        assert!(!format!("{p:?}").contains("secret"));
    }

    #[test]
    fn refusals() {
        for bad in ["", "Wifi", "a b", &"x".repeat(65)] {
            let p = SealedToDevice {
                purpose: bad.into(),
                content: vec![],
            };
            assert_eq!(p.encode(), Err(PayloadError::BadPurpose), "{bad:?}");
        }
        assert_eq!(SealedToDevice::decode(b""), Err(PayloadError::Truncated));
        assert_eq!(
            SealedToDevice::decode(b"\x05abc"),
            Err(PayloadError::Truncated)
        );
        assert_eq!(
            SealedToDevice::decode(b"\x00abc"),
            Err(PayloadError::BadPurpose)
        );
        assert_eq!(
            SealedToDevice::decode(b"\x01\xff"),
            Err(PayloadError::BadPurpose)
        );
        let empty = SealedToDevice::decode(b"\x01a").unwrap();
        assert!(empty.content.is_empty());
    }
}
