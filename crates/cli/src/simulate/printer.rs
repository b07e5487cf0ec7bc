//! A simulated printer without any I/O: lifetime meters that only grow with simulated printing,
//! supplies that deplete and get replaced, jams and open covers, settings from the catalogue,
//! and the check-in reports built from all that. Randomness comes from the caller's RNG, so a
//! seeded one makes it deterministic.

use super::models::{ModelSpec, Usage};
use super::policy::Target;
use super::settings::{Hardening, SimSettings};
use super::supplies::SimSupply;
use printfleet_domain::catalogue::Catalogue;
use printfleet_protocol::messages::{
    ApplySecrets, ApplySettings, CheckIn, DeviceInfo, Event, EventKind, Meters, SettingResult,
    SupplyState, MAX_EVENTS,
};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Jam codes as HP FutureSmart printers show them (tray, fuser, duplexer, output).
const JAM_CODES: &[&str] = &[
    "13.A2.D2", "13.A3.D3", "13.B2.D1", "13.B9.C1", "13.D3.DD", "13.E1.D3",
];
const REGIONS: &[(&str, &str)] = &[
    ("DE", "de"),
    ("US", "en"),
    ("GB", "en"),
    ("FR", "fr"),
    ("NL", "nl"),
];
/// Chance per simulated step that somebody opens a cover.
const COVER_OPEN_CHANCE: f64 = 0.03;
/// On average one jam per this many pages.
const PAGES_PER_JAM: f64 = 2_500.0;

/// What the printer is, as given at enrolment.
#[derive(Clone, Debug)]
pub struct Nameplate {
    pub serial: String,
    pub firmware: String,
}

#[derive(Debug)]
pub struct SimPrinter {
    model: &'static ModelSpec,
    info: DeviceInfo,
    meters: Meters,
    supplies: Vec<SimSupply>,
    settings: SimSettings,
    catalogue: Arc<Catalogue>,
    /// Since the last report, oldest first, at most `MAX_EVENTS`.
    events: Vec<Event>,
}

/// Adds `n` to a counter the printer has.
fn bump(counter: &mut Option<u64>, n: u64) {
    if let Some(c) = counter {
        *c = c.saturating_add(n);
    }
}

/// `part` percent of `n`.
fn percent(n: u64, part: u64) -> u64 {
    n.saturating_mul(part) / 100
}

impl SimPrinter {
    /// A printer that has been in use for a while: lifetime meters already counting, supplies
    /// part-used.
    pub fn new(
        model: &'static ModelSpec,
        nameplate: Nameplate,
        catalogue: Arc<Catalogue>,
        rng: &mut impl Rng,
        now_ms: u64,
        verifier_key: [u8; 32],
    ) -> Self {
        let caps = model.capabilities;
        let (region, language) = REGIONS.choose(rng).copied().unwrap_or(("US", "en"));
        let info = DeviceInfo {
            name: format!("NPI{:06X}", rng.gen_range(0..0x100_0000u32)),
            model: model.name.to_string(),
            serial: nameplate.serial,
            firmware: nameplate.firmware,
            region: Some(region.to_string()),
            language: Some(language.to_string()),
            capabilities: caps,
        };
        // Busier models have printed more in their lives.
        let total = rng.gen_range(50..=5_000u64) * model.pages_per_step;
        let colour = if caps.colour {
            percent(total, rng.gen_range(15..=50))
        } else {
            0
        };
        let duplex = if caps.duplex {
            percent(total, rng.gen_range(10..=60)) / 2
        } else {
            0
        };
        let meters = Meters {
            total_impressions: total,
            mono_impressions: Some(total - colour),
            colour_impressions: caps.colour.then_some(colour),
            simplex_sheets: Some(total - 2 * duplex),
            duplex_sheets: caps.duplex.then_some(duplex),
            scans: caps.scan.then(|| percent(total, rng.gen_range(10..=40))),
            faxes_sent: caps.fax.then(|| total / rng.gen_range(150..=400)),
            faxes_received: caps.fax.then(|| total / rng.gen_range(100..=300)),
            jams: Some(total / rng.gen_range(1_500..=4_000)),
        };
        let supplies = model
            .supplies
            .iter()
            .map(|s| SimSupply::new(s, rng.gen_range(0..s.capacity_pages)))
            .collect();
        let hardening = Hardening::draw(rng);
        let settings = SimSettings::new(
            &catalogue,
            model.family,
            hardening,
            rng,
            now_ms,
            verifier_key,
        );
        Self {
            model,
            info,
            meters,
            supplies,
            settings,
            catalogue,
            events: Vec::new(),
        }
    }

    #[cfg(test)]
    pub fn model(&self) -> &'static ModelSpec {
        self.model
    }

    #[cfg(test)]
    pub fn meters(&self) -> &Meters {
        &self.meters
    }

    #[cfg(test)]
    pub fn supplies(&self) -> &[SimSupply] {
        &self.supplies
    }

    #[cfg(test)]
    pub fn pending_events(&self) -> &[Event] {
        &self.events
    }

    fn event(&mut self, kind: EventKind, at_ms: u64, code: Option<&str>, detail: String) {
        if self.events.len() >= MAX_EVENTS {
            self.events.remove(0);
        }
        self.events.push(Event {
            at_ms,
            kind,
            code: code.map(str::to_string),
            detail: Some(detail),
        });
    }

    /// Somebody replaces every empty supply.
    pub fn replace_empty(&mut self, now_ms: u64) {
        let mut replaced = Vec::new();
        for s in &mut self.supplies {
            if s.state() == SupplyState::Empty {
                s.replace();
                replaced.push(format!(
                    "{} replaced with a new {}",
                    s.spec.id, s.spec.part_number
                ));
            }
        }
        for detail in replaced {
            self.event(EventKind::SupplyReplaced, now_ms, None, detail);
        }
    }

    /// The time between two reports: empty supplies are replaced, then pages are printed (and
    /// scanned, faxed), now and then a sheet jams or a cover is opened.
    pub fn advance(&mut self, rng: &mut impl Rng, now_ms: u64) {
        self.replace_empty(now_ms);
        let caps = self.model.capabilities;
        let pages = rng.gen_range(0..=2 * self.model.pages_per_step);
        let colour = if caps.colour {
            percent(pages, rng.gen_range(10..=50))
        } else {
            0
        };
        let duplex = if caps.duplex {
            percent(pages, rng.gen_range(0..=60)) / 2
        } else {
            0
        };
        let m = &mut self.meters;
        m.total_impressions = m.total_impressions.saturating_add(pages);
        bump(&mut m.mono_impressions, pages - colour);
        bump(&mut m.colour_impressions, colour);
        bump(&mut m.simplex_sheets, pages - 2 * duplex);
        bump(&mut m.duplex_sheets, duplex);
        bump(&mut m.scans, rng.gen_range(0..=pages / 2));
        bump(&mut m.faxes_sent, rng.gen_range(0..=3));
        bump(&mut m.faxes_received, rng.gen_range(0..=4));

        let mut low = Vec::new();
        for s in &mut self.supplies {
            let used = match s.spec.usage {
                Usage::Every => pages,
                Usage::Colour => colour,
            };
            if let Some(state) = s.consume(used) {
                let how = match state {
                    SupplyState::Low => "low",
                    SupplyState::VeryLow => "very low",
                    SupplyState::Empty => "empty",
                    SupplyState::Ok | SupplyState::Missing => continue,
                };
                low.push(format!("{} {how} ({} %)", s.spec.id, s.level()));
            }
        }
        for detail in low {
            self.event(EventKind::SupplyLow, now_ms, None, detail);
        }
        if rng.gen_bool((pages as f64 / PAGES_PER_JAM).min(0.5)) {
            bump(&mut self.meters.jams, 1);
            let code = JAM_CODES.choose(rng).copied();
            self.event(EventKind::Jam, now_ms, code, "Paper jam".into());
        }
        if rng.gen_bool(COVER_OPEN_CHANCE) {
            let detail = if caps.scan && rng.gen_bool(0.3) {
                "Document feeder cover open"
            } else {
                "Front door open"
            };
            self.event(EventKind::CoverOpen, now_ms, None, detail.into());
        }
    }

    /// Switched off and on again.
    pub fn restart(&mut self, now_ms: u64) {
        self.event(EventKind::Restarted, now_ms, None, "Power on".into());
    }

    /// Someone changed a setting at the control panel back to an insecure value; returns its
    /// id.
    pub fn drift(&mut self, rng: &mut impl Rng) -> Option<String> {
        self.settings.drift(&self.catalogue, rng)
    }

    /// Applies a policy's settings (and its opened secrets) as far as this model can; returns
    /// the settings not applied. `failure_chance`: per setting, that the firmware fails it.
    pub fn apply(
        &mut self,
        apply: &ApplySettings,
        secrets: Option<&ApplySecrets>,
        failure_chance: f64,
        rng: &mut impl Rng,
    ) -> BTreeMap<String, SettingResult> {
        let target = Target {
            catalogue: &self.catalogue,
            family: self.model.family,
            failure_chance,
        };
        self.settings.apply(&target, apply, secrets, rng)
    }

    /// Everything: information, meters, supplies, every setting and the pending events.
    pub fn full_report(&mut self, seq: u64, now_ms: u64) -> CheckIn {
        let mut r = self.report(seq, now_ms);
        r.info = Some(self.info.clone());
        r.settings = self.settings.take_all();
        r
    }

    /// Meters, supplies, the events since the last report and the settings changed since.
    pub fn report(&mut self, seq: u64, now_ms: u64) -> CheckIn {
        CheckIn {
            seq,
            taken_at_ms: now_ms,
            info: None,
            meters: Some(self.meters.clone()),
            supplies: Some(self.supplies.iter().map(SimSupply::report).collect()),
            events: std::mem::take(&mut self.events),
            settings: self.settings.take_changed(),
        }
    }
}

#[cfg(test)]
#[path = "printer_tests.rs"]
mod tests;
