//! Unique per-printer secrets: the rule a policy item states (`{"generate": {"rotate_days": 30}}`),
//! which catalogue settings may use it, how a value is generated, and when it is due for
//! rotation. No I/O: randomness and time are passed in.
//!
//! A value is drawn uniformly from the setting's alphabet (rejection sampling, no modulo bias)
//! at a length within the setting's limits. Only settings whose limits allow a strong value —
//! at least [`MIN_GENERATED_BITS`] bits at their longest — may be generated: passwords,
//! passphrases and community names, not 4-digit PINs.

use crate::catalogue::{Alphabet, Setting, SettingType};
use crate::redact::Redacted;
use crate::validation::ValidationError;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

/// The weakest generated value allowed, in bits of entropy.
pub const MIN_GENERATED_BITS: f64 = 64.0;
/// What the default length aims for, in bits (capped at the setting's `max_len`).
pub const TARGET_GENERATED_BITS: f64 = 128.0;
/// Rotation schedules allowed, in days.
pub const MIN_ROTATE_DAYS: u32 = 1;
pub const MAX_ROTATE_DAYS: u32 = 3650;
pub const DAY_MS: i64 = 86_400_000;

/// "Unique per printer": a policy item whose value Printfleet generates for every printer and
/// rotates every `rotate_days`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GenerateRule {
    pub rotate_days: u32,
    /// Characters; `None`: [`default_length`] of the setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
}

impl GenerateRule {
    /// How long a value generated at `created_at_ms` may live.
    pub fn rotate_at(&self, created_at_ms: i64) -> i64 {
        created_at_ms.saturating_add(i64::from(self.rotate_days).saturating_mul(DAY_MS))
    }

    /// Whether a value generated at `created_at_ms`, with `rotate_at_ms` planned (an earlier
    /// time after a break-glass reveal; `None` when it was no longer generated for the printer),
    /// must be replaced at `now_ms`. The rule's schedule counts too, so a shortened schedule
    /// applies to values already out there.
    pub fn is_due(&self, created_at_ms: i64, rotate_at_ms: Option<i64>, now_ms: i64) -> bool {
        let by_rule = self.rotate_at(created_at_ms);
        rotate_at_ms.map_or(by_rule, |r| r.min(by_rule)) <= now_ms
    }
}

fn secret_limits(setting: &Setting) -> Option<(usize, usize, Alphabet)> {
    match &setting.kind {
        SettingType::Secret {
            min_len,
            max_len,
            alphabet,
        } => Some((*min_len, *max_len, *alphabet)),
        _ => None,
    }
}

fn alphabet_size(a: Alphabet) -> usize {
    a.characters().count()
}

/// Bits of entropy of a uniformly drawn value of `len` characters.
pub fn strength_bits(alphabet: Alphabet, len: usize) -> f64 {
    len as f64 * (alphabet_size(alphabet) as f64).log2()
}

/// The length generated when the policy names none: enough for [`TARGET_GENERATED_BITS`],
/// within the setting's limits.
pub fn default_length(min_len: usize, max_len: usize, alphabet: Alphabet) -> usize {
    let per_char = (alphabet_size(alphabet) as f64).log2();
    let wanted = (TARGET_GENERATED_BITS / per_char).ceil() as usize;
    wanted.clamp(min_len, max_len)
}

/// Checks a `{"generate": {"rotate_days": N, "length": L}}` item for `setting` (id `id`).
/// Errors name the item (or its member) and say what is allowed.
pub fn parse_rule(
    setting: &Setting,
    id: &str,
    input: &serde_json::Value,
) -> Result<GenerateRule, ValidationError> {
    let (min_len, max_len, alphabet) = secret_limits(setting)
        .ok_or_else(|| ValidationError::new(id, "only a secret setting can be generated"))?;
    if strength_bits(alphabet, max_len) < MIN_GENERATED_BITS {
        return Err(ValidationError::new(
            id,
            format!(
                "cannot be generated per printer: at most {max_len} {} characters is too weak (give one {{\"secret\": \"…\"}} for the group)",
                alphabet.as_str()
            ),
        ));
    }
    let o = input.as_object().ok_or_else(|| {
        ValidationError::new(
            id,
            "generate takes {\"rotate_days\": N} and optionally \"length\"",
        )
    })?;
    if let Some(k) = o.keys().find(|k| *k != "rotate_days" && *k != "length") {
        return Err(ValidationError::new(
            format!("{id}.generate.{k}"),
            "is not known: give rotate_days and optionally length",
        ));
    }
    let field = format!("{id}.generate.rotate_days");
    let rotate_days = o
        .get("rotate_days")
        .ok_or_else(|| ValidationError::new(field.as_str(), "is required"))?
        .as_u64()
        .filter(|d| (u64::from(MIN_ROTATE_DAYS)..=u64::from(MAX_ROTATE_DAYS)).contains(d))
        .ok_or_else(|| {
            ValidationError::new(
                field.as_str(),
                format!(
                    "must be a whole number of days from {MIN_ROTATE_DAYS} to {MAX_ROTATE_DAYS}"
                ),
            )
        })? as u32;
    let length = match o.get("length") {
        None => None,
        Some(v) => {
            let field = format!("{id}.generate.length");
            let len = v
                .as_u64()
                .filter(|l| (min_len as u64..=max_len as u64).contains(l))
                .ok_or_else(|| {
                    ValidationError::new(
                        field.as_str(),
                        format!("must be from {min_len} to {max_len} characters"),
                    )
                })? as usize;
            if strength_bits(alphabet, len) < MIN_GENERATED_BITS {
                return Err(ValidationError::new(
                    field.as_str(),
                    format!(
                        "is too short for a {} value: at least {MIN_GENERATED_BITS} bits needed",
                        alphabet.as_str()
                    ),
                ));
            }
            Some(len)
        }
    };
    Ok(GenerateRule {
        rotate_days,
        length,
    })
}

/// A new value for `setting` under `rule`, drawn from `rng`. `None` when the setting is not a
/// secret (the rule was checked by [`parse_rule`], so this does not happen for stored rules).
pub fn generate<R: RngCore + CryptoRng>(
    setting: &Setting,
    rule: &GenerateRule,
    rng: &mut R,
) -> Option<Redacted<String>> {
    let (min_len, max_len, alphabet) = secret_limits(setting)?;
    let len = rule
        .length
        .unwrap_or_else(|| default_length(min_len, max_len, alphabet))
        .clamp(min_len, max_len);
    let chars: Vec<char> = alphabet.characters().collect();
    draw(&chars, len, rng).map(Redacted::new)
}

/// `len` characters drawn uniformly from `chars` (at most 256 of them).
fn draw<R: RngCore + CryptoRng>(chars: &[char], len: usize, rng: &mut R) -> Option<String> {
    let n = chars.len();
    if n == 0 || n > 256 {
        return None;
    }
    // Bytes at or above the largest multiple of n are drawn again: every character is equally
    // likely.
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    let mut count = 0;
    let mut buf = [0u8; 64];
    while count < len {
        rng.fill_bytes(&mut buf);
        for b in buf {
            if count == len {
                break;
            }
            let b = usize::from(b);
            if b < limit {
                out.push(chars[b % n]);
                count += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{Catalogue, SettingValue};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn cat() -> Catalogue {
        Catalogue::builtin().unwrap()
    }

    #[test]
    fn generated_values_fit_the_catalogue_and_differ() {
        let c = cat();
        let mut rng = StdRng::seed_from_u64(7);
        for id in [
            "security.ews.admin_password",
            "network.snmp.v1v2c.get_community",
            "scan.email.smtp.password",
            "filesystem.password",
        ] {
            let s = c.get(id).unwrap();
            let rule = parse_rule(s, id, &json!({"rotate_days": 30})).unwrap();
            let mut seen = BTreeSet::new();
            for _ in 0..50 {
                let v = generate(s, &rule, &mut rng).unwrap();
                // The catalogue's own check accepts it.
                assert!(matches!(
                    s.validate_value(&SettingValue::Text(v.expose().clone())),
                    Ok(SettingValue::Secret(_))
                ));
                assert!(seen.insert(v.expose().clone()), "{id}: repeated value");
            }
        }
    }

    #[test]
    fn default_length_aims_for_128_bits_within_the_limits() {
        assert_eq!(default_length(12, 16, Alphabet::PrintableAscii), 16);
        assert_eq!(default_length(12, 32, Alphabet::Alphanumeric), 22);
        assert_eq!(default_length(16, 64, Alphabet::PrintableAscii), 20);
        assert_eq!(default_length(30, 64, Alphabet::PrintableAscii), 30);
    }

    #[test]
    fn the_length_override_is_honoured_and_checked() {
        let c = cat();
        let id = "network.snmp.v1v2c.get_community";
        let s = c.get(id).unwrap();
        let rule = parse_rule(s, id, &json!({"rotate_days": 7, "length": 32})).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(generate(s, &rule, &mut rng).unwrap().expose().len(), 32);
        let e = parse_rule(s, id, &json!({"rotate_days": 7, "length": 40})).unwrap_err();
        assert_eq!(e.field, format!("{id}.generate.length"));
        // 12 alphanumeric characters are 71 bits: allowed; the catalogue's minimum is 12.
        assert!(parse_rule(s, id, &json!({"rotate_days": 7, "length": 12})).is_ok());
    }

    #[test]
    fn weak_or_non_secret_settings_and_bad_schedules_are_refused_naming_the_field() {
        let c = cat();
        for id in ["fax.receive.pin", "security.pjl.password"] {
            let e = parse_rule(c.get(id).unwrap(), id, &json!({"rotate_days": 30})).unwrap_err();
            assert_eq!(e.field, id);
            assert!(e.message.contains("too weak"), "{e}");
        }
        let id = "network.telnet.enabled";
        let e = parse_rule(c.get(id).unwrap(), id, &json!({"rotate_days": 30})).unwrap_err();
        assert_eq!(e.field, id);
        let id = "security.ews.admin_password";
        let s = c.get(id).unwrap();
        for (bad, field) in [
            (
                json!({}),
                "security.ews.admin_password.generate.rotate_days",
            ),
            (
                json!({"rotate_days": 0}),
                "security.ews.admin_password.generate.rotate_days",
            ),
            (
                json!({"rotate_days": 3651}),
                "security.ews.admin_password.generate.rotate_days",
            ),
            (
                json!({"rotate_days": 1.5}),
                "security.ews.admin_password.generate.rotate_days",
            ),
            (
                json!({"rotate_days": 30, "every": 1}),
                "security.ews.admin_password.generate.every",
            ),
            (json!(30), "security.ews.admin_password"),
        ] {
            assert_eq!(parse_rule(s, id, &bad).unwrap_err().field, field, "{bad}");
        }
    }

    #[test]
    fn rotation_is_due_by_schedule_or_by_an_earlier_mark() {
        let rule = GenerateRule {
            rotate_days: 30,
            length: None,
        };
        assert_eq!(rule.rotate_at(1_000), 1_000 + 30 * DAY_MS);
        assert!(!rule.is_due(0, Some(30 * DAY_MS), 30 * DAY_MS - 1));
        assert!(rule.is_due(0, Some(30 * DAY_MS), 30 * DAY_MS));
        // A reveal asks for rotation now.
        assert!(rule.is_due(0, Some(5), 5));
        // A schedule shortened since the value was made.
        assert!(rule.is_due(0, Some(90 * DAY_MS), 31 * DAY_MS));
        assert!(!rule.is_due(0, None, DAY_MS));
    }

    #[test]
    fn the_draw_is_uniform_enough_over_digits() {
        // Rejection sampling: with 10 symbols, no digit is favoured by the byte range.
        let digits: Vec<char> = Alphabet::Digits.characters().collect();
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = [0usize; 10];
        for _ in 0..400 {
            for c in draw(&digits, 64, &mut rng).unwrap().chars() {
                counts[c as usize - '0' as usize] += 1;
            }
        }
        // 25 600 draws: each digit near 2 560.
        assert!(
            counts.iter().all(|c| (2_300..2_820).contains(c)),
            "{counts:?}"
        );
    }
}
