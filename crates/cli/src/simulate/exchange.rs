//! A simulated printer's HTTPS exchanges: check-ins (a report without an answer is sent again
//! with the same `seq`) and work (fetched, carried out, acknowledged with the next fetch).

use super::agent::{now_ms, Agent};
use printfleet_protocol::messages::{
    AckStatus, CheckIn, CheckInAck, Outcome, WorkAck, WorkItem, MAX_WORK_ITEMS,
};

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
        Some(WorkAck {
            id: item.id,
            outcome,
            reason,
        })
    }
}
