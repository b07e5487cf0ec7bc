//! The benchmark's fleet: what its printers report, the policy they are assessed against, and
//! setting both up in bulk through the store before the server starts.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use printfleet_domain::catalogue::{Catalogue, SettingType, SettingValue};
use printfleet_domain::policy::{self, GroupRule, PolicyMode, ResolvedItem};
use printfleet_domain::telemetry::{self, DeviceState, Provenance, Verdict};
use printfleet_domain::{Ctx, DeviceId, GroupId, PolicyId, TenantId};
use printfleet_protocol::messages::{
    Capabilities, CheckIn, DeviceInfo, Event, EventKind, Meters, ReportedValue, Supply, SupplyKind,
    SupplyState,
};
use printfleet_storage::policies::PolicyWrite;
use printfleet_storage::provision::ProvisionPlan;
use printfleet_storage::Store;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Items of the benchmark's policy.
pub const POLICY_ITEMS: usize = 60;
/// Items whose first version wants another value than the fleet reports (the change fixes
/// them).
const CHANGED_ITEMS: usize = 6;
/// The model family the printers report (scan, fax, colour): the one with most settings.
const FAMILY: &str = "mfp-color";
/// Printers of this model form the small group; the rest are `MODEL`.
pub const GROUP_MODEL: &str = "PF MFP 4500c";
const MODEL: &str = "PF MFP 5600c";

/// What every printer reports and what the policy wants.
pub struct Plan {
    pub catalogue: Catalogue,
    /// Every plain setting of the family at the value the printers report.
    pub reported: BTreeMap<String, ReportedValue>,
    /// The policy's items at the reported values (version 2, after the change).
    pub wanted: BTreeMap<String, SettingValue>,
    /// The bool items version 1 wants the other way round.
    pub flipped: Vec<String>,
}

/// A setting's value as the fleet has it: the catalogue's secure value, else its default, else
/// a valid value of its type.
fn fleet_value(
    kind: &SettingType,
    secure: Option<&SettingValue>,
    default: Option<&SettingValue>,
) -> Option<SettingValue> {
    if let Some(v) = secure.or(default) {
        return Some(v.clone());
    }
    Some(match kind {
        SettingType::Bool => SettingValue::Bool(false),
        SettingType::Enum { values } => SettingValue::Enum(values.first()?.clone()),
        SettingType::Integer { min, .. } => SettingValue::Integer(*min),
        SettingType::String { pattern, .. } if pattern.as_str().contains("https?") => {
            SettingValue::Text("http://proxy.bench.test:3128/".into())
        }
        SettingType::String { .. } => SettingValue::Text("bench-value".into()),
        _ => return None,
    })
}

fn as_reported(v: &SettingValue) -> Option<ReportedValue> {
    Some(match v {
        SettingValue::Bool(b) => ReportedValue::Bool(*b),
        SettingValue::Integer(i) => ReportedValue::Integer(*i),
        SettingValue::Enum(s) | SettingValue::Text(s) => ReportedValue::Text(s.clone()),
        SettingValue::Secret(_) => return None,
    })
}

impl Plan {
    pub fn new() -> anyhow::Result<Self> {
        let catalogue = Catalogue::builtin()?;
        let mut reported = BTreeMap::new();
        let mut wanted = BTreeMap::new();
        let mut flipped = Vec::new();
        for s in catalogue.for_model(FAMILY) {
            let Some(v) = fleet_value(&s.kind, s.secure.as_ref(), s.default.as_ref()) else {
                continue;
            };
            let (Ok(v), Some(r)) = (s.validate_value(&v), as_reported(&v)) else {
                continue;
            };
            reported.insert(s.id.to_string(), r);
            if wanted.len() < POLICY_ITEMS {
                if flipped.len() < CHANGED_ITEMS && matches!(v, SettingValue::Bool(_)) {
                    flipped.push(s.id.to_string());
                }
                wanted.insert(s.id.to_string(), v);
            }
        }
        if wanted.len() < POLICY_ITEMS {
            anyhow::bail!(
                "the catalogue has only {} plain settings for {FAMILY}",
                wanted.len()
            );
        }
        Ok(Self {
            catalogue,
            reported,
            wanted,
            flipped,
        })
    }

    /// The policy's items: version 1 (`fixed` false) wants the flipped bools the other way;
    /// version 2 wants exactly what the printers report.
    pub fn items(&self, fixed: bool) -> BTreeMap<String, SettingValue> {
        let mut items = self.wanted.clone();
        if !fixed {
            for id in &self.flipped {
                if let Some(SettingValue::Bool(b)) = items.get_mut(id) {
                    *b = !*b;
                }
            }
        }
        items
    }

    /// A printer's first check-in: identity and capabilities, meters, four toners, two events
    /// and every plain setting of its family.
    fn report(&self, model: &str, serial: String) -> CheckIn {
        let supply = |id: &str, colour: &str, level: u8| Supply {
            id: id.into(),
            kind: SupplyKind::Toner,
            colour: Some(colour.into()),
            level_percent: Some(level),
            capacity_pages: Some(12_500),
            pages: Some(4_210),
            part_number: Some("W2020A".into()),
            state: SupplyState::Ok,
        };
        CheckIn {
            seq: 1,
            taken_at_ms: 1_767_225_600_000,
            info: Some(DeviceInfo {
                name: format!("Printer {serial}"),
                model: model.into(),
                serial,
                firmware: "2506.1".into(),
                region: Some("eu".into()),
                language: Some("en".into()),
                capabilities: Capabilities {
                    colour: true,
                    duplex: true,
                    scan: true,
                    fax: true,
                },
            }),
            meters: Some(Meters {
                total_impressions: 48_211,
                mono_impressions: Some(31_004),
                colour_impressions: Some(17_207),
                simplex_sheets: Some(20_113),
                duplex_sheets: Some(14_049),
                scans: Some(9_310),
                faxes_sent: Some(122),
                faxes_received: Some(97),
                jams: Some(14),
            }),
            supplies: Some(vec![
                supply("toner-black", "black", 71),
                supply("toner-cyan", "cyan", 64),
                supply("toner-magenta", "magenta", 58),
                supply("toner-yellow", "yellow", 80),
            ]),
            events: vec![
                Event {
                    at_ms: 1_767_225_500_000,
                    kind: EventKind::Jam,
                    code: Some("13.B2.D1".into()),
                    detail: Some("Jam in tray 2".into()),
                },
                Event {
                    at_ms: 1_767_225_560_000,
                    kind: EventKind::SupplyLow,
                    code: Some("10.00.10".into()),
                    detail: None,
                },
            ],
            settings: self.reported.clone(),
        }
    }

    /// The state a printer's first check-in leaves (checked and merged by the same code as a
    /// real check-in, with provenance).
    pub fn state(&self, model: &str, serial: String, now_ms: i64) -> anyhow::Result<DeviceState> {
        let report = self.report(model, serial);
        let Verdict::Store(mut state) =
            telemetry::apply(&DeviceState::default(), &report, &self.catalogue, now_ms)
                .map_err(|e| anyhow::anyhow!("the benchmark's report is refused: {e}"))?
        else {
            anyhow::bail!("the benchmark's report counts as a duplicate");
        };
        let origin = Provenance {
            via: "direct".into(),
            method: "check_in".into(),
            key_version: 1,
            seq: report.seq,
            received_at_ms: now_ms,
        };
        telemetry::record_provenance(&mut state, &report, &origin);
        Ok(*state)
    }
}

/// What setting up the fleet made.
pub struct Setup {
    pub policy: PolicyId,
    pub all: GroupId,
    pub small: GroupId,
    pub provision_took: Duration,
    pub states_took: Duration,
    pub state_bytes: usize,
}

fn bar(prefix: &str, n: usize) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:<26} [{bar:30}] {pos}/{len} {per_sec}")?
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    Ok(bar)
}

/// Provisions `printers` printers (the first `small` of [`GROUP_MODEL`]) with their states, a
/// dynamic group of all printers and one of the small model, and version 1 of the policy
/// assigned to all printers — everything the server's assessor then finds at start.
pub async fn set_up(
    store: &Store,
    tenant: TenantId,
    plan: &Plan,
    printers: usize,
    small: usize,
) -> anyhow::Result<Setup> {
    let ctx = Ctx::system(tenant);
    let (token, _) = store
        .enrolment_token_create(&ctx, "bench", 86_400_000, None)
        .await?;
    let t = Instant::now();
    let b = bar("provisioning printers", printers)?;
    let mut devices: Vec<(DeviceId, &str)> = Vec::with_capacity(printers);
    for (model, prefix, count, offset) in [
        (GROUP_MODEL, "PFB-S-", small.min(printers), 0),
        (
            MODEL,
            "PFB-",
            printers - small.min(printers),
            small.min(printers),
        ),
    ] {
        if count == 0 {
            continue;
        }
        let p = ProvisionPlan {
            count,
            serial_prefix: prefix.into(),
            model: model.into(),
            firmware: "2506.1".into(),
        };
        let bb = b.clone();
        let made = store
            .provision_printers(&ctx, token.id, &p, &move |n| {
                bb.set_position((offset + n) as u64)
            })
            .await?;
        devices.extend(made.into_iter().map(|m| (m.device, model)));
    }
    b.finish();
    let provision_took = t.elapsed();

    let now = store.now_ms();
    let template = plan.state(MODEL, "PFB-00000000".into(), now)?;
    let state_bytes = serde_json::to_string(&template)?.len();
    let ids: Vec<DeviceId> = devices.iter().map(|(d, _)| *d).collect();
    let b = bar("writing printer states", printers)?;
    let t = Instant::now();
    let bb = b.clone();
    store
        .provision_states(
            &ctx,
            &ids,
            &|i, _| {
                // Each printer's own identity; the rest is what its first check-in left.
                let mut s = template.clone();
                if let (Some(info), Some((_, model))) = (s.info.as_mut(), devices.get(i)) {
                    info.model = (*model).to_string();
                    info.serial = format!("PFB-{i:08}");
                    info.name = format!("Printer PFB-{i:08}");
                }
                s
            },
            &move |n| bb.set_position(n as u64),
        )
        .await?;
    b.finish();
    let states_took = t.elapsed();

    let all = store.group_create(&ctx, "All printers").await?;
    store
        .group_set_rule(
            &ctx,
            all.id,
            Some(GroupRule {
                all: true,
                ..Default::default()
            }),
        )
        .await?;
    let small_group = store.group_create(&ctx, GROUP_MODEL).await?;
    store
        .group_set_rule(
            &ctx,
            small_group.id,
            Some(GroupRule {
                models: vec![GROUP_MODEL.into()],
                ..Default::default()
            }),
        )
        .await?;
    let items = plan
        .items(false)
        .into_iter()
        .map(|(id, v)| (id, ResolvedItem::Value(v)))
        .collect();
    let (items, secrets) = policy::build_version(items, None, &ctx.actor.audit_id(), now)
        .context("the benchmark's policy")?;
    let p = store
        .policy_create(
            &ctx,
            PolicyWrite {
                name: "Fleet baseline".into(),
                description: Some("60 settings of the mfp-color family (benchmark)".into()),
                mode: PolicyMode::Assess,
                items,
                secrets,
                catalogue_version: plan.catalogue.version.clone(),
                enters_secrets: false,
            },
        )
        .await?;
    store.policy_assign(&ctx, p.id, all.id, 100).await?;
    Ok(Setup {
        policy: p.id,
        all: all.id,
        small: small_group.id,
        provision_took,
        states_took,
        state_bytes,
    })
}
