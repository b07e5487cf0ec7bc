//! What the simulated fleet did, counted across all printers, and the summary line.

use printfleet_protocol::messages::{AckStatus, CheckInAck};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

#[derive(Default, Debug)]
pub struct Tally {
    /// Every printer is enrolled (or refused) and running.
    pub running: AtomicBool,
    pub enrolled: AtomicU64,
    pub refused: AtomicU64,
    /// Heartbeats sent, and what came back.
    pub beats: AtomicU64,
    pub nothing: AtomicU64,
    pub come_fetch: AtomicU64,
    pub no_answer: AtomicU64,
    /// Keep-alives sent, and how many were answered "come fetch" (the doorbell rang).
    pub keepalives: AtomicU64,
    pub rung: AtomicU64,
    /// Check-in acknowledgements, and check-ins that got none (transport errors).
    pub stored: AtomicU64,
    pub duplicate: AtomicU64,
    pub check_in_refused: AtomicU64,
    pub check_in_failed: AtomicU64,
    /// Work items carried out (acknowledged done) and refused (unknown kinds).
    pub work_done: AtomicU64,
    pub work_refused: AtomicU64,
    /// Fetches sent as a long-poll (UDP blocked), and fetches that failed.
    pub long_polls: AtomicU64,
    pub fetch_failed: AtomicU64,
    /// The first refused check-in's code and field: a refusal is a simulator bug.
    first_refusal: Mutex<Option<String>>,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Tally {
    pub fn count(&self, counter: impl Fn(&Self) -> &AtomicU64) {
        add(counter(self));
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn check_in_ack(&self, ack: &CheckInAck) {
        match ack.status {
            AckStatus::Stored => add(&self.stored),
            AckStatus::Duplicate => add(&self.duplicate),
            AckStatus::Refused => {
                add(&self.check_in_refused);
                let mut first = self
                    .first_refusal
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert_with(|| {
                    format!(
                        "{} at {}",
                        ack.code.as_deref().unwrap_or("?"),
                        ack.field.as_deref().unwrap_or("?")
                    )
                });
            }
        }
    }

    /// One line for people (and the tests) to read.
    pub fn summary(&self, printers: u32) -> String {
        let g = Self::get;
        let first = self
            .first_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|f| format!(" (first: {f})"))
            .unwrap_or_default();
        format!(
            "simulated {printers} printers: {} enrolled, {} refused; \
             {} heartbeats: {} nothing, {} come fetch, {} unanswered; \
             {} keep-alives: {} rung; \
             check-ins: {} stored, {} duplicate, {} refused{first}, {} failed; \
             work items: {} done, {} refused; \
             fetches: {} long-poll, {} failed",
            g(&self.enrolled),
            g(&self.refused),
            g(&self.beats),
            g(&self.nothing),
            g(&self.come_fetch),
            g(&self.no_answer),
            g(&self.keepalives),
            g(&self.rung),
            g(&self.stored),
            g(&self.duplicate),
            g(&self.check_in_refused),
            g(&self.check_in_failed),
            g(&self.work_done),
            g(&self.work_refused),
            g(&self.long_polls),
            g(&self.fetch_failed),
        )
    }

    /// A short live status for the progress line.
    pub fn status(&self) -> String {
        let g = Self::get;
        format!(
            "{} printers, {} heartbeats, {} check-ins stored, {} work items done",
            g(&self.enrolled),
            g(&self.beats),
            g(&self.stored),
            g(&self.work_done)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_first_refusal() {
        let t = Tally::default();
        let ack = |status, code: &str| CheckInAck {
            reply_to: String::new(),
            seq: 1,
            status,
            code: Some(code.into()),
            field: Some("settings.x".into()),
            message: None,
        };
        t.check_in_ack(&ack(AckStatus::Stored, ""));
        assert!(t
            .summary(1)
            .contains("1 stored, 0 duplicate, 0 refused, 0 failed"));
        t.check_in_ack(&ack(AckStatus::Refused, "unknown_setting"));
        t.check_in_ack(&ack(AckStatus::Refused, "bad_setting_value"));
        let s = t.summary(1);
        assert!(
            s.contains("2 refused (first: unknown_setting at settings.x)"),
            "{s}"
        );
    }
}
