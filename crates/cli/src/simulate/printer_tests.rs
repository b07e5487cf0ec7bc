//! The printer model against the server's own checks (`telemetry::apply`).

use super::*;
use crate::simulate::models::MODELS;
use printfleet_domain::telemetry::{apply, DeviceState, Verdict};
use printfleet_protocol::messages::ReportedValue;
use rand::rngs::StdRng;
use rand::SeedableRng;

const NOW: u64 = 1_767_225_600_000;

fn printer(i: usize, rng: &mut StdRng) -> SimPrinter {
    let nameplate = Nameplate {
        serial: format!("SIM{i:05}"),
        firmware: "2506.1".into(),
    };
    let catalogue = Arc::new(Catalogue::builtin().unwrap());
    SimPrinter::new(
        &MODELS[i % MODELS.len()],
        nameplate,
        catalogue,
        rng,
        NOW,
        [9; 32],
    )
}

/// The server's verdict; panics on a refusal or a duplicate.
fn store(state: &DeviceState, report: &CheckIn, now: u64) -> DeviceState {
    thread_local! {
        static CATALOGUE: Catalogue = Catalogue::builtin().unwrap();
    }
    match CATALOGUE.with(|c| apply(state, report, c, now as i64)) {
        Ok(Verdict::Store(s)) => *s,
        other => panic!("seq {}: {other:?}", report.seq),
    }
}

#[test]
fn reports_pass_the_server_s_checks_and_meters_only_grow() {
    let mut rng = StdRng::seed_from_u64(1);
    for i in 0..MODELS.len() {
        let mut p = printer(i, &mut rng);
        let mut state = store(&DeviceState::default(), &p.full_report(1, NOW), NOW);
        assert!(state.info.is_some() && !state.settings.is_empty());
        for step in 0..400u64 {
            let now = NOW + step * 60_000;
            let before = p.meters().clone();
            p.advance(&mut rng, now);
            if step % 37 == 0 {
                p.drift(&mut rng);
            }
            let m = p.meters();
            for ((name, old), (_, new)) in before.named().into_iter().zip(m.named()) {
                assert!(new >= old, "{name} went backwards");
            }
            let colour = m.colour_impressions.unwrap_or(0);
            assert_eq!(m.mono_impressions, Some(m.total_impressions - colour));
            let duplex = m.duplex_sheets.unwrap_or(0);
            assert_eq!(m.simplex_sheets, Some(m.total_impressions - 2 * duplex));
            for s in p.supplies() {
                assert!(s.level() <= 100);
            }
            let report = if step % 50 == 49 {
                p.full_report(step + 2, now)
            } else {
                p.report(step + 2, now)
            };
            state = store(&state, &report, now);
        }
        let m = state.meters.unwrap();
        assert!(m.total_impressions > 0);
        assert!(!state.recent_events.is_empty(), "{}", p.model().name);
    }
}

#[test]
fn meters_match_the_capabilities() {
    let mut rng = StdRng::seed_from_u64(2);
    for i in 0..MODELS.len() {
        let p = printer(i, &mut rng);
        let (caps, m) = (p.model().capabilities, p.meters());
        assert_eq!(m.colour_impressions.is_some(), caps.colour);
        assert_eq!(m.duplex_sheets.is_some(), caps.duplex);
        assert_eq!(m.scans.is_some(), caps.scan);
        assert_eq!(m.faxes_sent.is_some(), caps.fax);
        assert_eq!(m.faxes_received.is_some(), caps.fax);
        assert!(m.jams.is_some() && m.simplex_sheets.is_some());
    }
}

#[test]
fn an_empty_supply_is_replaced_with_an_event_and_its_pages_restart() {
    let mut rng = StdRng::seed_from_u64(3);
    // The budget printer's small toner runs out first.
    let mut p = printer(4, &mut rng);
    let mut now = NOW;
    while !p.supplies().iter().any(|s| s.state() == SupplyState::Empty) {
        p.advance(&mut rng, now);
        now += 60_000;
        assert!(now < NOW + 10_000 * 60_000, "never ran out");
    }
    let empty = p
        .supplies()
        .iter()
        .position(|s| s.state() == SupplyState::Empty)
        .unwrap();
    let used = p.supplies()[empty].pages();
    let low: Vec<_> = p.report(2, now).events;
    assert!(
        low.iter().any(|e| e.kind == EventKind::SupplyLow),
        "{low:?}"
    );
    p.advance(&mut rng, now);
    let s = &p.supplies()[empty];
    assert!(
        s.pages() < used && s.level() > 90,
        "{} pages, {} %",
        s.pages(),
        s.level()
    );
    assert_ne!(s.state(), SupplyState::Empty);
    let replaced = p
        .pending_events()
        .iter()
        .find(|e| e.kind == EventKind::SupplyReplaced);
    let detail = replaced.and_then(|e| e.detail.clone()).unwrap();
    assert!(
        detail.contains(s.spec.id) && detail.contains(s.spec.part_number),
        "{detail}"
    );
}

#[test]
fn jams_covers_and_restarts_are_events() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut p = printer(3, &mut rng);
    let jams = p.meters().jams;
    let mut events = Vec::new();
    for step in 0..300 {
        p.advance(&mut rng, NOW + step);
        events.extend(p.report(1, NOW).events);
    }
    p.restart(NOW);
    events.extend(p.report(1, NOW).events);
    let jam = events.iter().find(|e| e.kind == EventKind::Jam).unwrap();
    let code = jam.code.as_deref().unwrap();
    assert!(code.starts_with("13.") && code.len() == 8, "{code}");
    let n = events.iter().filter(|e| e.kind == EventKind::Jam).count() as u64;
    assert_eq!(p.meters().jams, jams.map(|j| j + n));
    assert!(events.iter().any(|e| e.kind == EventKind::CoverOpen));
    assert_eq!(events.last().map(|e| e.kind), Some(EventKind::Restarted));
}

#[test]
fn a_fleet_of_fifty_has_insecure_defaults_and_hardened_printers() {
    let mut rng = StdRng::seed_from_u64(5);
    let fleet: Vec<SimPrinter> = (0..50).map(|i| printer(i, &mut rng)).collect();
    let telnet = |want: bool| {
        fleet.iter().filter(move |p| {
            p.settings.values().get("network.telnet.enabled") == Some(&ReportedValue::Bool(want))
        })
    };
    assert!(
        telnet(true).count() >= 10,
        "most printers keep the insecure default"
    );
    assert!(telnet(false).count() >= 1, "some printers are hardened");
    let secrets: Vec<bool> = fleet
        .iter()
        .flat_map(|p| p.settings.values().values())
        .filter_map(|v| match v {
            ReportedValue::Secret { set, .. } => Some(*set),
            _ => None,
        })
        .collect();
    assert!(secrets.contains(&true) && secrets.contains(&false));
    let certificates = fleet
        .iter()
        .filter_map(|p| p.settings.values().get("security.cert.id"))
        .filter(|v| matches!(v, ReportedValue::Certificate { .. }))
        .count();
    assert_eq!(certificates, 50);
    // Every printer's first report is what the server stores.
    for (i, mut p) in fleet.into_iter().enumerate() {
        let s = store(&DeviceState::default(), &p.full_report(1, NOW), NOW);
        assert!(s.supplies.is_some_and(|s| !s.is_empty()), "printer {i}");
    }
}
