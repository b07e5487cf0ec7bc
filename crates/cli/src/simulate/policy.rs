//! A simulated printer applying a policy (`apply_settings`, docs/protocol.md §7.8) as real ones
//! do: every setting its model family supports, at a value its firmware accepts, is applied;
//! others are refused (`unsupported`, a secret sent in clear, a bad value); now and then the
//! firmware fails one. Secrets stay in memory and are reported with their verifier,
//! certificates by fingerprint and expiry.

use super::cert::certificate_report;
use super::settings::{reported, SimSettings};
use printfleet_domain::catalogue::{Catalogue, CertificateKind, SettingType, SettingValue};
use printfleet_protocol::messages::{
    ApplySecrets, ApplySettings, ApplyValue, SettingOutcome, SettingResult, UNSUPPORTED,
};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeMap;

/// What printer firmware says when a write it accepted does not go through.
const FAILURES: &[&str] = &[
    "device busy",
    "value rejected by firmware",
    "settings store locked by another session",
    "write to non-volatile memory failed",
];

/// The printer model a policy is applied to.
pub struct Target<'a> {
    pub catalogue: &'a Catalogue,
    /// The catalogue's model family.
    pub family: &'a str,
    /// Chance per setting that the firmware fails it.
    pub failure_chance: f64,
}

fn refused(reason: &str) -> SettingResult {
    SettingResult {
        outcome: SettingOutcome::Refused,
        reason: reason.to_string(),
    }
}

fn plain_value(v: &ApplyValue) -> SettingValue {
    match v {
        ApplyValue::Bool(b) => SettingValue::Bool(*b),
        ApplyValue::Integer(n) => SettingValue::Integer(*n),
        ApplyValue::Text(s) => SettingValue::Text(s.clone()),
    }
}

impl SimSettings {
    /// Applies the settings, then the secrets; returns those not applied.
    pub fn apply(
        &mut self,
        target: &Target,
        apply: &ApplySettings,
        secrets: Option<&ApplySecrets>,
        rng: &mut impl Rng,
    ) -> BTreeMap<String, SettingResult> {
        let mut results = BTreeMap::new();
        let plain = apply
            .settings
            .iter()
            .map(|(id, v)| (id.as_str(), plain_value(v), false));
        let sealed = secrets
            .into_iter()
            .flat_map(ApplySecrets::iter)
            .map(|(id, v)| (id, SettingValue::Text(v.to_string()), true));
        for (id, value, was_sealed) in plain.chain(sealed) {
            if let Err(r) = self.apply_one(target, id, &value, was_sealed, rng) {
                results.insert(id.to_string(), r);
            }
        }
        results
    }

    fn apply_one(
        &mut self,
        target: &Target,
        id: &str,
        value: &SettingValue,
        was_sealed: bool,
        rng: &mut impl Rng,
    ) -> Result<(), SettingResult> {
        let setting = target
            .catalogue
            .get(id)
            .filter(|s| s.supports(target.family))
            .ok_or_else(|| refused(UNSUPPORTED))?;
        let secret = matches!(
            setting.kind,
            SettingType::Secret { .. }
                | SettingType::Certificate {
                    kind: CertificateKind::Id
                }
        );
        if secret && !was_sealed {
            return Err(refused("secret not sealed"));
        }
        let value = setting
            .validate_value(value)
            .map_err(|_| refused("invalid value"))?;
        // gen_bool panics outside 0..=1; NaN compares false and counts as 0.
        let chance = if target.failure_chance > 0.0 {
            target.failure_chance.min(1.0)
        } else {
            0.0
        };
        if rng.gen_bool(chance) {
            let reason = FAILURES.choose(rng).copied().unwrap_or("device busy");
            return Err(SettingResult {
                outcome: SettingOutcome::Failed,
                reason: reason.to_string(),
            });
        }
        match (&setting.kind, &value) {
            (SettingType::Certificate { .. }, v) => {
                let pem = match v {
                    SettingValue::Secret(s) => s.expose(),
                    SettingValue::Text(s) => s,
                    _ => return Err(refused("invalid value")),
                };
                let report =
                    certificate_report(pem).ok_or_else(|| refused("invalid certificate"))?;
                if secret {
                    self.set_secret(id, pem, Some(report));
                } else {
                    self.set(id, report);
                }
            }
            (_, SettingValue::Secret(s)) => self.set_secret(id, s.expose(), None),
            (_, v) => self.set(id, reported(v).ok_or_else(|| refused("invalid value"))?),
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
