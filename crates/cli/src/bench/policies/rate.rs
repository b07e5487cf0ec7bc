//! The assessment of one report against the 60-item policy, on one thread: the pure
//! `policy::assess`, beside cloning, serialising and parsing the same state in the same run.

use super::fleet::Plan;
use printfleet_domain::policy::{
    self, AssessInput, Assignment, ItemStatus, PolicyMode, ResolvedItem,
};
use printfleet_domain::telemetry::DeviceState;
use printfleet_domain::{GroupId, PolicyId};
use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Operations per second of one loop.
pub struct Rate {
    pub name: &'static str,
    pub per_s: f64,
}

pub struct Rates {
    pub items: usize,
    pub state_bytes: usize,
    pub assess: Rate,
    pub baselines: Vec<Rate>,
}

/// Repeats `op` on this thread for `time`; operations per second.
fn rate(name: &'static str, time: Duration, mut op: impl FnMut()) -> Rate {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < time {
        // Check the clock every 64 operations, so reading it costs nothing measurable.
        for _ in 0..64 {
            op();
        }
        n += 64;
    }
    Rate {
        name,
        per_s: n as f64 / start.elapsed().as_secs_f64(),
    }
}

/// Runs on a thread of its own (so nothing else of the process shares it).
pub fn measure(plan: &Plan, time: Duration, now_ms: i64) -> anyhow::Result<Rates> {
    let items = plan
        .items(true)
        .into_iter()
        .map(|(id, v)| (id, ResolvedItem::Value(v)))
        .collect();
    let (items, _) = policy::build_version(items, None, "bench", now_ms)?;
    let group = GroupId::new_random();
    let assignment = Assignment {
        policy: PolicyId::new_random(),
        version: 2,
        mode: PolicyMode::Assess,
        group,
        priority: 100,
    };
    let effective = policy::effective(&[group].into(), &[assignment], |_| Some(&items));
    let state = plan.state("PF MFP 5600c", "PFB-00000000".into(), now_ms)?;
    let json = serde_json::to_string(&state)?;
    let none = BTreeSet::new();
    let no_verifier = |_: &str, _: &policy::Origin| None;
    let input = AssessInput {
        catalogue: &plan.catalogue,
        state: &state,
        effective: &effective,
        expected_verifier: &no_verifier,
        refused_unsupported: &none,
        now_ms,
    };
    let once = policy::assess(&input);
    let compliant = once
        .iter()
        .filter(|i| i.status == ItemStatus::Compliant)
        .count();
    if once.len() != effective.len() || compliant != once.len() {
        anyhow::bail!(
            "the benchmark's report is not compliant: {compliant} of {} items",
            once.len()
        );
    }
    let assess = rate("policy::assess (60 items)", time, || {
        black_box(policy::assess(black_box(&input)));
    });
    let baselines = vec![
        rate("clone the state", time, || {
            black_box(black_box(&state).clone());
        }),
        rate("serialise the state (JSON)", time, || {
            black_box(serde_json::to_string(black_box(&state)).ok());
        }),
        rate("parse the state (JSON)", time, || {
            black_box(serde_json::from_str::<DeviceState>(black_box(&json)).ok());
        }),
    ];
    Ok(Rates {
        items: once.len(),
        state_bytes: json.len(),
        assess,
        baselines,
    })
}
