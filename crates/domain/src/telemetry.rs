//! Telemetry: checks a printer's check-in report against its previous state and the settings
//! catalogue, merges it into the printer's latest known state, and splits it into history rows.
//!
//! The protocol crate checks a report's *shape* ([`CheckIn::check`]); what needs the catalogue or
//! the stored state (setting ids and values, counters going backwards, replays) is checked here.
//! Refusal messages never contain a reported setting value.

use crate::catalogue::{Catalogue, Setting, SettingType};
use printfleet_protocol::messages::{
    CheckIn, DeviceInfo, Event, MessageError, Meters, ReportedValue, Supply,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many of the newest events [`DeviceState::recent_events`] keeps.
pub const RECENT_EVENTS: usize = 20;
/// How far ahead of the server's clock a report's `taken_at_ms` may be.
pub const MAX_CLOCK_AHEAD_MS: i64 = 300_000;

/// A printer's latest known state, merged from all its stored reports (stored as JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceState {
    /// `seq` of the latest stored report; 0: none yet.
    pub seq: u64,
    /// `taken_at_ms` of the latest stored report (the printer's clock).
    pub reported_at_ms: u64,
    /// Server time the latest report was stored.
    pub received_at_ms: i64,
    pub info: Option<DeviceInfo>,
    pub meters: Option<Meters>,
    pub supplies: Option<Vec<Supply>>,
    /// Merged: a report's settings replace those ids only.
    pub settings: BTreeMap<String, ReportedValue>,
    /// Newest last, at most [`RECENT_EVENTS`].
    pub recent_events: Vec<Event>,
    /// Version of the catalogue the settings were checked against.
    pub catalogue_version: String,
    /// Where each value came from: keys `info`, `meters`, `supplies`, `events` and
    /// `settings.<id>`, each with the report that last set it.
    pub provenance: BTreeMap<String, Provenance>,
}

impl DeviceState {
    /// Whether `other` has the same device info and settings: the only parts of a state a
    /// compliance assessment reads (`storage::assessment` parses just these). A report that
    /// leaves them equal cannot change the printer's compliance.
    pub fn same_compliance_inputs(&self, other: &DeviceState) -> bool {
        self.info == other.info && self.settings == other.settings
    }
}

/// Where a reported value came from (the device identity model: every value has an origin).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// How the printer is connected: `direct`, or later `proxy:<id>`.
    pub via: String,
    /// How the value was obtained: `check_in` (reported by the printer itself); later `snmp`
    /// or `ipp` when a proxy reads it.
    pub method: String,
    /// The printer key version that sealed the report, and the report's number.
    pub key_version: i64,
    pub seq: u64,
    pub received_at_ms: i64,
}

/// Stamps every value `report` set in `state` with its origin.
pub fn record_provenance(state: &mut DeviceState, report: &CheckIn, origin: &Provenance) {
    let mut stamp = |key: String| {
        state.provenance.insert(
            key,
            Provenance {
                seq: report.seq,
                ..origin.clone()
            },
        );
    };
    if report.info.is_some() {
        stamp("info".into());
    }
    if report.meters.is_some() {
        stamp("meters".into());
    }
    if report.supplies.is_some() {
        stamp("supplies".into());
    }
    if !report.events.is_empty() {
        stamp("events".into());
    }
    for id in report.settings.keys() {
        stamp(format!("settings.{id}"));
    }
}

/// Why a report was refused. `field` is a JSON path such as `settings.network.telnet.enabled`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {field}: {message}")]
pub struct Refusal {
    /// Stable code: the protocol's shape codes (`bad_payload`, `too_long`, `too_many`,
    /// `out_of_range`) and `counter_backwards`, `unknown_setting`, `bad_setting_value`,
    /// `secret_value_reported`.
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<MessageError> for Refusal {
    fn from(e: MessageError) -> Self {
        Self::new(e.code, e.field, e.message)
    }
}

/// What to do with a report.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Store the report; this is the printer's new state.
    Store(Box<DeviceState>),
    /// A report with this `seq` or a later one was stored before: store nothing.
    Duplicate,
}

/// The checks of a report that need no stored state (its shape, and its settings against the
/// catalogue), made before it waits for the check-in writer so that the writer's serial work
/// is only what depends on the printer's state. [`apply_checked`] reports them in the same
/// order as [`apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    shape: Result<(), Refusal>,
    settings: Result<(), Refusal>,
    catalogue_version: String,
}

/// Makes the stateless checks of `report` against `catalogue`.
pub fn check_report(report: &CheckIn, catalogue: &Catalogue) -> Checked {
    let settings = report.settings.iter().try_for_each(|(id, value)| {
        let field = format!("settings.{id}");
        let setting = catalogue.get(id).ok_or_else(|| {
            let message = format!("is not in the settings catalogue {}", catalogue.version);
            Refusal::new("unknown_setting", field.clone(), message)
        })?;
        check_setting(setting, value).map_err(|(code, message)| Refusal::new(code, field, message))
    });
    Checked {
        shape: report.check().map_err(Refusal::from),
        settings,
        catalogue_version: catalogue.version.clone(),
    }
}

/// Checks `report` against the printer's previous state and the catalogue, and returns the new
/// state. A refused report changes nothing.
pub fn apply(
    previous: &DeviceState,
    report: &CheckIn,
    catalogue: &Catalogue,
    now_ms: i64,
) -> Result<Verdict, Refusal> {
    apply_checked(previous, report, &check_report(report, catalogue), now_ms)
}

/// [`apply`] with the stateless checks already made by [`check_report`].
pub fn apply_checked(
    previous: &DeviceState,
    report: &CheckIn,
    checked: &Checked,
    now_ms: i64,
) -> Result<Verdict, Refusal> {
    if report.seq == 0 {
        return Err(Refusal::new("out_of_range", "seq", "must be at least 1"));
    }
    if report.seq <= previous.seq {
        return Ok(Verdict::Duplicate);
    }
    if i128::from(report.taken_at_ms) > i128::from(now_ms) + i128::from(MAX_CLOCK_AHEAD_MS) {
        return Err(Refusal::new(
            "out_of_range",
            "taken_at_ms",
            "is in the future (more than 5 minutes ahead of the server's clock)",
        ));
    }
    checked.shape.clone()?;
    if let (Some(old), Some(new)) = (&previous.meters, &report.meters) {
        for ((name, old), (_, new)) in old.named().into_iter().zip(new.named()) {
            if let (Some(old), Some(new)) = (old, new) {
                if new < old {
                    return Err(Refusal::new(
                        "counter_backwards",
                        format!("meters.{name}"),
                        format!("counter went backwards from {old} to {new}"),
                    ));
                }
            }
        }
    }
    checked.settings.clone()?;

    let mut state = previous.clone();
    state.seq = report.seq;
    state.reported_at_ms = report.taken_at_ms;
    state.received_at_ms = now_ms;
    state.catalogue_version = checked.catalogue_version.clone();
    if let Some(info) = &report.info {
        state.info = Some(info.clone());
    }
    if let Some(meters) = &report.meters {
        state.meters = Some(meters.clone());
    }
    if let Some(supplies) = &report.supplies {
        state.supplies = Some(supplies.clone());
    }
    state.settings.extend(report.settings.clone());
    state.recent_events.extend(report.events.iter().cloned());
    let excess = state.recent_events.len().saturating_sub(RECENT_EVENTS);
    state.recent_events.drain(..excess);
    Ok(Verdict::Store(Box::new(state)))
}

/// Checks a reported value against the setting's type: `Err((code, message))`, where the message
/// says what was expected and never contains the value.
fn check_setting(setting: &Setting, value: &ReportedValue) -> Result<(), (&'static str, String)> {
    let bad = |message: String| Err(("bad_setting_value", message));
    match (&setting.kind, value) {
        (SettingType::Bool, ReportedValue::Bool(_)) => Ok(()),
        (SettingType::Bool, _) => bad("must be true or false".into()),
        (SettingType::Enum { values }, ReportedValue::Text(s)) if values.contains(s) => Ok(()),
        (SettingType::Enum { values }, _) => bad(format!("must be one of: {}", values.join(", "))),
        (SettingType::Integer { min, max, .. }, ReportedValue::Integer(n))
            if (*min..=*max).contains(n) =>
        {
            Ok(())
        }
        (SettingType::Integer { min, max, unit }, _) => {
            let unit = unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
            bad(format!("must be an integer from {min} to {max}{unit}"))
        }
        (SettingType::String { pattern, max_len }, ReportedValue::Text(s)) => {
            if s.chars().count() > *max_len {
                bad(format!("must be a string of at most {max_len} characters"))
            } else if !pattern.is_match(s) {
                bad(format!("must match the pattern {}", pattern.as_str()))
            } else {
                Ok(())
            }
        }
        (SettingType::String { .. }, _) => bad("must be a string".into()),
        (SettingType::Secret { .. }, ReportedValue::Secret { .. }) => Ok(()),
        (SettingType::Secret { .. }, _) => Err((
            "secret_value_reported",
            "is a secret: report only whether it is set ({\"set\": true} or {\"set\": false}), \
             never its value"
                .into(),
        )),
        (SettingType::Certificate { .. }, ReportedValue::Certificate { .. })
        | (SettingType::Certificate { .. }, ReportedValue::Secret { set: false, .. }) => Ok(()),
        // Text for an ID certificate could be its private key: refused like a secret's value.
        (
            SettingType::Certificate {
                kind: crate::catalogue::CertificateKind::Id,
            },
            ReportedValue::Text(_),
        ) => Err((
            "secret_value_reported",
            "is an ID certificate: report its sha256 fingerprint and not_after_ms, never its content"
                .into(),
        )),
        (SettingType::Certificate { .. }, _) => bad(
            "must be a certificate's sha256 fingerprint and not_after_ms, or {\"set\": false} \
             when none is installed"
                .into(),
        ),
    }
}

/// The data classes of history rows (retention rules will later differ per class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataClass {
    DeviceInfo,
    Meters,
    Supplies,
    Events,
    Settings,
}

impl DataClass {
    pub const ALL: [DataClass; 5] = [
        DataClass::DeviceInfo,
        DataClass::Meters,
        DataClass::Supplies,
        DataClass::Events,
        DataClass::Settings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::DeviceInfo => "device_info",
            DataClass::Meters => "meters",
            DataClass::Supplies => "supplies",
            DataClass::Events => "events",
            DataClass::Settings => "settings",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What one report adds to the append-only history: one JSON document per data class present in
/// the report, in [`DataClass::ALL`] order (storage keeps them in one row per report). An empty
/// event list or settings map adds no document.
pub fn history_rows(report: &CheckIn) -> Vec<(DataClass, String)> {
    // Serializing these plain structs (string keys only) cannot fail; `ok()` avoids a panic path.
    fn doc<T: Serialize>(value: &T) -> Option<String> {
        serde_json::to_string(value).ok()
    }
    let events = Some(&report.events).filter(|e| !e.is_empty());
    let settings = Some(&report.settings).filter(|s| !s.is_empty());
    let rows = [
        (DataClass::DeviceInfo, report.info.as_ref().and_then(doc)),
        (DataClass::Meters, report.meters.as_ref().and_then(doc)),
        (DataClass::Supplies, report.supplies.as_ref().and_then(doc)),
        (DataClass::Events, events.and_then(doc)),
        (DataClass::Settings, settings.and_then(doc)),
    ];
    rows.into_iter()
        .filter_map(|(class, doc)| doc.map(|d| (class, d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: i64 = 1_767_225_600_000;
    const PLANTED: &str = "planted secret value 0xC0FFEE";

    /// A report from its wire JSON; `taken_at_ms` defaults to `NOW`.
    fn rep(mut v: Value) -> CheckIn {
        if v.get("taken_at_ms").is_none() {
            v["taken_at_ms"] = json!(NOW);
        }
        serde_json::from_value(v).unwrap()
    }

    fn set(seq: u64, id: &str, value: Value) -> CheckIn {
        rep(json!({"seq": seq, "settings": {id: value}}))
    }

    fn outcome(previous: &DeviceState, r: &CheckIn) -> Result<Verdict, Refusal> {
        apply(previous, r, &Catalogue::builtin().unwrap(), NOW)
    }

    fn stored(previous: &DeviceState, r: &CheckIn) -> DeviceState {
        match outcome(previous, r).unwrap() {
            Verdict::Store(s) => *s,
            Verdict::Duplicate => panic!("unexpected duplicate"),
        }
    }

    fn first(r: &CheckIn) -> DeviceState {
        stored(&DeviceState::default(), r)
    }

    fn refused(previous: &DeviceState, r: &CheckIn) -> (&'static str, String, String) {
        let e = outcome(previous, r).unwrap_err();
        (e.code, e.field, e.message)
    }

    fn events(at: std::ops::Range<u64>) -> Value {
        at.map(|at_ms| json!({"at_ms": at_ms, "kind": "jam"}))
            .collect()
    }

    #[test]
    fn seq_zero_is_refused_and_replays_are_duplicates() {
        let (code, field, _) = refused(&DeviceState::default(), &rep(json!({"seq": 0})));
        assert_eq!((code, field.as_str()), ("out_of_range", "seq"));
        let s = first(&rep(json!({"seq": 5})));
        for seq in [5, 4] {
            assert_eq!(
                outcome(&s, &rep(json!({"seq": seq}))),
                Ok(Verdict::Duplicate)
            );
        }
        assert_eq!(stored(&s, &rep(json!({"seq": 6}))).seq, 6);
    }

    #[test]
    fn future_reports_are_refused_but_older_ones_are_fine() {
        let limit = NOW + MAX_CLOCK_AHEAD_MS;
        let s = first(&rep(json!({"seq": 1, "taken_at_ms": limit})));
        let late = rep(json!({"seq": 1, "taken_at_ms": limit + 1}));
        let (code, field, message) = refused(&DeviceState::default(), &late);
        assert_eq!((code, field.as_str()), ("out_of_range", "taken_at_ms"));
        assert!(message.contains("in the future"));
        let older = stored(&s, &rep(json!({"seq": 2, "taken_at_ms": 1000})));
        assert_eq!(older.reported_at_ms, 1000);
    }

    #[test]
    fn shape_errors_are_refusals() {
        let supplies = json!([{"id": "k", "kind": "toner", "level_percent": 101, "state": "ok"}]);
        let r = rep(json!({"seq": 1, "supplies": supplies}));
        let (code, field, message) = refused(&DeviceState::default(), &r);
        assert_eq!(
            (code, field.as_str()),
            ("out_of_range", "supplies[0].level_percent")
        );
        assert_eq!(message, "must be from 0 to 100");
    }

    #[test]
    fn meters_must_not_go_backwards_and_replace_when_present() {
        let s = first(&rep(
            json!({"seq": 1, "meters": {"total_impressions": 100, "jams": 3}}),
        ));
        let r = rep(json!({"seq": 2, "meters": {"total_impressions": 100, "jams": 2}}));
        let (code, field, message) = refused(&s, &r);
        assert_eq!((code, field.as_str()), ("counter_backwards", "meters.jams"));
        assert_eq!(message, "counter went backwards from 3 to 2");
        let r = rep(json!({"seq": 2, "meters": {"total_impressions": 99}}));
        assert_eq!(refused(&s, &r).1, "meters.total_impressions");
        // Equal is fine; a counter missing from the report is dropped (replace, not merge).
        let s = stored(
            &s,
            &rep(json!({"seq": 2, "meters": {"total_impressions": 100}})),
        );
        let expected = Some(Meters {
            total_impressions: 100,
            ..Meters::default()
        });
        assert_eq!(s.meters, expected);
        assert_eq!(stored(&s, &rep(json!({"seq": 3}))).meters, expected);
    }

    #[test]
    fn supplies_and_info_replace_when_present() {
        let toner =
            |pages: u64| json!({"id": "toner", "kind": "toner", "pages": pages, "state": "ok"});
        let drum = json!({"id": "drum", "kind": "drum", "pages": 5, "state": "ok"});
        let s = first(&rep(json!({"seq": 1, "supplies": [toner(900), drum]})));
        // A replaced toner restarts its page count; the drum is gone.
        let s = stored(&s, &rep(json!({"seq": 2, "supplies": [toner(10)]})));
        let s = stored(&s, &rep(json!({"seq": 3})));
        let supplies = s.supplies.clone().unwrap();
        assert_eq!((supplies.len(), supplies[0].pages), (1, Some(10)));

        let caps = json!({"colour": true, "duplex": true, "scan": false, "fax": false});
        let info = json!({"name": "2nd floor", "model": "M507", "serial": "CNB1",
                          "firmware": "2506.1", "capabilities": caps});
        let s = stored(&s, &rep(json!({"seq": 4, "info": info})));
        let s = stored(&s, &rep(json!({"seq": 5})));
        assert_eq!(s.info.map(|i| i.serial), Some("CNB1".to_string()));
        assert_eq!((s.seq, s.received_at_ms), (5, NOW));
        assert_eq!(s.catalogue_version, Catalogue::builtin().unwrap().version);
    }

    #[test]
    fn setting_values_are_checked_against_the_catalogue() {
        let cert = json!({"sha256": "ab".repeat(32), "not_after_ms": 1});
        let ok = [
            ("network.telnet.enabled", json!(false)),
            ("copier.color.access", json!("sign-in-required")),
            ("filesystem.stored_jobs.retention", json!(720)),
            ("network.snmp.v3.username", json!("fleet.admin")),
            ("scan.email.smtp.password", json!({"set": true})),
            ("security.cert.ca", json!({"set": false})),
            ("security.cert.id", cert),
        ];
        for (id, v) in ok {
            first(&set(1, id, v));
        }
        let (bad, secret) = ("bad_setting_value", "secret_value_reported");
        let cases = [
            ("no.such.setting", json!(true), "unknown_setting"),
            ("network.telnet.enabled", json!("false"), bad),
            ("copier.color.access", json!("sometimes"), bad),
            ("filesystem.stored_jobs.retention", json!(721), bad),
            ("filesystem.stored_jobs.retention", json!("7"), bad),
            ("network.snmp.v3.username", json!("has space"), bad),
            ("network.snmp.v3.username", json!("a".repeat(33)), bad),
            ("network.snmp.v3.username", json!(1), bad),
            ("scan.email.smtp.password", json!("hunter2hunter2"), secret),
            ("scan.email.smtp.password", json!(true), secret),
            ("security.cert.ca", json!({"set": true}), bad),
            ("security.cert.id", json!("-----BEGIN CERT"), secret),
        ];
        for (id, v, expected) in cases {
            let (code, field, _) = refused(&DeviceState::default(), &set(1, id, v));
            assert_eq!((code, field), (expected, format!("settings.{id}")), "{id}");
        }
        let r = set(1, "filesystem.stored_jobs.retention", json!(-1));
        let message = refused(&DeviceState::default(), &r).2;
        assert!(message.contains("from 0 to 720"), "{message}");
        let r = set(1, "copier.color.access", json!("x"));
        let message = refused(&DeviceState::default(), &r).2;
        assert!(
            message.contains("enabled, sign-in-required, disabled"),
            "{message}"
        );
    }

    #[test]
    fn no_refusal_echoes_a_reported_value() {
        let ids = "scan.email.smtp.password fax.receive.pin security.cert.id security.cert.ca \
            network.telnet.enabled copier.color.access filesystem.stored_jobs.retention \
            network.snmp.v3.username webservices.proxy.url";
        for id in ids.split_whitespace() {
            let e = outcome(&DeviceState::default(), &set(1, id, json!(PLANTED))).unwrap_err();
            let all = format!("{e} {e:?}");
            assert!(!all.contains(PLANTED), "{id}: {all}");
        }
    }

    #[test]
    fn settings_merge_per_id_and_a_refused_report_changes_nothing() {
        let both = json!({"network.telnet.enabled": true, "copier.color.access": "enabled"});
        let s = first(&rep(json!({"seq": 1, "settings": both})));
        let s = stored(&s, &set(2, "network.telnet.enabled", json!(false)));
        let expected = json!({"network.telnet.enabled": false, "copier.color.access": "enabled"});
        assert_eq!(serde_json::to_value(&s.settings).unwrap(), expected);

        let before = s.clone();
        let mixed = json!({"network.telnet.enabled": true, "no.such.setting": true});
        refused(&s, &rep(json!({"seq": 3, "settings": mixed})));
        assert_eq!(s, before);
    }

    #[test]
    fn recent_events_keep_the_newest_twenty_in_arrival_order() {
        let s = first(&rep(json!({"seq": 1, "events": events(0..15)})));
        assert_eq!(s.recent_events.len(), 15);
        let s = stored(&s, &rep(json!({"seq": 2, "events": events(15..25)})));
        let at: Vec<u64> = s.recent_events.iter().map(|e| e.at_ms).collect();
        assert_eq!(at, (5..25).collect::<Vec<_>>());
    }

    #[test]
    fn state_round_trips_as_json() {
        let s = first(&rep(json!({"seq": 1, "events": events(3..4),
            "meters": {"total_impressions": 7}, "settings": {"fax.receive.pin": {"set": true}}})));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<DeviceState>(&json).unwrap(), s);
        let empty = serde_json::from_str::<DeviceState>("{}").unwrap();
        assert_eq!(empty, DeviceState::default());
    }

    #[test]
    fn checks_made_early_refuse_in_the_same_order_as_apply() {
        let cat = Catalogue::builtin().unwrap();
        let stored = first(&rep(json!({"seq": 5, "meters": {"total_impressions": 70}})));
        // A replay of an old seq is a duplicate whatever else is wrong with it; a report with a
        // backwards counter and an unknown setting is refused for the counter.
        for report in [
            rep(json!({"seq": 5, "settings": {"no.such.setting": true}})),
            rep(json!({"seq": 6, "meters": {"total_impressions": 60},
                "settings": {"no.such.setting": true}})),
            rep(json!({"seq": 7, "meters": {"total_impressions": 80},
                "settings": {"no.such.setting": true}})),
            rep(json!({"seq": 8, "meters": {"total_impressions": 90}})),
        ] {
            let early = check_report(&report, &cat);
            assert_eq!(
                apply_checked(&stored, &report, &early, NOW),
                apply(&stored, &report, &cat, NOW)
            );
        }
        let backwards = rep(json!({"seq": 6, "meters": {"total_impressions": 60},
            "settings": {"no.such.setting": true}}));
        let refusal = apply_checked(&stored, &backwards, &check_report(&backwards, &cat), NOW);
        assert_eq!(refusal.unwrap_err().code, "counter_backwards");
    }

    #[test]
    fn history_rows_hold_one_document_per_class_present() {
        assert!(history_rows(&rep(json!({"seq": 1, "events": [], "settings": {}}))).is_empty());
        let parsed = |rows: Vec<(DataClass, String)>| {
            rows.into_iter()
                .map(|(c, d)| (c, serde_json::from_str::<Value>(&d).unwrap()))
                .collect::<Vec<_>>()
        };
        let rows = parsed(history_rows(&rep(
            json!({"seq": 1, "meters": {"total_impressions": 7},
            "supplies": [], "settings": {"fax.receive.pin": {"set": true}}}),
        )));
        let expected = [
            (DataClass::Meters, json!({"total_impressions": 7})),
            (DataClass::Supplies, json!([])),
            (
                DataClass::Settings,
                json!({"fax.receive.pin": {"set": true}}),
            ),
        ];
        assert_eq!(rows, expected);
        let rows = parsed(history_rows(&rep(
            json!({"seq": 2, "events": events(9..10)}),
        )));
        assert_eq!(rows, [(DataClass::Events, events(9..10))]);
        for c in DataClass::ALL {
            assert_eq!(DataClass::parse(c.as_str()), Some(c));
        }
        assert_eq!(DataClass::parse("nope"), None);
    }
}
