//! Heartbeat counters must never repeat, across restarts too. Firmware persists a reservation
//! (e.g. the next 1000 values in flash) before using it; this trait is that seam.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Hands out strictly increasing counters, never 0, never the same twice for one key.
///
/// An error means no counter could be handed out (e.g. the reservation could not be persisted):
/// the caller must not send anything for this attempt. A later call may succeed.
pub trait CounterSource: Send {
    fn next(&mut self) -> Result<u64, io::Error>;
}

/// In memory only: right for a simulator that re-enrols on every start (new keys, counters
/// restart at 1), wrong for a real printer.
#[derive(Debug, Default)]
pub struct MemoryCounter(u64);

impl CounterSource for MemoryCounter {
    fn next(&mut self) -> Result<u64, io::Error> {
        self.0 += 1;
        Ok(self.0)
    }
}

/// How many counters one persisted reservation covers (docs/protocol.md §3.4): a crash loses at
/// most this many, which costs nothing with 2^64 counters.
pub const RESERVATION_STEP: u64 = 1000;

/// The file's first bytes: what it is and the format version.
const MAGIC: &[u8; 8] = b"PFHBCTR1";
/// `MAGIC || reservation (u64 big-endian) || !reservation (u64 big-endian)`.
const FILE_LEN: usize = 24;

/// The counter as the protocol recommends for a printer (docs/protocol.md §3.4), with the
/// reservation in a file: at open, `counter = reservation`; before handing out a counter
/// `c ≥ reservation`, the file durably gets `reservation = c + 1000` (a temporary file next to
/// it is written and synced, renamed over it, and the directory synced), so every counter
/// handed out is below the reservation on disk and a restart — even right after a crash —
/// continues above every counter used before.
///
/// A file that cannot be read or does not hold a valid reservation is an error, never a restart
/// at 1 (that would repeat counters, and with them nonces). `next` writes the file once every
/// 1000 counters; it blocks for that write (an fsync or two).
#[derive(Debug)]
pub struct FileCounter {
    path: PathBuf,
    /// The next counter to hand out.
    next: u64,
    /// What the file holds: no counter at or above it was handed out.
    reservation: u64,
}

impl FileCounter {
    /// Starts the counters of a **new** heartbeat key (after enrolment or re-enrolment) at 1,
    /// replacing any file at `path`.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, io::Error> {
        let path = path.into();
        write_durably(&path, 1)?;
        Ok(Self {
            path,
            next: 1,
            reservation: 1,
        })
    }

    /// Continues the counters kept in `path` (after a restart). A missing, unreadable or
    /// corrupt file is an error.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, io::Error> {
        let path = path.into();
        let reservation = read_reservation(&path)?;
        Ok(Self {
            path,
            next: reservation,
            reservation,
        })
    }

    /// The file this counter keeps its reservation in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl CounterSource for FileCounter {
    fn next(&mut self) -> Result<u64, io::Error> {
        let c = self.next;
        let after = c.checked_add(1).ok_or_else(exhausted)?;
        if c >= self.reservation {
            let reservation = c.checked_add(RESERVATION_STEP).ok_or_else(exhausted)?;
            // Not handed out (and nothing changes here) unless the reservation is on disk.
            write_durably(&self.path, reservation)?;
            self.reservation = reservation;
        }
        self.next = after;
        Ok(c)
    }
}

fn exhausted() -> io::Error {
    io::Error::other("heartbeat counters exhausted: the printer needs a new heartbeat key")
}

fn corrupt(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("heartbeat counter file {}: {why}", path.display()),
    )
}

fn encode(reservation: u64) -> [u8; FILE_LEN] {
    let mut out = [0u8; FILE_LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&reservation.to_be_bytes());
    out[16..].copy_from_slice(&(!reservation).to_be_bytes());
    out
}

fn read_reservation(path: &Path) -> Result<u64, io::Error> {
    let bytes = std::fs::read(path)?;
    let bytes: [u8; FILE_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| corrupt(path, &format!("{} bytes, not {FILE_LEN}", bytes.len())))?;
    if &bytes[..8] != MAGIC {
        return Err(corrupt(
            path,
            "not a counter file (or another format version)",
        ));
    }
    let mut value = [0u8; 8];
    let mut check = [0u8; 8];
    value.copy_from_slice(&bytes[8..16]);
    check.copy_from_slice(&bytes[16..]);
    let reservation = u64::from_be_bytes(value);
    if !reservation != u64::from_be_bytes(check) {
        return Err(corrupt(path, "the reservation does not match its check"));
    }
    if reservation == 0 {
        return Err(corrupt(path, "reservation 0"));
    }
    Ok(reservation)
}

/// Writes `path.tmp`, syncs it, renames it over `path` and syncs the directory: a crash leaves
/// the old or the new reservation, never a torn one, and once this returns the new one is on
/// disk.
fn write_durably(path: &Path, reservation: u64) -> Result<(), io::Error> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&encode(reservation))?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> Result<(), io::Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened (and need no sync for a rename to be durable) elsewhere.
#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> Result<(), io::Error> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn counters_start_at_one_and_increase() {
        let mut c = MemoryCounter::default();
        assert_eq!(
            (c.next().unwrap(), c.next().unwrap(), c.next().unwrap()),
            (1, 2, 3)
        );
    }

    /// A fresh directory under the system's temporary directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let dir = std::env::temp_dir().join(format!(
                "pf-counter-{}-{nanos}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join("heartbeat.counter")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Takes `n` counters, checking that each is above the previous one and below the
    /// reservation on disk at the moment it is handed out.
    fn take(c: &mut FileCounter, n: usize, last: &mut u64) {
        for _ in 0..n {
            let v = c.next().unwrap();
            assert!(v > *last, "{v} after {last}");
            let on_disk = read_reservation(c.path()).unwrap();
            assert!(
                v < on_disk,
                "{v} handed out with reservation {on_disk} on disk"
            );
            *last = v;
        }
    }

    #[test]
    fn a_new_key_starts_at_one_and_the_file_stays_ahead() {
        let dir = TempDir::new();
        let mut c = FileCounter::create(dir.file()).unwrap();
        assert_eq!(read_reservation(&dir.file()).unwrap(), 1);
        let mut last = 0;
        take(&mut c, 1, &mut last);
        assert_eq!(last, 1);
        assert_eq!(read_reservation(&dir.file()).unwrap(), 1 + RESERVATION_STEP);
        // Crossing several reservations, one write each.
        take(&mut c, 2500, &mut last);
        assert_eq!(last, 2501);
        // Written when 1001 and 2001 were handed out.
        assert_eq!(
            read_reservation(&dir.file()).unwrap(),
            2001 + RESERVATION_STEP
        );
        assert!(!dir.0.join("heartbeat.counter.tmp").exists());
    }

    #[test]
    fn counters_strictly_increase_across_restarts() {
        let dir = TempDir::new();
        let mut last = 0;
        let mut c = FileCounter::create(dir.file()).unwrap();
        // Restarts after various numbers of counters: none, some, exactly a reservation's worth,
        // across a reservation.
        for n in [0, 3, 0, 999, 1000, 1, 1500, 7] {
            take(&mut c, n, &mut last);
            drop(c);
            c = FileCounter::open(dir.file()).unwrap();
        }
        take(&mut c, 10, &mut last);
    }

    #[test]
    fn a_crash_right_after_a_reservation_write_repeats_nothing() {
        let dir = TempDir::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut c = FileCounter::create(dir.file()).unwrap();
        for round in 0..5 {
            // The first counter after a (re)start writes a reservation; the process "dies" at
            // once (dropped without anything else: there is no shutdown step to skip).
            let v = c.next().unwrap();
            assert!(seen.insert(v), "round {round}: {v} repeated");
            assert!(
                seen.iter().all(|&s| s <= v),
                "round {round}: {v} not the highest"
            );
            drop(c);
            c = FileCounter::open(dir.file()).unwrap();
        }
        // Dying with a stray temporary file (the crash hit between writing and renaming it)
        // changes nothing: the old reservation is still the file's.
        let stray = dir.0.join("heartbeat.counter.tmp");
        std::fs::write(&stray, b"half a wri").unwrap();
        drop(c);
        let mut c = FileCounter::open(dir.file()).unwrap();
        let v = c.next().unwrap();
        assert!(seen.iter().all(|&s| s < v), "{v} after {seen:?}");
        assert!(!stray.exists(), "the next reservation write replaced it");
    }

    #[test]
    fn a_failed_reservation_write_hands_out_nothing() {
        let dir = TempDir::new();
        let mut c = FileCounter::create(dir.file()).unwrap();
        // The temporary file's place is taken by a directory: the write fails.
        let tmp = dir.0.join("heartbeat.counter.tmp");
        std::fs::create_dir(&tmp).unwrap();
        assert!(c.next().is_err());
        assert!(c.next().is_err());
        assert_eq!(read_reservation(&dir.file()).unwrap(), 1);
        // A restart now starts where the file says: nothing was handed out.
        std::fs::remove_dir(&tmp).unwrap();
        assert_eq!(c.next().unwrap(), 1);
        assert_eq!(c.next().unwrap(), 2);
        let mut again = FileCounter::open(dir.file()).unwrap();
        assert_eq!(again.next().unwrap(), 1 + RESERVATION_STEP);
    }

    #[test]
    fn a_corrupt_or_missing_file_is_an_error_not_a_reset() {
        let dir = TempDir::new();
        let mut c = FileCounter::create(dir.file()).unwrap();
        c.next().unwrap();
        let good = std::fs::read(dir.file()).unwrap();
        let mut flipped = good.clone();
        flipped[15] ^= 1;
        let mut other_magic = good.clone();
        other_magic[7] = b'2';
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("truncated", good[..20].to_vec()),
            ("longer", [good.as_slice(), &b"x"[..]].concat()),
            ("flipped bit", flipped),
            ("other format", other_magic),
            ("zero", encode(0).to_vec()),
            ("text", b"1001\n".to_vec()),
        ];
        for (what, bytes) in cases {
            std::fs::write(dir.file(), &bytes).unwrap();
            let e = FileCounter::open(dir.file()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{what}: {e}");
        }
        std::fs::remove_file(dir.file()).unwrap();
        let e = FileCounter::open(dir.file()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    }

    #[test]
    fn counters_run_out_with_an_error_not_a_wrap() {
        let dir = TempDir::new();
        std::fs::write(dir.file(), encode(u64::MAX - RESERVATION_STEP)).unwrap();
        let mut c = FileCounter::open(dir.file()).unwrap();
        assert_eq!(c.next().unwrap(), u64::MAX - RESERVATION_STEP);
        for _ in 1..RESERVATION_STEP {
            c.next().unwrap();
        }
        // u64::MAX itself is never handed out: nothing could be reserved above it.
        assert!(c.next().is_err());
        assert!(FileCounter::open(dir.file()).unwrap().next().is_err());
    }
}
