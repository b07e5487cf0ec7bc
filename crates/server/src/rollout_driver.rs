//! Drives staged roll-outs (`storage::rollouts`): every [`EVERY`] each active roll-out's
//! released wave is looked at — printers past the response timeout count as not responding,
//! and a finished wave either releases the next (the assessor is poked to send to it),
//! completes the roll-out, or halts it. What is due is read from the database, so a restart
//! loses nothing.

use crate::state::AppState;
use printfleet_storage::rollouts::Driven;
use std::time::Duration;

/// How often active roll-outs are looked at (one indexed query when there are none).
pub const EVERY: Duration = Duration::from_secs(1);

/// Runs the assessor and the roll-out driver together until the process ends (one task, so
/// stopping the server stops both).
pub async fn with_assessor(state: AppState) {
    tokio::join!(crate::assessor::run(state.clone()), run(state));
}

pub async fn run(state: AppState) {
    loop {
        if let Err(e) = tick(&state).await {
            tracing::warn!(error = %e, "roll-out driver failed; trying again shortly");
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// One look at every active roll-out. Returns how many changed state or released a wave.
pub async fn tick(state: &AppState) -> Result<usize, printfleet_storage::StoreError> {
    let mut moved = 0;
    for (t, id) in state.store.rollouts_to_drive().await? {
        match state.store.rollout_drive(t, &id).await? {
            Driven::Running => {}
            Driven::Released(wave) => {
                tracing::info!(tenant = %t, rollout = %id, wave, "roll-out: wave released");
                state.assessor.poke();
                moved += 1;
            }
            Driven::Halted => {
                tracing::warn!(tenant = %t, rollout = %id, "roll-out halted");
                moved += 1;
            }
            Driven::Completed => {
                tracing::info!(tenant = %t, rollout = %id, "roll-out completed");
                moved += 1;
            }
        }
    }
    Ok(moved)
}
