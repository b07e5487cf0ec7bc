//! Decoder tests: each rule accepted and refused, with its code and field.

use super::json::*;
use super::*;
use std::collections::BTreeMap;

fn sample() -> CheckIn {
    CheckIn {
        seq: 7,
        taken_at_ms: 1_767_225_600_000,
        info: None,
        meters: Some(Meters {
            total_impressions: 1200,
            mono_impressions: Some(1200),
            ..Meters::default()
        }),
        supplies: Some(vec![Supply {
            id: "toner-black".into(),
            kind: SupplyKind::Toner,
            colour: Some("black".into()),
            level_percent: Some(64),
            capacity_pages: Some(6000),
            pages: Some(2160),
            part_number: Some("CF287A".into()),
            state: SupplyState::Ok,
        }]),
        events: vec![],
        settings: BTreeMap::from([
            ("net.telnet.enabled".to_string(), ReportedValue::Bool(false)),
            ("sec.ews.password".to_string(), ReportedValue::secret(true)),
        ]),
    }
}

#[test]
fn check_in_round_trips() {
    let c = sample();
    assert_eq!(CheckIn::decode(&c.encode()).unwrap(), c);
}

#[test]
fn unknown_members_are_ignored() {
    let v = br#"{"seq":1,"taken_at_ms":5,"future":{"x":1}}"#;
    assert_eq!(CheckIn::decode(v).unwrap().seq, 1);
}

#[test]
fn shape_errors_name_the_field() {
    let mut c = sample();
    c.supplies.as_mut().unwrap()[0].level_percent = Some(101);
    let e = CheckIn::decode(&c.encode()).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        ("out_of_range", "supplies[0].level_percent")
    );

    let mut c = sample();
    c.supplies.as_mut().unwrap()[0].part_number = Some("x".repeat(65));
    assert_eq!(CheckIn::decode(&c.encode()).unwrap_err().code, "too_long");

    let e = CheckIn::decode(br#"{"seq":-1,"taken_at_ms":5}"#).unwrap_err();
    assert_eq!(e.code, "bad_payload");
    let e = CheckIn::decode(b"\xff\xfe").unwrap_err();
    assert_eq!(e.code, "bad_payload");
    let e = Fetch::decode(br#"{"wait_ms":25001}"#).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), ("out_of_range", "wait_ms"));
}

#[test]
fn a_sample_check_in_fits_in_a_kibibyte() {
    assert!(sample().encode().len() < 1024);
}

/// The code and field of a refusal.
fn refused<T: std::fmt::Debug>(r: Result<T, MessageError>) -> (&'static str, String) {
    let e = r.unwrap_err();
    (e.code, e.field)
}

fn bad(field: &str) -> (&'static str, String) {
    ("bad_payload", field.to_string())
}

/// A check-in plaintext: `{"seq":1,"taken_at_ms":5` + `extra` + `}`.
fn ci(extra: &str) -> Vec<u8> {
    format!(r#"{{"seq":1,"taken_at_ms":5{extra}}}"#).into_bytes()
}

fn check_in(plaintext: impl AsRef<[u8]>) -> Result<CheckIn, MessageError> {
    CheckIn::decode(plaintext.as_ref())
}

const SUPPLY_JSON: &str = r#"{"id":"toner","kind":"toner","state":"ok"}"#;

#[test]
fn the_top_level_must_be_an_object() {
    for p in ["[1,5]", "[]", "1", "\"x\"", "null", "true"] {
        assert_eq!(refused(check_in(p)), bad(""), "{p}");
        assert_eq!(refused(Fetch::decode(p.as_bytes())), bad(""), "{p}");
    }
    assert!(Fetch::decode(b"{}").is_ok());
    assert!(check_in(ci("")).is_ok());
}

#[test]
fn nested_structs_must_be_objects_too() {
    let caps = r#"{"colour":true,"duplex":true,"scan":false,"fax":false}"#;
    let info = |caps: &str| {
        format!(
            r#","info":{{"name":"n","model":"m","serial":"s","firmware":"f","capabilities":{caps}}}"#
        )
    };
    assert!(check_in(ci(&info(caps))).is_ok());
    assert_eq!(
        refused(check_in(ci(&info("[true,true,false,false]")))),
        bad("info.capabilities")
    );
    assert_eq!(
        refused(check_in(ci(r#","info":["n","m","s","f",{}]"#))),
        bad("info")
    );
    assert_eq!(refused(check_in(ci(r#","meters":[1]"#))), bad("meters"));
    assert_eq!(
        refused(check_in(ci(&format!(
            r#","supplies":[{SUPPLY_JSON},["x","toner"]]"#
        )))),
        bad("supplies[1]")
    );
    assert_eq!(
        refused(check_in(ci(r#","events":[[5,"jam"]]"#))),
        bad("events[0]")
    );
    // A list as a setting value would decode as a secret or a certificate.
    assert_eq!(
        refused(check_in(ci(r#","settings":{"a.b":[true]}"#))),
        bad("settings.a.b")
    );
    assert_eq!(
        refused(Fetch::decode(br#"{"acks":[["x","done"]]}"#)),
        bad("acks[0]")
    );
    let work = br#"{"reply_to":"r","items":[["x","report_now"]]}"#;
    assert_eq!(refused(Work::decode(work)), bad("items[0]"));
    // An enumeration is a string (serde_json would read {"toner":null} as `toner`).
    let s = r#","supplies":[{"id":"t","kind":{"toner":null},"state":"ok"}]"#;
    assert_eq!(refused(check_in(ci(s))), bad("supplies[0].kind"));
}

#[test]
fn missing_members_and_null_name_the_member() {
    assert_eq!(refused(check_in(br#"{"taken_at_ms":5}"#)), bad("seq"));
    let s = r#","supplies":[{"kind":"toner","state":"ok"}]"#;
    assert_eq!(refused(check_in(ci(s))), bad("supplies[0].id"));
    assert_eq!(
        refused(check_in(ci(r#","meters":{}"#))),
        bad("meters.total_impressions")
    );
    assert_eq!(refused(check_in(ci(r#","info":null"#))), bad("info"));
    let s = r#","supplies":[{"id":"t","kind":"toner","state":"ok","colour":null}]"#;
    assert_eq!(refused(check_in(ci(s))), bad("supplies[0].colour"));
    assert_eq!(
        refused(check_in(ci(r#","settings":{"a":null}"#))),
        bad("settings.a")
    );
    assert_eq!(
        refused(Fetch::decode(br#"{"wait_ms":null}"#)),
        bad("wait_ms")
    );
    let work = br#"{"reply_to":"r","items":[{"id":"1","kind":"k","data":null}]}"#;
    assert_eq!(refused(Work::decode(work)), bad("items[0].data"));
    // Unknown members may be null; `data` may hold nulls.
    assert!(check_in(ci(r#","future":null"#)).is_ok());
    let work = br#"{"reply_to":"r","items":[{"id":"1","kind":"k","data":{"x":null}}]}"#;
    assert!(Work::decode(work).is_ok());
}

#[test]
fn type_errors_name_the_path_without_echoing_the_value() {
    for level in ["256", "-1", "1.5", "99999999999999999999", "\"50\""] {
        let s = format!(
            r#","supplies":[{SUPPLY_JSON},{{"id":"d","kind":"drum","state":"ok","level_percent":{level}}}]"#
        );
        let e = check_in(ci(&s)).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("bad_payload", "supplies[1].level_percent"),
            "{level}"
        );
        assert!(!e.message.contains(level.trim_matches('"')), "{e}");
        assert!(e.message.contains("expected u8"), "{e}");
    }
    let e = check_in(br#"{"seq":"SEKRIT","taken_at_ms":5}"#).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), ("bad_payload", "seq"));
    assert!(!e.to_string().contains("SEKRIT"), "{e}");
    let s = r#","supplies":[{"id":"t","kind":"Toner, expected SEKRIT","state":"ok"}]"#;
    let e = check_in(ci(s)).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        ("bad_payload", "supplies[0].kind")
    );
    assert!(!e.to_string().contains("SEKRIT"), "{e}");
    let s = r#","settings":{"x.timeout":60.5}"#;
    let e = check_in(ci(s)).unwrap_err();
    assert_eq!(
        (e.code, e.field.as_str()),
        ("bad_payload", "settings.x.timeout")
    );
    assert!(!e.to_string().contains("60.5"), "{e}");
    let s = r#","info":{"name":"n","model":"m","serial":"s","firmware":"f","capabilities":{"colour":1,"duplex":true,"scan":false,"fax":false}}"#;
    assert_eq!(refused(check_in(ci(s))), bad("info.capabilities.colour"));
    // The first failure in document order.
    assert_eq!(
        refused(check_in(br#"{"taken_at_ms":-5,"seq":-1}"#)),
        bad("taken_at_ms")
    );
    let ack = br#"{"reply_to":"r","seq":1,"status":"stored","code":5}"#;
    assert_eq!(refused(CheckInAck::decode(ack)), bad("code"));
    assert_eq!(refused(Fetch::decode(br#"{"acks":{}}"#)), bad("acks"));
    // -0 is not an integer for serde_json (it reads it as a float).
    assert_eq!(
        refused(check_in(br#"{"seq":1,"taken_at_ms":-0}"#)),
        bad("taken_at_ms")
    );
}

#[test]
fn counters_and_times_are_json_safe() {
    let max = MAX_JSON_SAFE_INTEGER;
    assert_eq!(max, 9_007_199_254_740_991);
    let over = max + 1;
    let supply = |m: &str, v: u64| {
        format!(r#","supplies":[{{"id":"t","kind":"toner","state":"ok","{m}":{v}}}]"#)
    };
    let cert = |v: u64| {
        format!(
            r#","settings":{{"c":{{"sha256":"{}","not_after_ms":{v}}}}}"#,
            "ab".repeat(32)
        )
    };
    let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
        (
            format!(r#"{{"seq":{max},"taken_at_ms":5}}"#).into_bytes(),
            format!(r#"{{"seq":{over},"taken_at_ms":5}}"#).into_bytes(),
            "seq",
        ),
        (
            format!(r#"{{"seq":1,"taken_at_ms":{max}}}"#).into_bytes(),
            format!(r#"{{"seq":1,"taken_at_ms":{over}}}"#).into_bytes(),
            "taken_at_ms",
        ),
        (
            ci(&format!(r#","meters":{{"total_impressions":{max}}}"#)),
            ci(&format!(r#","meters":{{"total_impressions":{over}}}"#)),
            "meters.total_impressions",
        ),
        (
            ci(&format!(
                r#","meters":{{"total_impressions":1,"jams":{max}}}"#
            )),
            ci(&format!(
                r#","meters":{{"total_impressions":1,"jams":{}}}"#,
                u64::MAX
            )),
            "meters.jams",
        ),
        (
            ci(&supply("capacity_pages", max)),
            ci(&supply("capacity_pages", over)),
            "supplies[0].capacity_pages",
        ),
        (
            ci(&supply("pages", max)),
            ci(&supply("pages", over)),
            "supplies[0].pages",
        ),
        (
            ci(&format!(r#","events":[{{"at_ms":{max},"kind":"jam"}}]"#)),
            ci(&format!(r#","events":[{{"at_ms":{over},"kind":"jam"}}]"#)),
            "events[0].at_ms",
        ),
        (ci(&cert(max)), ci(&cert(over)), "settings.c.not_after_ms"),
    ];
    for (ok, refused_, field) in cases {
        assert!(check_in(&ok).is_ok(), "{field}");
        assert_eq!(
            refused(check_in(&refused_)),
            ("out_of_range", field.to_string())
        );
    }
}

#[test]
fn seq_zero_is_out_of_range_in_the_shape_check() {
    assert_eq!(
        refused(check_in(br#"{"seq":0,"taken_at_ms":5}"#)),
        ("out_of_range", "seq".to_string())
    );
    let mut c = sample();
    c.seq = 0;
    assert_eq!(refused(c.check()), ("out_of_range", "seq".to_string()));
}

#[test]
fn identifiers_must_not_be_empty() {
    let caps = r#"{"colour":true,"duplex":true,"scan":false,"fax":false}"#;
    for (member, field) in [
        ("name", "info.name"),
        ("model", "info.model"),
        ("serial", "info.serial"),
        ("firmware", "info.firmware"),
    ] {
        let mut info = serde_json::json!({"name": "n", "model": "m", "serial": "s",
            "firmware": "f", "region": "", "language": "", "capabilities": {}});
        info["capabilities"] = serde_json::from_str(caps).unwrap();
        let ok = format!(r#","info":{info}"#);
        assert!(
            check_in(ci(&ok)).is_ok(),
            "empty region and language are fine"
        );
        info[member] = "".into();
        let e = check_in(ci(&format!(r#","info":{info}"#))).unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str(), e.message.as_str()),
            ("bad_payload", field, "must not be empty")
        );
    }
    let s = r#","supplies":[{"id":"","kind":"toner","state":"ok","colour":""}]"#;
    assert_eq!(refused(check_in(ci(s))), bad("supplies[0].id"));
    assert_eq!(
        refused(check_in(ci(r#","settings":{"":true}"#))),
        bad("settings")
    );
    let work = |id: &str, kind: &str| {
        format!(r#"{{"reply_to":"r","items":[{{"id":"{id}","kind":"{kind}"}}]}}"#).into_bytes()
    };
    assert!(Work::decode(&work("1", "k")).is_ok());
    assert_eq!(refused(Work::decode(&work("", "k"))), bad("items[0].id"));
    assert_eq!(refused(Work::decode(&work("1", ""))), bad("items[0].kind"));
    let fetch = br#"{"acks":[{"id":"","outcome":"done"}]}"#;
    assert_eq!(refused(Fetch::decode(fetch)), bad("acks[0].id"));
    let fetch = br#"{"acks":[{"id":"1","outcome":"done","reason":""}]}"#;
    assert!(Fetch::decode(fetch).is_ok());
}

#[test]
fn settings_follow_the_catalogue_limits() {
    let id = |n: usize| "i".repeat(n);
    let setting = |id: &str, v: &str| ci(&format!(r#","settings":{{"{id}":{v}}}"#));
    assert!(check_in(setting(&id(MAX_SETTING_ID_LEN), "true")).is_ok());
    assert_eq!(
        refused(check_in(setting(&id(MAX_SETTING_ID_LEN + 1), "true"))),
        ("too_long", "settings".to_string())
    );
    assert_eq!(refused(check_in(setting("a\\tb", "true"))), bad("settings"));
    let text = |n: usize| format!("\"{}\"", "ü".repeat(n));
    assert!(check_in(setting("s", &text(MAX_SETTING_TEXT_LEN))).is_ok());
    assert!(check_in(setting("s", "\"\"")).is_ok());
    assert_eq!(
        refused(check_in(setting("s", &text(MAX_SETTING_TEXT_LEN + 1)))),
        ("too_long", "settings.s".to_string())
    );
}

#[test]
fn work_items_are_tokens() {
    let work = |id: &str, kind: &str| {
        format!(r#"{{"reply_to":"r","items":[{{"id":"{id}","kind":"{kind}"}}]}}"#).into_bytes()
    };
    let t = "t".repeat(MAX_TOKEN_LEN);
    assert!(Work::decode(&work(&t, &t)).is_ok());
    let long = "t".repeat(MAX_TOKEN_LEN + 1);
    let too_long = |f: &str| ("too_long", f.to_string());
    assert_eq!(
        refused(Work::decode(&work(&long, "k"))),
        too_long("items[0].id")
    );
    assert_eq!(
        refused(Work::decode(&work("1", &long))),
        too_long("items[0].kind")
    );
    assert_eq!(
        refused(Work::decode(&work("a\\u0000", "k"))),
        bad("items[0].id")
    );
    assert_eq!(
        refused(Work::decode(&work("1", "k\\n"))),
        bad("items[0].kind")
    );
}

#[test]
fn re_enrol_names_a_uuid_and_a_lowercase_key() {
    let id = "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf";
    let key = "0123456789abcdef".repeat(4);
    let r = |id: &str, key: &str| {
        ReEnrol::decode(format!(r#"{{"printer_id":"{id}","new_public_key":"{key}"}}"#).as_bytes())
    };
    assert!(r(id, &key).is_ok());
    for bad_id in [
        "A0A1A2A3-A4A5-A6A7-A8A9-AAABACADAEAF",
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaea",
        "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeafa",
        "a0a1a2a-3a4a5-a6a7-a8a9-aaabacadaeaf",
        "g0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf",
        "{a0a1a2a3-a4a5-a6a7-a8a9-aaabacadae}",
        "",
    ] {
        assert_eq!(refused(r(bad_id, &key)), bad("printer_id"), "{bad_id}");
    }
    for bad_key in [
        &key[..63],
        &format!("{key}0"),
        &key.to_uppercase(),
        &"0".repeat(66),
        "",
    ] {
        assert_eq!(refused(r(id, bad_key)), bad("new_public_key"), "{bad_key}");
    }
}

#[test]
fn certificate_fingerprints_are_lowercase_hex() {
    let cert = |fp: &str| {
        ci(&format!(
            r#","settings":{{"c":{{"sha256":"{fp}","not_after_ms":1}}}}"#
        ))
    };
    assert!(check_in(cert(&"ab".repeat(32))).is_ok());
    for fp in [
        "AB".repeat(32),
        "ab".repeat(31),
        "ab".repeat(33),
        "xy".repeat(32),
    ] {
        assert_eq!(
            refused(check_in(cert(&fp))),
            bad("settings.c.sha256"),
            "{fp}"
        );
    }
}

#[test]
fn repeated_member_names_are_refused() {
    let s = r#","settings":{"a":true,"b":1,"a":false}"#;
    assert_eq!(refused(check_in(ci(s))), bad("settings.a"));
    assert_eq!(
        refused(check_in(br#"{"seq":1,"taken_at_ms":5,"seq":2}"#)),
        bad("seq")
    );
    let s = r#","future":{"x":[{"y":1,"y":1}]}"#;
    assert_eq!(refused(check_in(ci(s))), bad("future.x[0].y"));
    let s = r#","settings":{"c":{"set":true,"set":false}}"#;
    assert_eq!(refused(check_in(ci(s))), bad("settings.c.set"));
    let work = br#"{"reply_to":"r","items":[{"id":"1","kind":"k","data":{"n":1,"n":2}}]}"#;
    assert_eq!(refused(Work::decode(work)), bad("items[0].data.n"));
    // The outer object's repeat comes first, then its members in order.
    let s = r#"{"a":{"b":1,"b":2},"seq":1,"taken_at_ms":5,"seq":1}"#;
    assert_eq!(refused(check_in(s)), bad("seq"));
}

#[test]
fn nesting_is_limited() {
    let nested = |depth: usize| {
        let mut s = "1".to_string();
        for _ in 1..depth {
            s = format!("[{s}]");
        }
        format!(r#"{{"seq":1,"taken_at_ms":5,"x":{s}}}"#)
    };
    // The top-level object is level 1, the innermost list level MAX_NESTING.
    assert!(check_in(nested(MAX_NESTING)).is_ok());
    assert_eq!(refused(check_in(nested(MAX_NESTING + 1))), bad(""));
}

#[test]
fn the_structure_lists_every_member() {
    fn names(v: &serde_json::Value) -> Vec<&str> {
        let mut n: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }
    fn listed(members: &[Member]) -> Vec<&str> {
        let mut n: Vec<&str> = members.iter().map(|m| m.name).collect();
        n.sort_unstable();
        n
    }
    fn object(shape: &Shape) -> &'static [Member] {
        match shape {
            Shape::Object(m) => m,
            Shape::ListOf(s) => object(s),
            _ => panic!("not an object"),
        }
    }
    let mut c = sample();
    c.info = Some(DeviceInfo {
        name: "n".into(),
        model: "m".into(),
        serial: "s".into(),
        firmware: "f".into(),
        region: Some("r".into()),
        language: Some("l".into()),
        capabilities: Capabilities::default(),
    });
    c.meters = Some(Meters {
        total_impressions: 1,
        mono_impressions: Some(1),
        colour_impressions: Some(1),
        simplex_sheets: Some(1),
        duplex_sheets: Some(1),
        scans: Some(1),
        faxes_sent: Some(1),
        faxes_received: Some(1),
        jams: Some(1),
    });
    c.events = vec![Event {
        at_ms: 1,
        kind: EventKind::Jam,
        code: Some("c".into()),
        detail: Some("d".into()),
    }];
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(names(&v), listed(CHECK_IN));
    assert_eq!(names(&v["info"]), listed(DEVICE_INFO));
    assert_eq!(names(&v["info"]["capabilities"]), listed(CAPABILITIES));
    assert_eq!(names(&v["meters"]), listed(METERS));
    assert_eq!(names(&v["supplies"][0]), listed(object(&SUPPLY)));
    assert_eq!(names(&v["events"][0]), listed(object(&EVENT)));
    let ack = CheckInAck {
        reply_to: "r".into(),
        seq: 1,
        status: AckStatus::Refused,
        code: Some("c".into()),
        field: Some("f".into()),
        message: Some("m".into()),
    };
    assert_eq!(
        names(&serde_json::to_value(&ack).unwrap()),
        listed(CHECK_IN_ACK)
    );
    let fetch = Fetch {
        acks: vec![WorkAck {
            id: "1".into(),
            outcome: Outcome::Failed,
            reason: Some("r".into()),
            results: BTreeMap::from([(
                "s".to_string(),
                SettingResult {
                    outcome: SettingOutcome::Failed,
                    reason: "r".into(),
                },
            )]),
        }],
        wait_ms: 1,
    };
    let v = serde_json::to_value(&fetch).unwrap();
    assert_eq!(names(&v), listed(FETCH));
    assert_eq!(names(&v["acks"][0]), listed(object(&WORK_ACK)));
    assert_eq!(
        names(&v["acks"][0]["results"]["s"]),
        listed(object(&SETTING_RESULT))
    );
    let work = Work {
        reply_to: "r".into(),
        items: vec![WorkItem {
            id: "1".into(),
            kind: "k".into(),
            data: serde_json::json!({}),
        }],
    };
    let v = serde_json::to_value(&work).unwrap();
    assert_eq!(names(&v), listed(WORK));
    assert_eq!(names(&v["items"][0]), listed(object(&WORK_ITEM)));
    let re = ReEnrol {
        printer_id: "p".into(),
        new_public_key: "k".into(),
    };
    assert_eq!(names(&serde_json::to_value(&re).unwrap()), listed(RE_ENROL));
    // Required members are exactly those serde requires: dropping one fails serde too.
    let full = serde_json::to_value(&c).unwrap();
    for m in CHECK_IN {
        let mut v = full.clone();
        v.as_object_mut().unwrap().remove(m.name);
        assert_eq!(
            serde_json::from_value::<CheckIn>(v).is_err(),
            m.required,
            "{}",
            m.name
        );
    }
}
