//! The doorbell's durable replay windows, written as a log.
//!
//! Every accepted heartbeat must be persisted before it is answered (group commit). Upserting
//! each window into `heartbeat_windows` costs about one 4 KiB page written per window (keys are
//! random, so every window lands on its own page), and that was the doorbell's limit. Here a
//! group commit is **one row** appended to `heartbeat_window_log` holding every window of the
//! batch packed together (a few pages), and one fsync. The latest window of each key is kept
//! in memory (the *dirty* map) until a background **compaction** (after [`COMPACT_BYTES`] of
//! log or [`COMPACT_EVERY`], whichever comes first) upserts them into `heartbeat_windows` in
//! key order and deletes the log rows they cover. A printer heartbeating many times between
//! two compactions costs one upsert; with a large fleet a compaction covers much of the table,
//! and in key order it writes each page once for all the keys on it (one random page per
//! window before).
//!
//! On open, whatever the log holds (a crash left it) is folded into `heartbeat_windows` before
//! anything is loaded, so a window persisted before a crash is the one found after it.
//!
//! Invariants:
//! - a window returned by `save_many` as `Ok` is in the log or in `heartbeat_windows` (durable),
//!   and [`WindowLog::load_many`] returns the newest persisted window of a key (dirty map first);
//! - log rows are deleted only after every window they hold (or a newer one of the same key) is
//!   committed to `heartbeat_windows`;
//! - one `WindowLog` per database writes the log (one doorbell per node, as the doorbell's
//!   in-memory windows already require); log ids are assigned here, in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use printfleet_domain::DeviceId;
use sqlx::Row;

use crate::{resolver, Store, StoreError};

/// The longest the dirty windows wait to be folded into `heartbeat_windows`.
pub const COMPACT_EVERY: Duration = Duration::from_secs(30);
/// Log bytes appended that start a compaction sooner (bounds the log, the dirty map and the
/// fold after a crash).
pub const COMPACT_BYTES: usize = 64 << 20;
/// How often the background task looks whether a compaction is due.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Windows per compaction transaction: each one takes the store's write lock, so the
/// doorbell's appends go in between.
const COMPACT_CHUNK: usize = 2_000;

/// A key's newest window (`printer`, `window`).
type Entry = (DeviceId, Box<[u8]>);
/// A window read back from a log row: printer, key id, bytes.
type Logged = (DeviceId, [u8; 8], Vec<u8>);

#[derive(Default)]
struct Dirty {
    /// Windows appended to the log since the last compaction began.
    current: HashMap<[u8; 8], Entry>,
    /// Windows a running compaction is writing (still found by loads until it has committed).
    compacting: Arc<HashMap<[u8; 8], Entry>>,
    /// The newest log row whose windows are in `current` (or older maps).
    last_id: i64,
    /// Log bytes appended since the last compaction began.
    bytes: usize,
}

struct Inner {
    store: Store,
    dirty: Mutex<Dirty>,
    /// Serialises appends, so log ids are committed and merged in order (the next id is
    /// `Dirty::last_id + 1`).
    append: tokio::sync::Mutex<()>,
    /// Serialises compactions (the background one and explicit calls).
    compact: tokio::sync::Mutex<()>,
}

/// The replay-window log of one store; cheap to clone.
#[derive(Clone)]
pub struct WindowLog(Arc<Inner>);

impl WindowLog {
    /// Folds what a previous run left in the log into `heartbeat_windows`, then starts the
    /// background compaction (it ends when the last clone is dropped).
    pub async fn open(store: &Store) -> Result<Self, StoreError> {
        Self::open_with(store, Some(COMPACT_EVERY)).await
    }

    /// [`open`](Self::open) with another compaction period; `None`: only explicit
    /// [`compact`](Self::compact) calls (tests that need the log left as it is).
    pub async fn open_with(store: &Store, every: Option<Duration>) -> Result<Self, StoreError> {
        let last = fold_leftovers(store).await?;
        let log = Self(Arc::new(Inner {
            store: store.clone(),
            dirty: Mutex::new(Dirty {
                last_id: last,
                ..Dirty::default()
            }),
            append: tokio::sync::Mutex::new(()),
            compact: tokio::sync::Mutex::new(()),
        }));
        if let Some(every) = every {
            tokio::spawn(compactor(Arc::downgrade(&log.0), every));
        }
        Ok(log)
    }

    /// Persists the windows (of distinct keys) in one transaction: one log row. Durable when it
    /// returns `Ok`; on `Err` nothing of it counts.
    pub async fn save_many(
        &self,
        windows: &[(DeviceId, [u8; 8], &[u8])],
    ) -> Result<(), StoreError> {
        if windows.is_empty() {
            return Ok(());
        }
        let packed = encode(windows)?;
        let packed_len = packed.len();
        let _in_order = self.0.append.lock().await;
        let id = self
            .0
            .dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_id
            + 1;
        let store = &self.0.store;
        let mut w = store.begin_write().await?;
        sqlx::query(
            "INSERT INTO heartbeat_window_log (id, windows, written_at) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(packed)
        .bind(store.now_ms())
        .execute(&mut *w.tx)
        .await?;
        store.commit(w).await?;
        let mut dirty = self.0.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        for (device, key_id, window) in windows {
            dirty.current.insert(*key_id, (*device, Box::from(*window)));
        }
        dirty.last_id = id;
        dirty.bytes += packed_len;
        Ok(())
    }

    /// The newest persisted windows of `key_ids`; keys without one are absent.
    pub async fn load_many(
        &self,
        key_ids: &[[u8; 8]],
    ) -> Result<Vec<([u8; 8], Vec<u8>)>, StoreError> {
        let mut out = Vec::with_capacity(key_ids.len());
        let mut missing = Vec::new();
        {
            let dirty = self.0.dirty.lock().unwrap_or_else(PoisonError::into_inner);
            for k in key_ids {
                match dirty.current.get(k).or_else(|| dirty.compacting.get(k)) {
                    Some((_, window)) => out.push((*k, window.to_vec())),
                    None => missing.push(*k),
                }
            }
        }
        if !missing.is_empty() {
            out.extend(resolver::heartbeat_windows_load_many(&self.0.store, &missing).await?);
        }
        Ok(out)
    }

    /// Folds the windows appended so far into `heartbeat_windows` and deletes the log rows
    /// they came from. Returns how many windows were written. Runs every [`COMPACT_EVERY`] by
    /// itself; callable to flush (tests, shutdown).
    pub async fn compact(&self) -> Result<usize, StoreError> {
        compact(&self.0).await
    }

    /// Windows waiting in memory for the next compaction (for metrics and tests).
    pub fn dirty_len(&self) -> usize {
        let dirty = self.0.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        dirty.current.len() + dirty.compacting.len()
    }
}

async fn compactor(log: Weak<Inner>, every: Duration) {
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(LOOK_EVERY.min(every)).await;
        let Some(inner) = log.upgrade() else { return };
        let bytes = inner
            .dirty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes;
        if bytes < COMPACT_BYTES && last.elapsed() < every {
            continue;
        }
        last = tokio::time::Instant::now();
        if let Err(e) = compact(&inner).await {
            // The windows stay in the log (durable) and in memory; the next round retries.
            tracing::warn!(error = %e, "heartbeat window compaction failed; retrying later");
        }
    }
}

async fn compact(inner: &Inner) -> Result<usize, StoreError> {
    let _one_at_a_time = inner.compact.lock().await;
    let (windows, last_id) = {
        let mut dirty = inner.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        if dirty.current.is_empty() && dirty.compacting.is_empty() {
            return Ok(0);
        }
        // After a failed round `compacting` still holds its windows; newer ones win.
        let mut windows = std::mem::take(&mut dirty.current);
        if !dirty.compacting.is_empty() {
            let older = std::mem::take(&mut dirty.compacting);
            for (k, v) in Arc::unwrap_or_clone(older) {
                windows.entry(k).or_insert(v);
            }
        }
        let windows = Arc::new(windows);
        dirty.compacting = windows.clone();
        dirty.bytes = 0;
        (windows, dirty.last_id)
    };
    let mut sorted: Vec<(DeviceId, [u8; 8], &[u8])> =
        windows.iter().map(|(k, (d, w))| (*d, *k, &w[..])).collect();
    fold_into_table(&inner.store, &mut sorted, last_id).await?;
    inner
        .dirty
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .compacting = Arc::default();
    Ok(sorted.len())
}

/// Upserts windows into `heartbeat_windows` in key order (the table's order, so neighbouring
/// keys share pages), [`COMPACT_CHUNK`] per transaction, then deletes the log rows up to
/// `last_id`, which they cover.
async fn fold_into_table(
    store: &Store,
    windows: &mut [(DeviceId, [u8; 8], &[u8])],
    last_id: i64,
) -> Result<(), StoreError> {
    // Hex keys sort as their bytes do.
    windows.sort_unstable_by_key(|w| w.1);
    for chunk in windows.chunks(COMPACT_CHUNK) {
        resolver::heartbeat_windows_save_many(store, chunk).await?;
    }
    let mut w = store.begin_write().await?;
    sqlx::query("DELETE FROM heartbeat_window_log WHERE id <= $1")
        .bind(last_id)
        .execute(&mut *w.tx)
        .await?;
    store.commit(w).await
}

/// Folds every row left in the log (latest row of a key wins) into `heartbeat_windows` and
/// deletes them. Returns the highest log id seen (0 when the log was empty).
async fn fold_leftovers(store: &Store) -> Result<i64, StoreError> {
    let rows = sqlx::query("SELECT id, windows FROM heartbeat_window_log ORDER BY id")
        .fetch_all(&store.pool)
        .await?;
    let mut last = 0;
    let mut latest: HashMap<[u8; 8], (DeviceId, Box<[u8]>)> = HashMap::new();
    for r in &rows {
        last = r.try_get::<i64, _>(0)?;
        for (device, key_id, window) in decode(&r.try_get::<Vec<u8>, _>(1)?)? {
            latest.insert(key_id, (device, window.into_boxed_slice()));
        }
    }
    if rows.is_empty() {
        return Ok(0);
    }
    let mut windows: Vec<(DeviceId, [u8; 8], &[u8])> =
        latest.iter().map(|(k, (d, w))| (*d, *k, &w[..])).collect();
    fold_into_table(store, &mut windows, last).await?;
    tracing::info!(
        rows = rows.len(),
        windows = windows.len(),
        "heartbeat window log folded at start"
    );
    Ok(last)
}

/// One log row: per window, its key id (8 bytes), printer id (16), length (2, big-endian) and
/// bytes.
fn encode(windows: &[(DeviceId, [u8; 8], &[u8])]) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(windows.iter().map(|w| 26 + w.2.len()).sum());
    for (device, key_id, window) in windows {
        let len = u16::try_from(window.len()).map_err(|_| {
            StoreError::Corrupt(format!("a replay window of {} bytes", window.len()))
        })?;
        out.extend_from_slice(key_id);
        out.extend_from_slice(device.as_uuid().as_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(window);
    }
    Ok(out)
}

fn decode(mut bytes: &[u8]) -> Result<Vec<Logged>, StoreError> {
    let corrupt = || StoreError::Corrupt("heartbeat_window_log.windows: truncated entry".into());
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (head, rest) = bytes.split_at_checked(26).ok_or_else(corrupt)?;
        let (key, rest_head) = head.split_at(8);
        let (device, len) = rest_head.split_at(16);
        let key: [u8; 8] = key.try_into().map_err(|_| corrupt())?;
        let device = uuid::Uuid::from_slice(device).map_err(|_| corrupt())?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (window, rest) = rest.split_at_checked(len).ok_or_else(corrupt)?;
        out.push((DeviceId(device), key, window.to_vec()));
        bytes = rest;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_windows_round_trip_and_truncation_is_corrupt() {
        let (a, b) = (DeviceId::new_random(), DeviceId::new_random());
        let big: Vec<u8> = (0..=255).collect();
        let windows: [(DeviceId, [u8; 8], &[u8]); 3] =
            [(a, [1; 8], &[9, 9]), (b, [2; 8], &big), (b, [3; 8], &[])];
        let packed = encode(&windows).unwrap();
        let back = decode(&packed).unwrap();
        let want: Vec<Logged> = windows
            .iter()
            .map(|(d, k, w)| (*d, *k, w.to_vec()))
            .collect();
        assert_eq!(back, want);
        for cut in 1..packed.len() {
            // Every cut inside an entry is refused; a cut between entries decodes a prefix.
            match decode(&packed[..cut]) {
                Ok(prefix) => assert!(want.starts_with(&prefix), "cut {cut}"),
                Err(e) => assert!(matches!(e, StoreError::Corrupt(_)), "cut {cut}"),
            }
        }
        let too_long = vec![0u8; 70_000];
        assert!(matches!(
            encode(&[(a, [1; 8], &too_long)]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
