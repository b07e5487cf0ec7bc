//! Staged roll-out of a policy change (no I/O): the plan an admin gives — a canary (a group or
//! a share of the fleet) first, then the rest in waves — which wave each printer is in, when a
//! wave is finished, the rule that halts a roll-out, and the states a roll-out goes through.
//!
//! Waves are numbered from 0: wave 0 is the canary, wave `i` (1-based) the `i`-th entry of
//! `waves`. Percentages are cumulative shares of the fleet the policy reaches, so
//! `{"canary": {"percent": 5}, "waves": [25, 100]}` sends to 5 %, then up to 25 %, then to
//! everyone. Printers are ranked by a stable hash of their id, so a printer's wave does not
//! depend on the order the database returns them in, and the same fleet always splits the same
//! way.

use crate::{DeviceId, GroupId, ValidationError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The canary: the wave that gets the change first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Canary {
    /// The members of this device group (those the policy reaches).
    Group(GroupId),
    /// This share (1–100) of the reached fleet, by the stable hash of the printer id.
    Percent(u8),
}

/// An admin's roll-out plan for one policy change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutPlan {
    pub canary: Canary,
    /// Cumulative shares of the reached fleet after the canary, rising, the last 100.
    pub waves: Vec<u8>,
    /// A wave halts the roll-out when more than this share (0–100) of its printers that got
    /// work failed or did not respond.
    pub halt_when_failed_percent: u8,
    /// How long a printer that got work may take to acknowledge it (10 s – 7 days).
    #[serde(default = "default_timeout")]
    pub response_timeout_s: u64,
}

fn default_timeout() -> u64 {
    600
}

/// At most this many waves after the canary.
pub const MAX_WAVES: usize = 20;
pub const MIN_TIMEOUT_S: u64 = 1;
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;

impl RolloutPlan {
    /// Checks the plan; the error names the field.
    pub fn check(&self) -> Result<(), ValidationError> {
        if let Canary::Percent(p) = self.canary {
            if p == 0 || p > 100 {
                return Err(ValidationError::new(
                    "plan.canary.percent",
                    "must be from 1 to 100",
                ));
            }
        }
        if self.waves.is_empty() || self.waves.len() > MAX_WAVES {
            return Err(ValidationError::new(
                "plan.waves",
                format!("must list 1 to {MAX_WAVES} cumulative percentages"),
            ));
        }
        let mut last = match self.canary {
            Canary::Percent(p) => p,
            Canary::Group(_) => 0,
        };
        for w in &self.waves {
            if *w <= last {
                return Err(ValidationError::new(
                    "plan.waves",
                    "percentages must rise (and exceed the canary's)",
                ));
            }
            last = *w;
        }
        if last != 100 {
            return Err(ValidationError::new(
                "plan.waves",
                "the last wave must be 100",
            ));
        }
        if self.halt_when_failed_percent > 100 {
            return Err(ValidationError::new(
                "plan.halt_when_failed_percent",
                "must be from 0 to 100",
            ));
        }
        if !(MIN_TIMEOUT_S..=MAX_TIMEOUT_S).contains(&self.response_timeout_s) {
            return Err(ValidationError::new(
                "plan.response_timeout_s",
                format!("must be from {MIN_TIMEOUT_S} to {MAX_TIMEOUT_S} seconds"),
            ));
        }
        Ok(())
    }

    /// The index of the last wave (the canary is 0).
    pub fn last_wave(&self) -> usize {
        self.waves.len()
    }

    /// Which wave each printer of the reached fleet is in. `in_canary_group` says whether a
    /// printer is a member of the canary group (ignored for a percentage canary). The rest are
    /// ranked by [`stable_hash`] (ties by id) and cut at the cumulative percentages, rounding
    /// up, so a wave of a small fleet is never empty while printers are left.
    pub fn assign(&self, fleet: &[(DeviceId, bool)]) -> BTreeMap<DeviceId, usize> {
        let mut out = BTreeMap::new();
        let mut rest: Vec<DeviceId> = Vec::new();
        for (d, in_group) in fleet {
            match self.canary {
                Canary::Group(_) if *in_group => {
                    out.insert(*d, 0);
                }
                _ => rest.push(*d),
            }
        }
        rest.sort_by_key(|d| (stable_hash(*d), *d));
        rest.dedup();
        let n = rest.len();
        let mut cuts: Vec<(usize, u8)> = Vec::new();
        if let Canary::Percent(p) = self.canary {
            cuts.push((0, p));
        }
        for (i, w) in self.waves.iter().enumerate() {
            cuts.push((i + 1, *w));
        }
        let mut start = 0;
        for (wave, pct) in cuts {
            let end = (n * usize::from(pct)).div_ceil(100).min(n);
            for d in rest.iter().take(end).skip(start) {
                out.insert(*d, wave);
            }
            start = start.max(end);
        }
        out
    }
}

/// FNV-1a (64-bit) over the printer id's bytes: stable across versions and platforms.
pub fn stable_hash(d: DeviceId) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in d.as_uuid().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Where a roll-out is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Waves are being released.
    Active,
    /// A wave failed: nothing more is sent for the change until an admin resumes.
    Halted,
    /// Every wave was released and finished.
    Completed,
    /// Stopped by an admin: nothing more is sent for the change.
    Cancelled,
    /// An admin saved the version before the change again.
    RolledBack,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Active => "active",
            RolloutState::Halted => "halted",
            RolloutState::Completed => "completed",
            RolloutState::Cancelled => "cancelled",
            RolloutState::RolledBack => "rolled_back",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => RolloutState::Active,
            "halted" => RolloutState::Halted,
            "completed" => RolloutState::Completed,
            "cancelled" => RolloutState::Cancelled,
            "rolled_back" => RolloutState::RolledBack,
            _ => return None,
        })
    }

    /// Whether the roll-out still decides who gets the change (and holds back the rest).
    pub fn gates(self) -> bool {
        matches!(
            self,
            RolloutState::Active | RolloutState::Halted | RolloutState::Cancelled
        )
    }

    /// Whether nothing at all is sent for the change.
    pub fn stops_sending(self) -> bool {
        matches!(self, RolloutState::Halted | RolloutState::Cancelled)
    }
}

/// An admin's command on a roll-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Resume,
    Rollback,
    Cancel,
}

/// Why a command is refused (a conflict with the roll-out's state).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {state} roll-out cannot be {verb}")]
pub struct CommandRefused {
    pub state: &'static str,
    pub verb: &'static str,
}

/// The state after `cmd`, or why it is refused. `resume` continues a halted roll-out with the
/// next wave; `cancel` ends an active or halted one; `rollback` also undoes a completed one.
pub fn command(state: RolloutState, cmd: Command) -> Result<RolloutState, CommandRefused> {
    let refused = |verb| CommandRefused {
        state: state.as_str(),
        verb,
    };
    match (state, cmd) {
        (RolloutState::Halted, Command::Resume) => Ok(RolloutState::Active),
        (_, Command::Resume) => Err(refused("resumed")),
        (
            RolloutState::Active | RolloutState::Halted | RolloutState::Completed,
            Command::Rollback,
        ) => Ok(RolloutState::RolledBack),
        (_, Command::Rollback) => Err(refused("rolled back")),
        (RolloutState::Active | RolloutState::Halted, Command::Cancel) => {
            Ok(RolloutState::Cancelled)
        }
        (_, Command::Cancel) => Err(refused("cancelled")),
    }
}

/// One wave's printers by where their work stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaveTally {
    /// Printers in the wave.
    pub printers: u64,
    /// Not yet released.
    pub waiting: u64,
    /// Released, not assessed since.
    pub pending: u64,
    /// Got work, no answer yet (within the timeout).
    pub sent: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub not_responding: u64,
    /// Released, nothing to send for the change.
    pub not_needed: u64,
    /// Released but not assessed within the timeout (for example still backing off an earlier
    /// failure): not counted by the halt rule.
    pub skipped: u64,
    /// Assessed compliant with the change since it was released.
    pub compliant: u64,
}

impl WaveTally {
    /// Printers that got work for the change.
    pub fn got_work(&self) -> u64 {
        self.sent + self.succeeded + self.failed + self.not_responding
    }
}

/// What a released wave's tally means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaveVerdict {
    /// Printers still to be assessed or to answer.
    Running,
    /// Finished within the halt rule: release the next wave (or complete).
    Passed,
    /// Finished with too many failures: halt.
    Halt(HaltReason),
}

/// Why a roll-out halted (stored, audited and shown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HaltReason {
    pub wave: usize,
    pub got_work: u64,
    pub failed: u64,
    pub not_responding: u64,
    pub halt_when_failed_percent: u8,
    /// Up to 20 printers that failed, with the reason each gave.
    #[serde(default)]
    pub printers: Vec<HaltedPrinter>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HaltedPrinter {
    pub device: DeviceId,
    /// `failed` or `not_responding`.
    pub outcome: String,
    pub reason: Option<String>,
}

/// The halt rule: a wave is finished when none of its printers is pending or awaiting an
/// answer; it halts the roll-out when failed + not responding exceed
/// `halt_when_failed_percent` of its printers that got work.
pub fn verdict(wave: usize, t: &WaveTally, plan: &RolloutPlan) -> WaveVerdict {
    if t.pending > 0 || t.sent > 0 {
        return WaveVerdict::Running;
    }
    let bad = t.failed + t.not_responding;
    let got = t.got_work();
    // bad / got > pct / 100, in integers.
    if got > 0 && bad * 100 > u64::from(plan.halt_when_failed_percent) * got {
        WaveVerdict::Halt(HaltReason {
            wave,
            got_work: got,
            failed: t.failed,
            not_responding: t.not_responding,
            halt_when_failed_percent: plan.halt_when_failed_percent,
            printers: Vec::new(),
        })
    } else {
        WaveVerdict::Passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn plan(canary: Canary, waves: &[u8], halt: u8) -> RolloutPlan {
        RolloutPlan {
            canary,
            waves: waves.to_vec(),
            halt_when_failed_percent: halt,
            response_timeout_s: 600,
        }
    }

    fn fleet(n: u128) -> Vec<DeviceId> {
        (1..=n).map(|i| DeviceId(Uuid::from_u128(i))).collect()
    }

    #[test]
    fn plans_are_checked_naming_the_field() {
        let g = GroupId(Uuid::from_u128(9));
        let cases: &[(RolloutPlan, Option<&str>)] = &[
            (plan(Canary::Group(g), &[25, 100], 10), None),
            (plan(Canary::Group(g), &[100], 0), None),
            (plan(Canary::Percent(5), &[25, 100], 10), None),
            (
                plan(Canary::Percent(0), &[100], 10),
                Some("plan.canary.percent"),
            ),
            (
                plan(Canary::Percent(30), &[25, 100], 10),
                Some("plan.waves"),
            ),
            (
                plan(Canary::Group(g), &[50, 50, 100], 10),
                Some("plan.waves"),
            ),
            (plan(Canary::Group(g), &[50], 10), Some("plan.waves")),
            (plan(Canary::Group(g), &[], 10), Some("plan.waves")),
            (
                plan(Canary::Group(g), &[100], 101),
                Some("plan.halt_when_failed_percent"),
            ),
        ];
        for (p, want) in cases {
            let got = p.check().err().map(|e| e.field.clone());
            assert_eq!(got.as_deref(), *want, "{p:?}");
        }
        let mut p = plan(Canary::Group(g), &[100], 0);
        p.response_timeout_s = 0;
        assert_eq!(
            p.check().err().map(|e| e.field),
            Some("plan.response_timeout_s".to_string())
        );
    }

    #[test]
    fn the_plan_is_read_from_json() {
        let p: RolloutPlan = serde_json::from_str(
            r#"{"canary": {"percent": 5}, "waves": [25, 100], "halt_when_failed_percent": 10}"#,
        )
        .unwrap();
        assert_eq!(p, plan(Canary::Percent(5), &[25, 100], 10));
        assert!(serde_json::from_str::<RolloutPlan>(
            r#"{"canary": {"percent": 5}, "waves": [100], "halt_when_failed_percent": 10, "bogus": 1}"#
        )
        .is_err());
    }

    #[test]
    fn a_canary_group_goes_first_and_the_rest_splits_by_hash() {
        let devices = fleet(20);
        let canary: Vec<(DeviceId, bool)> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (*d, i < 3))
            .collect();
        let p = plan(Canary::Group(GroupId(Uuid::from_u128(1))), &[50, 100], 10);
        let waves = p.assign(&canary);
        assert_eq!(waves.len(), 20);
        for d in &devices[..3] {
            assert_eq!(waves[d], 0);
        }
        let count = |w| waves.values().filter(|x| **x == w).count();
        assert_eq!((count(0), count(1), count(2)), (3, 9, 8)); // ceil(17 / 2) = 9
                                                               // Stable: the order of the input does not matter.
        let mut reversed = canary.clone();
        reversed.reverse();
        assert_eq!(p.assign(&reversed), waves);
    }

    #[test]
    fn a_percentage_canary_is_never_empty_and_rounds_up() {
        let devices: Vec<(DeviceId, bool)> = fleet(10).into_iter().map(|d| (d, false)).collect();
        let p = plan(Canary::Percent(5), &[25, 100], 10);
        let waves = p.assign(&devices);
        let count = |w| waves.values().filter(|x| **x == w).count();
        assert_eq!((count(0), count(1), count(2)), (1, 2, 7));
        // The canary is the printer with the lowest hash.
        let first = devices
            .iter()
            .map(|(d, _)| *d)
            .min_by_key(|d| (stable_hash(*d), *d))
            .unwrap();
        assert_eq!(waves[&first], 0);
    }

    #[test]
    fn the_halt_rule() {
        let p = plan(Canary::Percent(5), &[100], 10);
        let t = |sent, succeeded, failed, not_responding, pending| WaveTally {
            sent,
            succeeded,
            failed,
            not_responding,
            pending,
            ..WaveTally::default()
        };
        assert_eq!(verdict(0, &t(1, 5, 0, 0, 0), &p), WaveVerdict::Running);
        assert_eq!(verdict(0, &t(0, 5, 0, 0, 1), &p), WaveVerdict::Running);
        assert_eq!(verdict(0, &t(0, 10, 0, 0, 0), &p), WaveVerdict::Passed);
        // 1 of 10 is 10 %: not more than 10 %.
        assert_eq!(verdict(0, &t(0, 9, 1, 0, 0), &p), WaveVerdict::Passed);
        match verdict(1, &t(0, 8, 1, 1, 0), &p) {
            WaveVerdict::Halt(r) => {
                assert_eq!(
                    (r.wave, r.got_work, r.failed, r.not_responding),
                    (1, 10, 1, 1)
                )
            }
            v => panic!("{v:?}"),
        }
        // Nothing sent (all compliant already): passes.
        assert_eq!(verdict(0, &WaveTally::default(), &p), WaveVerdict::Passed);
        // 0 %: any failure halts.
        let strict = plan(Canary::Percent(5), &[100], 0);
        assert!(matches!(
            verdict(0, &t(0, 99, 0, 1, 0), &strict),
            WaveVerdict::Halt(_)
        ));
    }

    #[test]
    fn commands_follow_the_state_machine() {
        use Command::*;
        use RolloutState::*;
        assert_eq!(command(Halted, Resume), Ok(Active));
        assert!(command(Active, Resume).is_err());
        assert!(command(Completed, Resume).is_err());
        assert_eq!(command(Active, Rollback), Ok(RolledBack));
        assert_eq!(command(Halted, Rollback), Ok(RolledBack));
        assert_eq!(command(Completed, Rollback), Ok(RolledBack));
        assert!(command(Cancelled, Rollback).is_err());
        assert!(command(RolledBack, Rollback).is_err());
        assert_eq!(command(Halted, Cancel), Ok(Cancelled));
        assert!(command(Cancelled, Cancel).is_err());
        for s in [Active, Halted, Completed, Cancelled, RolledBack] {
            assert_eq!(RolloutState::parse(s.as_str()), Some(s));
        }
    }
}
