//! A simulated printer's HTTPS exchanges: check-ins (a report without an answer is sent again
//! with the same `seq`) and work (fetched, carried out, acknowledged with the next fetch).

use super::agent::{now_ms, Agent};
use printfleet_protocol::messages::{
    AckStatus, ApplySettings, CheckIn, CheckInAck, Outcome, SettingOutcome, SettingResult, WorkAck,
    WorkItem, APPLY_SETTINGS, MAX_TEXT_LEN, MAX_WORK_ITEMS,
};
use std::collections::BTreeMap;

/// At most this many fetches in a row for one "come fetch" (each carries the previous acks).
const MAX_FETCH_ROUNDS: usize = 8;

impl Agent {
    /// Sends a report (a full one: everything, every setting); `None` when it got no answer.
    pub(super) async fn report(&mut self, full: bool) -> Option<CheckInAck> {
        if let Some(old) = self.outstanding.take() {
            if self.send(&old).await.is_none() {
                self.outstanding = Some(old);
                return None;
            }
        }
        let (seq, now) = (self.seq, now_ms());
        self.seq += 1;
        let report = if full {
            self.printer.full_report(seq, now)
        } else {
            self.printer.report(seq, now)
        };
        let ack = self.send(&report).await;
        if ack.is_none() {
            self.outstanding = Some(report);
        }
        ack
    }

    async fn send(&mut self, report: &CheckIn) -> Option<CheckInAck> {
        match self.client.check_in(report, now_ms()).await {
            Ok(ack) => {
                self.tally.check_in_ack(&ack);
                Some(ack)
            }
            Err(e) => {
                tracing::debug!("check-in {}: {e}", report.seq);
                self.tally.count(|t| &t.check_in_failed);
                None
            }
        }
    }

    /// Fetches work (a long-poll when `wait_ms` > 0), carries it out and fetches again with the
    /// acknowledgements until nothing is left. `false` when a fetch failed.
    pub(super) async fn fetch_work(&mut self, wait_ms: u64) -> bool {
        let mut wait = wait_ms;
        for _ in 0..MAX_FETCH_ROUNDS {
            let acks: Vec<WorkAck> = self.acks.iter().take(MAX_WORK_ITEMS).cloned().collect();
            if wait > 0 {
                self.tally.count(|t| &t.long_polls);
            }
            let work = match self.client.fetch(acks.clone(), wait, now_ms()).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::debug!("fetch: {e}");
                    self.tally.count(|t| &t.fetch_failed);
                    return false;
                }
            };
            // Answered: the server has these outcomes.
            self.acks.retain(|a| !acks.iter().any(|s| s.id == a.id));
            if work.items.is_empty() && self.acks.is_empty() {
                return true;
            }
            for item in work.items {
                if let Some(ack) = self.carry_out(item).await {
                    self.acks.push(ack);
                }
            }
            wait = 0;
        }
        true
    }

    /// Does one work item; `None` leaves it pending (its check-in got no answer: it is sent
    /// again and retried).
    async fn carry_out(&mut self, item: WorkItem) -> Option<WorkAck> {
        // Delivery is at least once: an item handled before is only acknowledged again.
        if self.acks.iter().any(|a| a.id == item.id) {
            return None;
        }
        if item.kind == APPLY_SETTINGS {
            return Some(self.apply_settings(item).await);
        }
        let (outcome, reason) = match item.kind.as_str() {
            "report_now" => {
                let ack = self.report(true).await?;
                match ack.status {
                    AckStatus::Stored | AckStatus::Duplicate => {
                        self.tally.count(|t| &t.work_done);
                        (Outcome::Done, None)
                    }
                    // The refusal's code as the reason (docs/protocol.md §7.4).
                    AckStatus::Refused => (Outcome::Failed, ack.code),
                }
            }
            _ => {
                self.tally.count(|t| &t.work_refused);
                (Outcome::Refused, Some("unknown kind".to_string()))
            }
        };
        Some(WorkAck::new(item.id, outcome, reason))
    }

    /// Applies a policy's settings, reports what changed in a check-in (best effort: a report
    /// without an answer is sent again before the next), and acknowledges with the settings not
    /// applied. Refused as a whole when its data or its sealed secrets cannot be used.
    async fn apply_settings(&mut self, item: WorkItem) -> WorkAck {
        let refuse = |reason: String| {
            let reason = reason.chars().take(MAX_TEXT_LEN).collect();
            WorkAck::new(item.id.clone(), Outcome::Refused, Some(reason))
        };
        let apply = match ApplySettings::decode(&item.data) {
            Ok(a) => a,
            Err(e) => return refuse(format!("bad data: {} at {}", e.code, e.field)),
        };
        // Opened at the time the answer arrived: the server sealed it when it sent the work.
        let secrets = match self.client.open_apply_secrets(&apply, now_ms()) {
            Ok(s) => s,
            Err(e) => return refuse(e.to_string()),
        };
        let chance = self.timing.apply_failure_chance;
        let results = self
            .printer
            .apply(&apply, secrets.as_ref(), chance, &mut self.policy_rng);
        let total = apply.settings.len() + secrets.as_ref().map_or(0, |s| s.len());
        // The printer keeps the secrets it applied; this copy goes now.
        drop(secrets);
        self.report(false).await;
        let (outcome, reason) = item_outcome(&results, total);
        if outcome == Outcome::Done {
            self.tally.count(|t| &t.work_done);
        }
        WorkAck {
            id: item.id,
            outcome,
            reason,
            results,
        }
    }
}

/// `done` when every setting was applied; otherwise `failed` if the firmware failed any (trying
/// again may help), else `refused`.
fn item_outcome(
    results: &BTreeMap<String, SettingResult>,
    total: usize,
) -> (Outcome, Option<String>) {
    if results.is_empty() {
        return (Outcome::Done, None);
    }
    let failed = results
        .values()
        .any(|r| r.outcome == SettingOutcome::Failed);
    let outcome = if failed {
        Outcome::Failed
    } else {
        Outcome::Refused
    };
    let reason = format!("{} of {total} settings not applied", results.len());
    (outcome, Some(reason))
}
