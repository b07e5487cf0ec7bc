//! Dynamic device groups: a printer belongs when it meets every condition the rule names
//! (each condition: any of its values). `{"all": true}` is the explicit "every printer" rule; a
//! rule with no condition is refused, so a typo cannot silently select the whole fleet.

use crate::validation::ValidationError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const MAX_VALUES: usize = 64;
const MAX_VALUE_LEN: usize = 100;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    /// Every printer of the tenant.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// Model names, exactly as printers report them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
    /// Printers carrying any of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Firmware versions starting with any of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub firmware_prefixes: Vec<String>,
}

/// What a rule looks at.
#[derive(Clone, Copy, Debug)]
pub struct DeviceAttributes<'a> {
    pub model: &'a str,
    pub firmware: &'a str,
    pub site: Option<&'a str>,
    pub tags: &'a BTreeSet<String>,
}

impl GroupRule {
    /// Trims and checks the values; refuses an empty rule.
    pub fn validate(mut self) -> Result<Self, ValidationError> {
        for (field, values) in [
            ("rule.models", &mut self.models),
            ("rule.sites", &mut self.sites),
            ("rule.tags", &mut self.tags),
            ("rule.firmware_prefixes", &mut self.firmware_prefixes),
        ] {
            if values.len() > MAX_VALUES {
                return Err(ValidationError::new(
                    field,
                    format!("at most {MAX_VALUES} values"),
                ));
            }
            for v in values.iter_mut() {
                *v = crate::validation::text(field, v, MAX_VALUE_LEN)?;
            }
            values.sort();
            values.dedup();
        }
        let conditions = !(self.models.is_empty()
            && self.sites.is_empty()
            && self.tags.is_empty()
            && self.firmware_prefixes.is_empty());
        match (self.all, conditions) {
            (false, false) => Err(ValidationError::new(
                "rule",
                "needs at least one condition (models, sites, tags, firmware_prefixes) or \"all\": true",
            )),
            (true, true) => Err(ValidationError::new(
                "rule",
                "\"all\": true cannot be combined with conditions",
            )),
            _ => Ok(self),
        }
    }

    pub fn matches(&self, d: &DeviceAttributes<'_>) -> bool {
        if self.all {
            return true;
        }
        let any = |values: &[String], f: &dyn Fn(&String) -> bool| {
            values.is_empty() || values.iter().any(f)
        };
        any(&self.models, &|m| m == d.model)
            && any(&self.sites, &|s| Some(s.as_str()) == d.site)
            && any(&self.tags, &|t| d.tags.contains(t))
            && any(&self.firmware_prefixes, &|p| {
                d.firmware.starts_with(p.as_str())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: serde_json::Value) -> Result<GroupRule, ValidationError> {
        serde_json::from_value::<GroupRule>(json)
            .unwrap()
            .validate()
    }

    #[test]
    fn every_named_condition_must_hold() {
        let tags: BTreeSet<String> = ["floor-2".to_string()].into();
        let d = DeviceAttributes {
            model: "PF Office 400",
            firmware: "2.4.1",
            site: Some("Berlin"),
            tags: &tags,
        };
        assert!(rule(serde_json::json!({"models": ["PF Office 400", "X"]}))
            .unwrap()
            .matches(&d));
        assert!(
            rule(serde_json::json!({"sites": ["Berlin"], "tags": ["floor-2"]}))
                .unwrap()
                .matches(&d)
        );
        assert!(
            !rule(serde_json::json!({"sites": ["Berlin"], "tags": ["floor-3"]}))
                .unwrap()
                .matches(&d)
        );
        assert!(rule(serde_json::json!({"firmware_prefixes": ["2.4"]}))
            .unwrap()
            .matches(&d));
        assert!(!rule(serde_json::json!({"firmware_prefixes": ["2.5"]}))
            .unwrap()
            .matches(&d));
        assert!(rule(serde_json::json!({"all": true})).unwrap().matches(&d));
        let none = DeviceAttributes { site: None, ..d };
        assert!(!rule(serde_json::json!({"sites": ["Berlin"]}))
            .unwrap()
            .matches(&none));
    }

    #[test]
    fn empty_or_contradictory_rules_are_refused() {
        assert_eq!(rule(serde_json::json!({})).unwrap_err().field, "rule");
        assert_eq!(
            rule(serde_json::json!({"all": true, "sites": ["a"]}))
                .unwrap_err()
                .field,
            "rule"
        );
        assert_eq!(
            rule(serde_json::json!({"sites": [" "]})).unwrap_err().field,
            "rule.sites"
        );
        assert!(serde_json::from_value::<GroupRule>(serde_json::json!({"site": ["a"]})).is_err());
    }
}
