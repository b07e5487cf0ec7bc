//! `printfleet rollout`: staged roll-outs of policy changes (docs/policies.md, "Staged
//! roll-out") through the API with an API token — progress per wave (with `--watch`, a progress
//! bar per wave until the roll-out ends), resume, cancel and rollback.

use crate::policy::client::{ApiArgs, ApiFailure, Client};
use anyhow::Context;
use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use printfleet_domain::policy::rollout::RolloutState;
use printfleet_wire as wire;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum Task {
    /// A roll-out's state and progress per wave (the policy's newest, or --rollout).
    Status {
        #[command(flatten)]
        target: Target,
        /// Redraw a progress bar per wave until the roll-out is no longer active.
        #[arg(long)]
        watch: bool,
        /// Seconds between redraws with --watch.
        #[arg(long, default_value_t = 2, value_name = "S")]
        interval: u64,
    },
    /// Release the next wave of a halted roll-out despite the halt.
    Resume {
        #[command(flatten)]
        target: Target,
    },
    /// Stop a roll-out: nothing more is sent for its version.
    Cancel {
        #[command(flatten)]
        target: Target,
    },
    /// Save the version before the change again as the policy's next version.
    Rollback {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(clap::Args)]
pub struct Target {
    #[command(flatten)]
    api: ApiArgs,
    /// The policy's id or name.
    #[arg(long, value_name = "ID|NAME")]
    policy: String,
    /// The roll-out's id (default: the policy's newest).
    #[arg(long, value_name = "ID")]
    rollout: Option<String>,
}

/// Exit code when the server refuses (token, permission, not found, a state conflict).
const REFUSED: u8 = 1;

pub async fn run(task: Task) -> anyhow::Result<ExitCode> {
    match run_task(task).await {
        Err(e) if e.downcast_ref::<ApiFailure>().is_some() => {
            eprintln!("printfleet: {e:#}");
            Ok(ExitCode::from(REFUSED))
        }
        other => other,
    }
}

/// The client and the roll-out's path under the tenant.
async fn locate(t: &Target) -> anyhow::Result<Option<(Client, String)>> {
    let client = Client::new(&t.api)?;
    let Some(p) = client.find(&t.policy).await? else {
        eprintln!("printfleet: no policy {:?} in this tenant", t.policy);
        return Ok(None);
    };
    let id = match &t.rollout {
        Some(r) => r.clone(),
        None => {
            let list: Vec<wire::RolloutView> = serde_json::from_value(
                client
                    .get_json(&format!("policies/{}/rollouts", p.id))
                    .await?,
            )
            .context("the list of roll-outs")?;
            let Some(newest) = list.into_iter().next() else {
                eprintln!("printfleet: policy {:?} has no roll-out", p.name);
                return Ok(None);
            };
            newest.id
        }
    };
    Ok(Some((client, format!("policies/{}/rollouts/{id}", p.id))))
}

async fn get(client: &Client, path: &str) -> anyhow::Result<wire::RolloutView> {
    serde_json::from_value(client.get_json(path).await?).context("the roll-out")
}

async fn run_task(task: Task) -> anyhow::Result<ExitCode> {
    match task {
        Task::Status {
            target,
            watch,
            interval,
        } => {
            let Some((client, path)) = locate(&target).await? else {
                return Ok(ExitCode::from(REFUSED));
            };
            let r = get(&client, &path).await?;
            if !watch {
                print!("{}", render(&r));
                return Ok(ExitCode::SUCCESS);
            }
            watch_bars(&client, &path, r, Duration::from_secs(interval.max(1))).await
        }
        Task::Resume { target } => command(target, "resume").await,
        Task::Cancel { target } => command(target, "cancel").await,
        Task::Rollback { target } => command(target, "rollback").await,
    }
}

async fn command(target: Target, verb: &str) -> anyhow::Result<ExitCode> {
    let Some((client, path)) = locate(&target).await? else {
        return Ok(ExitCode::from(REFUSED));
    };
    let r: wire::RolloutView = serde_json::from_value(
        client
            .post_json(&format!("{path}/{verb}"), &serde_json::json!({}))
            .await?,
    )
    .context("the roll-out")?;
    print!("{}", render(&r));
    if let Some(v) = r.rollback_version {
        println!(
            "rolled back: version {v} restores version {}",
            r.base_version
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn state(s: RolloutState) -> &'static str {
    s.as_str()
}

/// Printers of a wave whose work is finished (or that needed none).
fn done(w: &wire::WaveView) -> u64 {
    let t = &w.tally;
    t.succeeded + t.failed + t.not_responding + t.not_needed + t.skipped
}

fn wave_name(w: &wire::WaveView) -> String {
    match (w.wave, w.up_to_percent) {
        (0, Some(p)) => format!("canary ({p} %)"),
        (0, None) => "canary (group)".to_string(),
        (i, Some(p)) => format!("wave {i} (to {p} %)"),
        (i, None) => format!("wave {i}"),
    }
}

fn counts(w: &wire::WaveView) -> String {
    let t = &w.tally;
    if !w.released {
        return format!("{} printer(s) waiting", t.printers);
    }
    format!(
        "sent {}, succeeded {}, failed {}, not responding {}, compliant {}, not needed {}",
        t.got_work(),
        t.succeeded,
        t.failed,
        t.not_responding,
        t.compliant,
        t.not_needed
    )
}

/// The roll-out as text: its state, the halt reason, and a line per wave.
pub fn render(r: &wire::RolloutView) -> String {
    let mut out = format!(
        "roll-out {} of policy {}: {} (version {} -> {})\n",
        r.id,
        r.policy,
        state(r.state),
        r.base_version,
        r.version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into()),
    );
    if let Some(h) = &r.halt_reason {
        out.push_str(&format!(
            "  halted in wave {}: {} failed and {} not responding of {} sent (more than {} %)\n",
            h.wave, h.failed, h.not_responding, h.got_work, h.halt_when_failed_percent
        ));
        for p in &h.printers {
            out.push_str(&format!(
                "    printer {}: {}{}\n",
                p.device,
                p.outcome,
                p.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
    }
    for w in &r.waves {
        out.push_str(&format!(
            "  {:<18} {:>5}/{:<5} {}\n",
            wave_name(w),
            done(w),
            w.tally.printers,
            counts(w)
        ));
    }
    out
}

async fn watch_bars(
    client: &Client,
    path: &str,
    mut r: wire::RolloutView,
    every: Duration,
) -> anyhow::Result<ExitCode> {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:<18} [{bar:30}] {pos:>5}/{len:<5} {msg}")
        .context("progress bar template")?
        .progress_chars("=> ");
    let head = multi.add(ProgressBar::new_spinner());
    let bars: Vec<ProgressBar> = r
        .waves
        .iter()
        .map(|w| {
            let b = multi.add(ProgressBar::new(w.tally.printers));
            b.set_style(style.clone());
            b.set_prefix(wave_name(w));
            b
        })
        .collect();
    loop {
        head.set_message(format!(
            "roll-out {}: {} (version {} -> {})",
            r.id,
            state(r.state),
            r.base_version,
            r.version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "?".into())
        ));
        for (b, w) in bars.iter().zip(&r.waves) {
            b.set_length(w.tally.printers);
            b.set_position(done(w));
            b.set_message(counts(w));
        }
        if r.state != RolloutState::Active {
            break;
        }
        tokio::time::sleep(every).await;
        r = get(client, path).await?;
    }
    for b in &bars {
        b.finish();
    }
    head.finish();
    print!("{}", render(&r));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_halted_roll_out() {
        let r: wire::RolloutView = serde_json::from_value(serde_json::json!({
            "id": "r1", "policy": "00000000-0000-0000-0000-000000000001", "base_version": 1,
            "version": 2, "plan": {"canary": {"percent": 5}, "waves": [100],
                "halt_when_failed_percent": 10, "response_timeout_s": 600},
            "state": "halted", "released_wave": 0, "wave_released_at_ms": 0,
            "halt_reason": {"wave": 0, "got_work": 2, "failed": 2, "not_responding": 0,
                "halt_when_failed_percent": 10, "printers": [{"device":
                "00000000-0000-0000-0000-000000000009", "outcome": "failed", "reason": "busy"}]},
            "rollback_version": null, "created_by": "user:x", "created_at_ms": 0,
            "updated_at_ms": 0,
            "waves": [
                {"wave": 0, "up_to_percent": 5, "released": true, "printers": 2, "waiting": 0,
                 "pending": 0, "sent": 0, "succeeded": 0, "failed": 2, "not_responding": 0,
                 "not_needed": 0, "skipped": 0, "compliant": 0},
                {"wave": 1, "up_to_percent": 100, "released": false, "printers": 8, "waiting": 8,
                 "pending": 0, "sent": 0, "succeeded": 0, "failed": 0, "not_responding": 0,
                 "not_needed": 0, "skipped": 0, "compliant": 0}]
        }))
        .unwrap();
        let text = render(&r);
        assert!(text.contains("halted (version 1 -> 2)"), "{text}");
        assert!(text.contains("halted in wave 0: 2 failed and 0 not responding of 2 sent"));
        assert!(text.contains("00000000-0000-0000-0000-000000000009: failed (busy)"));
        assert!(text.contains("canary (5 %)"));
        assert!(text.contains("8 printer(s) waiting"));
    }
}
