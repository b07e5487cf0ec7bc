//! The assessor: keeps every printer's assessment current and rings the printers that got
//! remediation work.
//!
//! Check-ins hint the printer that reported (assessed at once, in batches); policy, assignment
//! and group changes poke a sweep, which asks the store for every printer whose assessment is
//! out of date. A sweep also runs at start and every [`SWEEP_EVERY`], so nothing depends on a
//! hint surviving a restart: what is due is always read from the database. Each sweep first
//! marks the printers whose generated secrets are due for rotation.

use crate::state::AppState;
use printfleet_domain::{DeviceId, TenantId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// How often a sweep runs without being asked.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Printers per transaction.
const BATCH: usize = 250;

#[derive(Default)]
pub struct Assessor {
    hints: Mutex<BTreeSet<(TenantId, DeviceId)>>,
    sweep: std::sync::atomic::AtomicBool,
    wake: Notify,
}

impl Assessor {
    /// A printer's state changed: assess it soon.
    pub fn hint(&self, tenant: TenantId, device: DeviceId) {
        if let Ok(mut h) = self.hints.lock() {
            h.insert((tenant, device));
        }
        self.wake.notify_one();
    }

    /// Something that may concern many printers changed: look for every printer due.
    pub fn poke(&self) {
        self.sweep.store(true, std::sync::atomic::Ordering::Release);
        self.wake.notify_one();
    }

    fn take_hints(&self) -> BTreeSet<(TenantId, DeviceId)> {
        self.hints
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default()
    }
}

/// Runs until the process ends.
pub async fn run(state: AppState) {
    state.assessor.poke();
    loop {
        let timed_out = tokio::time::timeout(SWEEP_EVERY, state.assessor.wake.notified())
            .await
            .is_err();
        let sweep = state
            .assessor
            .sweep
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        let hints = state.assessor.take_hints();
        let started = std::time::Instant::now();
        if let Err(e) = round(&state, hints, sweep || timed_out).await {
            // The hints taken are gone; the sweep finds those printers again (what is due is
            // read from the database).
            tracing::warn!(error = %e, "assessment failed; sweeping again shortly");
            state.assessor.poke();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // Coalesce bursts of hints into bigger batches, and pause at least twice as long as
        // the round took: under a flood of check-ins the assessor then takes at most a third of
        // the time (and of the database's write lock), and each printer is assessed once per
        // pause however often it reported.
        tokio::time::sleep(pause_after(started.elapsed())).await;
    }
}

/// The pause after a round that took `round`.
fn pause_after(round: Duration) -> Duration {
    (round * 2).clamp(MIN_PAUSE, MAX_PAUSE)
}

const MIN_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// One round: the hinted printers, then (when `sweep`) everything due, batch by batch.
pub async fn round(
    state: &AppState,
    hints: BTreeSet<(TenantId, DeviceId)>,
    sweep: bool,
) -> Result<usize, printfleet_storage::StoreError> {
    let mut done = assess(state, hints.into_iter().collect()).await?;
    if sweep {
        // Generated per-printer secrets whose rotation time came (their schedule, or a
        // break-glass reveal): mark their printers, which the pass below then assesses — the
        // assessment replaces the value and remediation sends the new one.
        state.store.mark_secret_rotations_due().await?;
        // One pass over the printers in (tenant, printer) order: a printer that becomes due
        // again behind the cursor waits for the next round, so a round always ends.
        let mut after = None;
        loop {
            let due = state
                .store
                .assessment_due_after(after, BATCH as i64 * 4)
                .await?;
            let Some(last) = due.last() else {
                break;
            };
            after = Some(*last);
            done += assess(state, due).await?;
        }
    }
    Ok(done)
}

async fn assess(
    state: &AppState,
    printers: Vec<(TenantId, DeviceId)>,
) -> Result<usize, printfleet_storage::StoreError> {
    let mut by_tenant: BTreeMap<TenantId, Vec<DeviceId>> = BTreeMap::new();
    for (t, d) in printers {
        by_tenant.entry(t).or_default().push(d);
    }
    let mut done = 0;
    for (t, devices) in by_tenant {
        for chunk in devices.chunks(BATCH) {
            let outcome = state
                .store
                .assess_devices(&state.channel.catalogue, t, chunk)
                .await?;
            done += outcome.assessed;
            for d in outcome.work_queued {
                crate::routes::device_work::notify_work(state, d).await;
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_follows_the_round_within_bounds() {
        assert_eq!(pause_after(Duration::from_millis(1)), MIN_PAUSE);
        assert_eq!(
            pause_after(Duration::from_millis(400)),
            Duration::from_millis(800)
        );
        assert_eq!(pause_after(Duration::from_secs(60)), MAX_PAUSE);
    }
}
