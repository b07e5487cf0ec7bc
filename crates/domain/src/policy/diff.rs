//! What changed between two versions of a policy. Secrets appear only as "changed" (a new
//! value was entered), certificates by fingerprint.

use super::document::{PolicyItem, PolicyItems};
use serde::Serialize;

/// One item that differs. `before`/`after` are display forms, never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemChange {
    pub setting_id: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// How an item is shown in a comparison.
pub fn display(item: &PolicyItem) -> serde_json::Value {
    match item {
        PolicyItem::Value { value } => serde_json::to_value(value).unwrap_or_default(),
        PolicyItem::Secret {
            set_at_ms,
            set_by,
            generate: None,
        } => serde_json::json!({"secret": "set", "set_at_ms": set_at_ms, "set_by": set_by}),
        PolicyItem::Secret {
            set_at_ms,
            set_by,
            generate: Some(rule),
        } => serde_json::json!({"generate": rule, "set_at_ms": set_at_ms, "set_by": set_by}),
        PolicyItem::Certificate { certificate, .. } => serde_json::json!({
            "certificate": certificate.sha256,
            "subject": certificate.subject,
            "not_after_ms": certificate.not_after_ms,
        }),
    }
}

/// The items of `after` that differ from `before`, in setting id order.
pub fn diff(before: &PolicyItems, after: &PolicyItems) -> Vec<ItemChange> {
    let mut ids: Vec<&String> = before.keys().chain(after.keys()).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| {
            let (b, a) = (before.get(id), after.get(id));
            let change = match (b, a) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x != y => "changed",
                _ => return None,
            };
            Some(ItemChange {
                setting_id: id.clone(),
                change,
                before: b.map(display),
                after: a.map(display),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::SettingValue;

    #[test]
    fn added_removed_changed_and_secrets_without_values() {
        let mut a = PolicyItems::new();
        a.insert(
            "x.a".into(),
            PolicyItem::Value {
                value: SettingValue::Bool(true),
            },
        );
        a.insert(
            "x.b".into(),
            PolicyItem::Value {
                value: SettingValue::Integer(1),
            },
        );
        a.insert(
            "x.s".into(),
            PolicyItem::Secret {
                set_at_ms: 1,
                set_by: "u".into(),
                generate: None,
            },
        );
        let mut b = a.clone();
        b.remove("x.a");
        b.insert(
            "x.b".into(),
            PolicyItem::Value {
                value: SettingValue::Integer(2),
            },
        );
        b.insert(
            "x.c".into(),
            PolicyItem::Value {
                value: SettingValue::Text("t".into()),
            },
        );
        b.insert(
            "x.s".into(),
            PolicyItem::Secret {
                set_at_ms: 2,
                set_by: "u".into(),
                generate: None,
            },
        );
        let d = diff(&a, &b);
        let kinds: Vec<_> = d
            .iter()
            .map(|c| (c.setting_id.as_str(), c.change))
            .collect();
        assert_eq!(
            kinds,
            [
                ("x.a", "removed"),
                ("x.b", "changed"),
                ("x.c", "added"),
                ("x.s", "changed")
            ]
        );
        assert_eq!(d[1].before, Some(serde_json::json!(1)));
        assert_eq!(d[1].after, Some(serde_json::json!(2)));
        assert_eq!(d[3].after.as_ref().unwrap()["secret"], "set");
        assert!(diff(&a, &a).is_empty());
    }
}
