//! The fleet impact a `policy apply --dry-run` adds after the document's difference: the
//! server's dry run of the same body (`POST …/policies/{p}/dry-run`) — how many printers would
//! change or be sent settings, per item how many would become what, and the first printers.
//! It needs what saving needs; a token that may only read policies gets the difference alone.

use super::client::{ApiFailure, Client};
use printfleet_domain::policy::{ItemStatus, StatusTally};
use printfleet_domain::PolicyId;
use printfleet_wire as wire;

/// Printers listed by name; the rest are counted.
const SHOWN: u32 = 20;

/// Prints the impact, or — for a token that may read but not save policies (403) — why it is
/// not shown: the document's difference, already printed, is then the dry run's whole answer.
/// Any other refusal (a 400 naming an item the server checks, as saving would) is returned.
pub async fn print(
    client: &Client,
    policy: PolicyId,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    match client.dry_run(policy, body, SHOWN).await {
        Ok(d) => {
            print!("{}", render(&d));
            Ok(())
        }
        Err(e) => match e.downcast_ref::<ApiFailure>() {
            Some(f) if f.status == 403 => {
                println!("fleet impact not shown: {f}");
                Ok(())
            }
            _ => Err(e),
        },
    }
}

fn tally(t: &StatusTally) -> String {
    let parts: Vec<String> = [
        (t.compliant, "compliant"),
        (t.non_compliant, "non_compliant"),
        (t.unsupported, "unsupported"),
        (t.unknown, "unknown"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, s)| format!("{n} {s}"))
    .collect();
    parts.join(", ")
}

/// `id now -> after`, or `id status (wanted a -> b)` where only the wanted value changes
/// (secrets have none to show: their status says it).
fn item(i: &wire::DryRunItemView) -> String {
    let s = |x: Option<ItemStatus>| x.map(|x| x.as_str()).unwrap_or("-");
    let wanted = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into())
    };
    let sent = if i.sent { " (sent)" } else { "" };
    let (now, after) = (s(i.current), s(i.predicted));
    if now == after && i.wanted_now != i.wanted_after {
        let (a, b) = (wanted(&i.wanted_now), wanted(&i.wanted_after));
        format!("{} {now} (wanted {a} -> {b}){sent}", i.setting_id)
    } else {
        format!("{} {now} -> {after}{sent}", i.setting_id)
    }
}

fn render(d: &wire::DryRunView) -> String {
    let t = &d.totals;
    let mut out = format!(
        "fleet impact: {} printer(s) reached, {} would change, {} would be sent settings",
        t.printers_assessed, t.printers_changing, t.printers_sent_settings
    );
    if t.printers_sent_later > 0 {
        out.push_str(&format!(
            " ({} more later: remediation back-off or work pending)",
            t.printers_sent_later
        ));
    }
    out.push('\n');
    for (id, i) in &t.by_item {
        let mut what = Vec::new();
        if i.becoming != StatusTally::default() {
            what.push(format!("becoming {}", tally(&i.becoming)));
        }
        if i.no_longer_assessed > 0 {
            what.push(format!("{} no longer assessed", i.no_longer_assessed));
        }
        if i.sent > 0 {
            what.push(format!("sent to {}", i.sent));
        }
        if what.is_empty() {
            what.push("wanted value changes, no status changes".into());
        }
        out.push_str(&format!("  {id}: {}\n", what.join("; ")));
    }
    for p in &d.printers {
        let name = p
            .name
            .as_deref()
            .map(|n| format!(" {n:?}"))
            .unwrap_or_default();
        out.push_str(&format!("  printer {}{name} ({}): ", p.serial, p.model));
        let items: Vec<String> = p.items.iter().map(item).collect();
        out.push_str(&items.join(", "));
        out.push('\n');
    }
    let listable = t.printers_changing.max(t.printers_sent_settings);
    if d.next_after.is_some() {
        out.push_str(&format!(
            "  … and more (first {} of at least {listable} shown)\n",
            d.printers.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_summary_counts_per_item_and_names_printers() {
        let becoming = StatusTally {
            non_compliant: 2,
            unsupported: 1,
            ..StatusTally::default()
        };
        let d = wire::DryRunView {
            policy: PolicyId::new_random(),
            version: 1,
            version_after: 2,
            totals: wire::DryRunTotals {
                printers_assessed: 3,
                printers_changing: 3,
                printers_sent_settings: 2,
                printers_sent_later: 1,
                items_becoming: becoming,
                items_no_longer_assessed: 0,
                by_item: BTreeMap::from([(
                    "network.telnet.enabled".to_string(),
                    wire::DryRunItemTotals {
                        becoming,
                        no_longer_assessed: 0,
                        sent: 2,
                    },
                )]),
            },
            printers: vec![wire::DryRunPrinterView {
                device: printfleet_domain::DeviceId::new_random(),
                serial: "S-1".into(),
                model: "LaserJet M406".into(),
                name: Some("Lobby".into()),
                sent_settings: true,
                items: vec![
                    wire::DryRunItemView {
                        setting_id: "network.telnet.enabled".into(),
                        current: Some(ItemStatus::Compliant),
                        predicted: Some(ItemStatus::NonCompliant),
                        reported: None,
                        wanted_now: None,
                        wanted_after: None,
                        detail: None,
                        policy: None,
                        sent: true,
                    },
                    wire::DryRunItemView {
                        setting_id: "filesystem.stored_jobs.retention".into(),
                        current: Some(ItemStatus::Unsupported),
                        predicted: Some(ItemStatus::Unsupported),
                        reported: None,
                        wanted_now: Some(serde_json::json!(24)),
                        wanted_after: Some(serde_json::json!(48)),
                        detail: None,
                        policy: None,
                        sent: false,
                    },
                ],
            }],
            next_after: None,
        };
        assert_eq!(
            render(&d),
            "fleet impact: 3 printer(s) reached, 3 would change, 2 would be sent settings \
             (1 more later: remediation back-off or work pending)\n  \
             network.telnet.enabled: becoming 2 non_compliant, 1 unsupported; sent to 2\n  \
             printer S-1 \"Lobby\" (LaserJet M406): network.telnet.enabled compliant -> non_compliant (sent), \
             filesystem.stored_jobs.retention unsupported (wanted 24 -> 48)\n"
        );
    }
}
