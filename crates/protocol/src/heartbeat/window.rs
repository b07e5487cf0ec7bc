//! The server's per-printer sliding window of heartbeat counters (IPsec-style, RFC 4303 §3.4.3):
//! the highest counter accepted, and one bit for each of the 1024 counters up to it. A counter is
//! accepted once; counters more than 1023 below the highest are refused as too old.
//!
//! Slot of counter `c` = `c mod 1024`. Serialized (137 bytes):
//! `version (1) || highest (u64 BE) || 128 bytes of slots` — slot `s` is bit `s mod 8`
//! (least significant first) of byte `s / 8`.

use super::HeartbeatError;

/// Counters remembered below (and including) the highest.
pub const WINDOW_SIZE: u64 = 1024;
const WORDS: usize = (WINDOW_SIZE / 64) as usize;
/// Format version of [`ReplayWindow::to_bytes`].
pub const WINDOW_FORMAT_VERSION: u8 = 1;
/// Length of [`ReplayWindow::to_bytes`].
pub const WINDOW_BYTES_LEN: usize = 1 + 8 + (WINDOW_SIZE as usize) / 8;

/// Which counters of one heartbeat key were accepted. Counter 0 is never valid, so the empty
/// window (highest 0) is the state of a newly enrolled printer.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReplayWindow {
    highest: u64,
    slots: [u64; WORDS],
}

/// Why a persisted window could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("persisted replay window is malformed")]
pub struct WindowDecodeError;

fn slot(counter: u64) -> (usize, u64) {
    let s = counter % WINDOW_SIZE;
    // s < 1024, so s / 64 < 16.
    ((s / 64) as usize, 1u64 << (s % 64))
}

impl ReplayWindow {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest counter accepted so far (0: none).
    pub fn highest(&self) -> u64 {
        self.highest
    }

    fn seen(&self, counter: u64) -> bool {
        let (w, bit) = slot(counter);
        self.slots.get(w).is_some_and(|x| x & bit != 0)
    }

    /// Whether `counter` would be accepted, without recording it.
    pub fn check(&self, counter: u64) -> Result<(), HeartbeatError> {
        if counter == 0 {
            return Err(HeartbeatError::BadCounter);
        }
        if counter > self.highest {
            return Ok(());
        }
        if self.highest - counter >= WINDOW_SIZE {
            return Err(HeartbeatError::TooOld);
        }
        if self.seen(counter) {
            return Err(HeartbeatError::Replayed);
        }
        Ok(())
    }

    /// Records `counter` if [`check`](Self::check) accepts it. Call only after the datagram was
    /// authenticated.
    pub fn accept(&mut self, counter: u64) -> Result<(), HeartbeatError> {
        self.check(counter)?;
        if counter > self.highest {
            if counter - self.highest >= WINDOW_SIZE {
                self.slots = [0; WORDS];
            } else {
                for c in self.highest + 1..=counter {
                    let (w, bit) = slot(c);
                    if let Some(x) = self.slots.get_mut(w) {
                        *x &= !bit;
                    }
                }
            }
            self.highest = counter;
        }
        let (w, bit) = slot(counter);
        if let Some(x) = self.slots.get_mut(w) {
            *x |= bit;
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> [u8; WINDOW_BYTES_LEN] {
        let mut out = [0u8; WINDOW_BYTES_LEN];
        out[0] = WINDOW_FORMAT_VERSION;
        out[1..9].copy_from_slice(&self.highest.to_be_bytes());
        for (chunk, word) in out[9..].chunks_exact_mut(8).zip(self.slots) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Reads [`to_bytes`](Self::to_bytes). Refuses a wrong length or version, a non-empty slot
    /// map with highest 0, and a highest counter whose own slot is clear.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WindowDecodeError> {
        if bytes.len() != WINDOW_BYTES_LEN || bytes.first() != Some(&WINDOW_FORMAT_VERSION) {
            return Err(WindowDecodeError);
        }
        let highest = bytes
            .get(1..9)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .ok_or(WindowDecodeError)?;
        let mut slots = [0u64; WORDS];
        for (word, chunk) in slots
            .iter_mut()
            .zip(bytes.get(9..).unwrap_or_default().chunks_exact(8))
        {
            *word = <[u8; 8]>::try_from(chunk)
                .map(u64::from_le_bytes)
                .map_err(|_| WindowDecodeError)?;
        }
        let w = Self { highest, slots };
        let consistent = if highest == 0 {
            slots == [0; WORDS]
        } else {
            w.seen(highest)
        };
        if consistent {
            Ok(w)
        } else {
            Err(WindowDecodeError)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_counter_once_and_refuses_old_ones() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(0), Err(HeartbeatError::BadCounter));
        assert_eq!(w.accept(5), Ok(()));
        assert_eq!(w.accept(5), Err(HeartbeatError::Replayed));
        assert_eq!(w.accept(3), Ok(()));
        assert_eq!(w.accept(3), Err(HeartbeatError::Replayed));
        assert_eq!(w.accept(5 + 1023), Ok(()));
        assert_eq!(w.accept(5), Err(HeartbeatError::Replayed));
        assert_eq!(w.accept(4), Err(HeartbeatError::TooOld));
        assert_eq!(w.accept(6), Ok(()));
        assert_eq!(w.accept(10_000), Ok(()));
        assert_eq!(w.accept(10_000 - 1023), Ok(()));
        assert_eq!(w.accept(10_000 - 1024), Err(HeartbeatError::TooOld));
        assert_eq!(w.accept(u64::MAX), Ok(()));
        assert_eq!(w.accept(u64::MAX), Err(HeartbeatError::Replayed));
        assert_eq!(w.accept(u64::MAX - 1), Ok(()));
    }

    #[test]
    fn slot_reuse_after_advancing_clears_old_bits() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(1), Ok(()));
        assert_eq!(w.accept(1 + 1024), Ok(())); // same slot as 1
        assert_eq!(w.accept(2 + 1024), Ok(()));
        assert_eq!(w.accept(1 + 1024), Err(HeartbeatError::Replayed));
        assert_eq!(w.accept(1000), Ok(()));
    }

    #[test]
    fn bytes_round_trip_and_validation() {
        let mut w = ReplayWindow::new();
        assert_eq!(ReplayWindow::from_bytes(&w.to_bytes()), Ok(w.clone()));
        for c in [7, 3, 900, 64] {
            assert_eq!(w.accept(c), Ok(()));
        }
        let b = w.to_bytes();
        assert_eq!(b.len(), 137);
        assert_eq!(&b[..9], &[1, 0, 0, 0, 0, 0, 0, 0x03, 0x84]);
        assert_eq!(ReplayWindow::from_bytes(&b), Ok(w.clone()));
        assert_eq!(ReplayWindow::from_bytes(&b[..136]), Err(WindowDecodeError));
        let mut bad = b;
        bad[0] = 2;
        assert_eq!(ReplayWindow::from_bytes(&bad), Err(WindowDecodeError));
        let mut bad = b;
        bad[9 + 900 / 8] = 0; // clears the highest counter's slot
        assert_eq!(ReplayWindow::from_bytes(&bad), Err(WindowDecodeError));
        let mut bad = ReplayWindow::new().to_bytes();
        bad[20] = 1;
        assert_eq!(ReplayWindow::from_bytes(&bad), Err(WindowDecodeError));
    }
}
