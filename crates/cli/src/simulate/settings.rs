//! A simulated printer's current settings, taken from the settings catalogue: only the settings
//! its model family supports, most at their factory default (many of which are insecure, as in
//! real fleets), some already hardened. Secrets are reported only as set or not (with a
//! verifier once the printer knows the value: set by a policy or at the panel), certificates by
//! fingerprint and expiry. Applying policies is in `policy.rs`.

use printfleet_domain::catalogue::{
    Catalogue, CertificateKind, Setting, SettingType, SettingValue,
};
use printfleet_domain::redact::Redacted;
use printfleet_protocol::messages::ReportedValue;
use printfleet_protocol::verifier::secret_verifier_hex;
use rand::distributions::Alphanumeric;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

const DAY_MS: i64 = 86_400_000;

/// How far an administrator has hardened the printer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hardening {
    /// Out of the box.
    Factory,
    /// Someone went through some of the settings.
    Partial,
    /// Set up by a security baseline.
    Hardened,
}

impl Hardening {
    /// 60 % factory, 30 % partial, 10 % hardened.
    pub fn draw(rng: &mut impl Rng) -> Self {
        match rng.gen_range(0..10) {
            0..=5 => Self::Factory,
            6..=8 => Self::Partial,
            _ => Self::Hardened,
        }
    }

    /// Chance that a setting is at its secure value (where it has one).
    fn secure_chance(self) -> f64 {
        match self {
            Self::Factory => 0.03,
            Self::Partial => 0.5,
            Self::Hardened => 0.95,
        }
    }

    /// Chance that a secret is set or a CA certificate installed.
    fn configured_chance(self) -> f64 {
        match self {
            Self::Factory => 0.2,
            Self::Partial => 0.6,
            Self::Hardened => 0.95,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SimSettings {
    /// What the printer reports, by setting id.
    pub(super) values: BTreeMap<String, ReportedValue>,
    /// Changed since the last report that carried them.
    pub(super) changed: BTreeSet<String>,
    /// Secret values (and ID certificates with their keys) the printer knows, only in memory.
    pub(super) secrets: BTreeMap<String, Redacted<String>>,
    /// The enrolment's verifier key: secrets are reported with a verifier under it.
    pub(super) verifier_key: Redacted<[u8; 32]>,
}

impl SimSettings {
    /// The settings of a printer of `family`, at values chosen for `hardening`.
    pub fn new(
        catalogue: &Catalogue,
        family: &str,
        hardening: Hardening,
        rng: &mut impl Rng,
        now_ms: u64,
        verifier_key: [u8; 32],
    ) -> Self {
        let values = catalogue
            .for_model(family)
            .filter_map(|s| Some((s.id.to_string(), initial(s, hardening, rng, now_ms)?)))
            .collect();
        Self {
            values,
            changed: BTreeSet::new(),
            secrets: BTreeMap::new(),
            verifier_key: Redacted::new(verifier_key),
        }
    }

    /// A value is now in place; reported with the next check-in.
    pub(super) fn set(&mut self, id: &str, value: ReportedValue) {
        self.values.insert(id.to_string(), value);
        self.changed.insert(id.to_string());
    }

    /// A secret (or an ID certificate's PEM) is now in place: kept in memory, reported as set
    /// with its verifier (unless `report` says otherwise, e.g. a certificate's fingerprint).
    pub(super) fn set_secret(&mut self, id: &str, value: &str, report: Option<ReportedValue>) {
        let reported = report.unwrap_or_else(|| ReportedValue::Secret {
            set: true,
            verifier: Some(secret_verifier_hex(self.verifier_key.expose(), id, value)),
        });
        self.secrets
            .insert(id.to_string(), Redacted::new(value.to_string()));
        self.set(id, reported);
    }

    #[cfg(test)]
    pub fn values(&self) -> &BTreeMap<String, ReportedValue> {
        &self.values
    }

    /// Every value, for a full report; nothing is pending afterwards.
    pub fn take_all(&mut self) -> BTreeMap<String, ReportedValue> {
        self.changed.clear();
        self.values.clone()
    }

    /// The values changed since the last report.
    pub fn take_changed(&mut self) -> BTreeMap<String, ReportedValue> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|id| Some((id.clone(), self.values.get(&id)?.clone())))
            .collect()
    }

    /// Someone changed a setting at the control panel back to an insecure value: a setting at
    /// its secure value goes back to an insecure one (the factory default where that differs), or
    /// a set secret gets a new random value (so a new verifier). Returns its id.
    pub fn drift(&mut self, catalogue: &Catalogue, rng: &mut impl Rng) -> Option<String> {
        let candidates: Vec<&Setting> = self
            .values
            .iter()
            .filter_map(|(id, v)| Some((catalogue.get(id)?, v)))
            .filter(|(s, v)| match (&s.kind, v) {
                (SettingType::Secret { .. }, ReportedValue::Secret { set, .. }) => *set,
                _ => s.secure.as_ref().and_then(reported).as_ref() == Some(*v),
            })
            .map(|(s, _)| s)
            .collect();
        let setting = *candidates.choose(rng)?;
        let id = setting.id.to_string();
        if let SettingType::Secret {
            min_len, max_len, ..
        } = &setting.kind
        {
            let len = 12.clamp(*min_len, (*max_len).max(*min_len));
            let value: String = (0..len)
                .map(|_| char::from(rng.sample(Alphanumeric)))
                .collect();
            self.set_secret(&id, &value, None);
            return Some(id);
        }
        let secure = setting.secure.as_ref().and_then(reported)?;
        let insecure = setting
            .default
            .as_ref()
            .and_then(reported)
            .filter(|d| *d != secure)
            .or_else(|| other_value(setting, &secure, rng))?;
        self.set(&id, insecure);
        Some(id)
    }
}

/// A valid value of `setting` other than `not`, for settings whose default is the secure value.
fn other_value(
    setting: &Setting,
    not: &ReportedValue,
    rng: &mut impl Rng,
) -> Option<ReportedValue> {
    match (&setting.kind, not) {
        (SettingType::Bool, ReportedValue::Bool(b)) => Some(ReportedValue::Bool(!b)),
        (SettingType::Enum { values }, _) => {
            let others: Vec<&String> = values
                .iter()
                .filter(|v| !matches!(not, ReportedValue::Text(o) if o == *v))
                .collect();
            Some(ReportedValue::Text((*others.choose(rng)?).clone()))
        }
        (SettingType::Integer { min, max, .. }, ReportedValue::Integer(n)) => {
            let other = if n == min { *max } else { *min };
            (other != *n).then_some(ReportedValue::Integer(other))
        }
        _ => None,
    }
}

/// A setting's value on a printer of this hardening; `None`: not reported (a string setting
/// without a default: nothing sensible to make up).
fn initial(
    s: &Setting,
    hardening: Hardening,
    rng: &mut impl Rng,
    now_ms: u64,
) -> Option<ReportedValue> {
    let configured = rng.gen_bool(hardening.configured_chance());
    match &s.kind {
        SettingType::Secret { .. } => Some(ReportedValue::secret(configured)),
        SettingType::Certificate { kind } => {
            // Printers come with a self-signed identity certificate; a CA is installed by admins.
            let installed = *kind == CertificateKind::Id || configured;
            Some(if installed {
                certificate(rng, now_ms)
            } else {
                ReportedValue::secret(false)
            })
        }
        _ => {
            let secure = s
                .secure
                .as_ref()
                .filter(|_| rng.gen_bool(hardening.secure_chance()));
            let value = secure.or(s.default.as_ref())?;
            // The catalogue's values are checked when it is parsed; checked again to be sure.
            s.validate_value(value).ok()?;
            reported(value)
        }
    }
}

pub(super) fn reported(v: &SettingValue) -> Option<ReportedValue> {
    match v {
        SettingValue::Bool(b) => Some(ReportedValue::Bool(*b)),
        SettingValue::Integer(n) => Some(ReportedValue::Integer(*n)),
        SettingValue::Enum(s) | SettingValue::Text(s) => Some(ReportedValue::Text(s.clone())),
        SettingValue::Secret(_) => None,
    }
}

/// An installed certificate: a random fingerprint, expiring between a month ago and two years
/// from now.
fn certificate(rng: &mut impl Rng, now_ms: u64) -> ReportedValue {
    let sha256: String = (0..32)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect();
    let offset = rng.gen_range(-30..=730) * DAY_MS;
    let not_after_ms = now_ms.saturating_add_signed(offset);
    ReportedValue::Certificate {
        sha256,
        not_after_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const NOW: u64 = 1_767_225_600_000;
    const KEY: [u8; 32] = [9; 32];

    #[test]
    fn only_the_family_s_settings_at_typed_values() {
        let c = Catalogue::builtin().unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        for family in ["office-mono", "mfp-color"] {
            let s = SimSettings::new(&c, family, Hardening::Factory, &mut rng, NOW, KEY);
            assert!(!s.values().is_empty());
            for (id, v) in s.values() {
                let setting = c.get(id).unwrap();
                assert!(setting.supports(family), "{id}");
                let ok = match (&setting.kind, v) {
                    (SettingType::Secret { .. }, ReportedValue::Secret { .. }) => true,
                    (
                        SettingType::Certificate { .. },
                        ReportedValue::Certificate { sha256, .. },
                    ) => sha256.len() == 64,
                    (SettingType::Certificate { .. }, ReportedValue::Secret { set, .. }) => !set,
                    (SettingType::Bool, ReportedValue::Bool(_))
                    | (SettingType::Integer { .. }, ReportedValue::Integer(_))
                    | (SettingType::Enum { .. }, ReportedValue::Text(_)) => true,
                    _ => false,
                };
                assert!(ok, "{id}: {v:?}");
            }
        }
        let fax = SimSettings::new(&c, "office-mono", Hardening::Factory, &mut rng, NOW, KEY);
        assert!(!fax.values().contains_key("fax.receive.pin"));
    }

    #[test]
    fn drift_reports_only_the_changed_setting() {
        let c = Catalogue::builtin().unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let mut s = SimSettings::new(&c, "mfp-mono", Hardening::Partial, &mut rng, NOW, KEY);
        assert_eq!(s.take_all().len(), s.values().len());
        assert!(s.take_changed().is_empty());
        let id = s.drift(&c, &mut rng).unwrap();
        let changed = s.take_changed();
        assert_eq!(changed.keys().collect::<Vec<_>>(), [&id]);
        assert!(s.take_changed().is_empty());
    }
}
