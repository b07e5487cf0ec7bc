//! Policies, dynamic groups and assessment, on both backends: versions with write-only secrets,
//! permissions and scopes, and fleet counts that stay equal to what a recount gives through
//! assessments, removals and policy changes.

use crate::harness::*;
use printfleet_domain::catalogue::{Catalogue, SettingValue};
use printfleet_domain::device::DeviceFacts;
use printfleet_domain::policy::{
    GroupRule, ItemStatus, PolicyItem, PolicyItems, PolicyMode, PolicySecrets, StatusTally,
};
use printfleet_domain::{BuiltInRole, Ctx, DeviceId, Permission, Redacted, RoleRef, Scope};
use printfleet_protocol::messages::{Capabilities, CheckIn, DeviceInfo, ReportedValue};
use printfleet_protocol::KeyPair;
use printfleet_storage::enrolment::Takeover;
use printfleet_storage::policies::PolicyWrite;
use printfleet_storage::StoreError;
use std::sync::Arc;

conformance! {
    check_policy_versions_and_secrets => sqlite_policy_versions, postgres_policy_versions;
    check_assessment_and_counts => sqlite_assessment_counts, postgres_assessment_counts;
    check_remediation_failures_back_off_and_refusals => sqlite_remediation_back_off, postgres_remediation_back_off;
}

const SECRET: &str = "conformance-secret-1";

fn write(name: &str, telnet: bool, secret: Option<&str>) -> PolicyWrite {
    let mut items = PolicyItems::new();
    let mut secrets = PolicySecrets::default();
    items.insert(
        "network.telnet.enabled".into(),
        PolicyItem::Value {
            value: SettingValue::Bool(telnet),
        },
    );
    if let Some(s) = secret {
        items.insert(
            "security.ldap.bind_password".into(),
            PolicyItem::Secret {
                set_at_ms: 1,
                set_by: "u".into(),
                generate: None,
            },
        );
        secrets.0.insert(
            "security.ldap.bind_password".into(),
            Redacted::new(s.into()),
        );
    }
    PolicyWrite {
        name: name.into(),
        description: None,
        mode: PolicyMode::Remediate,
        items,
        secrets,
        catalogue_version: "t".into(),
        enters_secrets: secret.is_some(),
    }
}

async fn check_policy_versions_and_secrets(h: &Harness) {
    let a = h.ctx_a().await;
    let p = h
        .store
        .policy_create(&a, write("Base", false, Some(SECRET)))
        .await
        .unwrap();
    assert_eq!(p.version, 1);
    let (p2, changes) = h
        .store
        .policy_update(&a, p.id, write("Base", true, Some(SECRET)))
        .await
        .unwrap();
    assert_eq!(p2.version, 2);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].setting_id, "network.telnet.enabled");
    let (v1, _, _) = h.store.policy_version(&a, p.id, 1).await.unwrap();
    assert_eq!(
        v1["network.telnet.enabled"],
        PolicyItem::Value {
            value: SettingValue::Bool(false)
        }
    );
    let s = h.store.policy_current_secrets(&a, p.id).await.unwrap();
    assert_eq!(
        s.get("security.ldap.bind_password").unwrap().expose(),
        SECRET
    );
    // Rolling the tenant's data key re-encrypts the versions' secrets like every other field,
    // and they still open.
    let stale_before = h.store.stale_fields(Some(h.a)).await.unwrap();
    h.store.roll_data_key(Some(h.a)).await.unwrap();
    assert!(h.store.stale_fields(Some(h.a)).await.unwrap() >= stale_before + 2);
    while h.store.reencrypt_batch(Some(h.a), 10).await.unwrap() > 0 {}
    assert_eq!(h.store.stale_fields(Some(h.a)).await.unwrap(), 0);
    let s = h.store.policy_current_secrets(&a, p.id).await.unwrap();
    assert_eq!(
        s.get("security.ldap.bind_password").unwrap().expose(),
        SECRET
    );
    assert!(matches!(
        h.store.policy_create(&a, write("Base", true, None)).await,
        Err(StoreError::Conflict {
            code: "policy_name_taken",
            ..
        })
    ));

    // Another tenant's policy does not exist; reading needs policies.read; a scoped admin cannot
    // write policies; entering a secret needs secrets.write.
    let b = h.ctx_b().await;
    assert_not_found(h.store.policy_get(&b, p.id).await);
    let ra = h
        .add_builtin(h.a, "ra@a.example", BuiltInRole::ReportAdmin)
        .await;
    assert!(matches!(
        h.store.policy_get(&h.ctx(&ra).await, p.id).await,
        Err(StoreError::Forbidden(Permission::PoliciesRead))
    ));
    let g = h.store.group_create(&a, "Floor").await.unwrap();
    let scoped = h
        .add(
            h.a,
            "scoped@a.example",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Groups([g.id].into()),
        )
        .await;
    assert!(matches!(
        h.store
            .policy_create(&h.ctx(&scoped).await, write("S", true, None))
            .await,
        Err(StoreError::ScopeTooNarrow)
    ));
    let editor = h
        .add_custom(
            h.a,
            "ed@a.example",
            "Editors",
            &[Permission::PoliciesRead, Permission::PoliciesManage],
            Scope::Tenant,
        )
        .await;
    let ed = h.ctx(&editor).await;
    assert!(matches!(
        h.store
            .policy_create(&ed, write("E", true, Some(SECRET)))
            .await,
        Err(StoreError::Forbidden(Permission::SecretsWrite))
    ));
    h.store
        .policy_create(&ed, write("E", true, None))
        .await
        .unwrap();

    // The secret is stored only encrypted.
    let rows: Vec<(String,)> = sqlx::query_as("SELECT items FROM policy_versions")
        .fetch_all(h.store.raw_pool())
        .await
        .unwrap();
    assert!(rows.iter().all(|(i,)| !i.contains(SECRET)));
    let sealed: Vec<(Option<Vec<u8>>,)> = sqlx::query_as("SELECT secrets FROM policy_versions")
        .fetch_all(h.store.raw_pool())
        .await
        .unwrap();
    assert!(sealed
        .iter()
        .flat_map(|(s,)| s.iter())
        .all(|s| !s.windows(SECRET.len()).any(|w| w == SECRET.as_bytes())));
    h.store.policy_delete(&a, p.id).await.unwrap();
    assert_not_found(h.store.policy_get(&a, p.id).await);
}

async fn enrol(h: &Harness, serial: &str) -> DeviceId {
    let (_, secret) = h
        .store
        .enrolment_token_create(&Ctx::system(h.a), "t", 3_600_000, None)
        .await
        .unwrap();
    let key = KeyPair::generate(&mut printfleet_protocol::system_rng());
    let facts = DeviceFacts::parse(serial, "LaserJet M507", "2506.1").unwrap();
    h.store
        .enrol_device(
            secret.expose(),
            &facts,
            &key.public.to_bytes(),
            None,
            Takeover::None,
        )
        .await
        .unwrap()
        .unwrap()
        .device
}

fn report(telnet: bool) -> CheckIn {
    CheckIn {
        seq: 1,
        taken_at_ms: 1,
        info: Some(DeviceInfo {
            name: "p".into(),
            model: "LaserJet M507".into(),
            serial: "s".into(),
            firmware: "2506.1".into(),
            region: None,
            language: None,
            capabilities: Capabilities::default(),
        }),
        meters: None,
        supplies: None,
        events: vec![],
        settings: [(
            "network.telnet.enabled".to_string(),
            ReportedValue::Bool(telnet),
        )]
        .into_iter()
        .collect(),
    }
}

/// Assesses until nothing is due (as the server's assessor does).
async fn settle(h: &Harness, c: &Catalogue) {
    for _ in 0..10 {
        let due = h.store.assessment_due(1000).await.unwrap();
        if due.is_empty() {
            return;
        }
        let devices: Vec<DeviceId> = due
            .iter()
            .filter(|(t, _)| *t == h.a)
            .map(|(_, d)| *d)
            .collect();
        h.store.assess_devices(c, h.a, &devices).await.unwrap();
    }
    panic!("assessments never settled");
}

async fn telnet_items(h: &Harness, ctx: &Ctx) -> StatusTally {
    let f = h.store.compliance_figures(ctx, None).await.unwrap();
    f.policies
        .values()
        .filter_map(|(_, items)| items.get("network.telnet.enabled").copied())
        .fold(StatusTally::default(), |mut a, t| {
            a.merge(&t);
            a
        })
}

async fn check_assessment_and_counts(h: &Harness) {
    let a = h.ctx_a().await;
    let c = Catalogue::builtin().unwrap();
    let cat = Arc::new(c.clone());
    let d1 = enrol(h, "P1").await;
    let d2 = enrol(h, "P2").await;
    let d3 = enrol(h, "P3").await;
    for (d, telnet) in [(d1, false), (d2, true)] {
        h.store
            .check_in(h.a, d, report(telnet), cat.clone())
            .await
            .unwrap();
    }
    let all = h.store.group_create(&a, "All").await.unwrap();
    h.store
        .group_set_rule(
            &a,
            all.id,
            Some(GroupRule {
                all: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let mut assess_only = write("Telnet off", false, None);
    assess_only.mode = PolicyMode::Assess;
    let p = h.store.policy_create(&a, assess_only).await.unwrap();
    h.store.policy_assign(&a, p.id, all.id, 10).await.unwrap();
    settle(h, &c).await;
    let t = telnet_items(h, &a).await;
    assert_eq!(
        (t.compliant, t.non_compliant, t.unknown),
        (1, 1, 1),
        "{t:?}"
    );
    let f = h.store.compliance_figures(&a, None).await.unwrap();
    assert_eq!(
        f.printers.non_compliant + f.printers.compliant + f.printers.unknown,
        3
    );
    assert_eq!(
        h.store.device_compliance(&a, d2).await.unwrap().status,
        ItemStatus::NonCompliant
    );
    // Assess-only: nothing queued.
    assert!(h.store.work_list(&a, d2).await.unwrap().is_empty());

    // The printer comes into line; a removed printer leaves the counts. (Time passes: what is
    // due is found by the state's receive time.)
    h.advance(1000);
    h.store
        .check_in(
            h.a,
            d2,
            CheckIn {
                seq: 2,
                ..report(false)
            },
            cat.clone(),
        )
        .await
        .unwrap();
    h.store.device_remove(&a, d3).await.unwrap();
    settle(h, &c).await;
    let t = telnet_items(h, &a).await;
    assert_eq!(
        (t.compliant, t.non_compliant, t.unknown),
        (2, 0, 0),
        "{t:?}"
    );
    let history = h.store.device_compliance_history(&a, d2, 10).await.unwrap();
    assert_eq!(
        history.len(),
        2,
        "first assessment, then the change: {history:?}"
    );

    // The policy changes to remediate and telnet on: every printer is re-assessed and gets work
    // (no secret in the outbox).
    let mut on = write("Telnet off", true, Some(SECRET));
    on.mode = PolicyMode::Remediate;
    h.store.policy_update(&a, p.id, on).await.unwrap();
    settle(h, &c).await;
    let t = telnet_items(h, &a).await;
    assert_eq!((t.compliant, t.non_compliant), (0, 2), "{t:?}");
    for d in [d1, d2] {
        let work = h.store.work_list(&a, d).await.unwrap();
        assert_eq!(work.len(), 1);
        assert_eq!(work[0].kind, "apply_settings");
        assert!(!work[0].data.to_string().contains(SECRET));
        assert_eq!(work[0].data["settings"]["network.telnet.enabled"], true);
    }
    // The kept counts equal a recount over the printers: a caller scoped to two groups gets
    // figures computed over their printers.
    let few = h.store.group_create(&a, "Few").await.unwrap();
    h.store.group_add_device(&a, few.id, d1).await.unwrap();
    settle(h, &c).await;
    let tenant = h.store.compliance_figures(&a, None).await.unwrap();
    assert_eq!(tenant.printers.non_compliant, 2, "{tenant:?}");
    let by_group = h.store.compliance_figures(&a, Some(all.id)).await.unwrap();
    assert_eq!(by_group, tenant);
    let mut scoped = a.clone();
    scoped.scope = Scope::Groups([all.id, few.id].into());
    let computed = h.store.compliance_figures(&scoped, None).await.unwrap();
    assert_eq!(computed, tenant);
    // A group's kept counts follow its members: d2 joins, its share moves in at its next
    // assessment; a caller scoped to that one group reads the same figures.
    let f = h.store.compliance_figures(&a, Some(few.id)).await.unwrap();
    assert_eq!(
        (f.printers.non_compliant, f.printers.unknown),
        (1, 0),
        "{f:?}"
    );
    h.store.group_add_device(&a, few.id, d2).await.unwrap();
    settle(h, &c).await;
    let f = h.store.compliance_figures(&a, Some(few.id)).await.unwrap();
    assert_eq!(
        (f.printers.non_compliant, f.printers.unknown),
        (2, 0),
        "{f:?}"
    );
    let items = &f.policies[&p.id].1["network.telnet.enabled"];
    assert_eq!(items.non_compliant, 2, "{f:?}");
    let mut only_few = a.clone();
    only_few.scope = Scope::Groups([few.id].into());
    assert_eq!(
        h.store.compliance_figures(&only_few, None).await.unwrap(),
        f
    );
    // A deleted group takes its counts with it; the tenant's are unchanged.
    h.store.group_delete(&a, few.id).await.unwrap();
    settle(h, &c).await;
    assert_eq!(h.store.compliance_figures(&a, None).await.unwrap(), tenant);
    h.store.policy_delete(&a, p.id).await.unwrap();
    settle(h, &c).await;
    assert!(h
        .store
        .compliance_figures(&a, None)
        .await
        .unwrap()
        .policies
        .is_empty());
}

fn apply_items(work: &[printfleet_storage::outbox::WorkRecord]) -> Vec<String> {
    work.iter()
        .filter(|w| w.kind == "apply_settings")
        .map(|w| w.id.clone())
        .collect()
}

async fn check_remediation_failures_back_off_and_refusals(h: &Harness) {
    use printfleet_protocol::messages::{Outcome, SettingOutcome, SettingResult, WorkAck};
    let a = h.ctx_a().await;
    let c = Catalogue::builtin().unwrap();
    let d = enrol(h, "R1").await;
    h.store
        .check_in(h.a, d, report(true), Arc::new(c.clone()))
        .await
        .unwrap();
    let all = h.store.group_create(&a, "All").await.unwrap();
    h.store
        .group_set_rule(
            &a,
            all.id,
            Some(GroupRule {
                all: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let p = h
        .store
        .policy_create(&a, write("Telnet off", false, None))
        .await
        .unwrap();
    h.store.policy_assign(&a, p.id, all.id, 1).await.unwrap();
    settle(h, &c).await;
    let items = h.store.work_fetch(h.a, d, &[]).await.unwrap().unwrap();
    let first = apply_items(&items);
    assert_eq!(first.len(), 1);

    // The printer fails it: recorded with its reason, retried only after the back-off.
    let mut ack = WorkAck::new(
        first[0].clone(),
        Outcome::Failed,
        Some("1 of 1 settings not applied".into()),
    );
    ack.results.insert(
        "network.telnet.enabled".into(),
        SettingResult {
            outcome: SettingOutcome::Failed,
            reason: "device busy".into(),
        },
    );
    assert!(h
        .store
        .work_fetch(h.a, d, &[ack])
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    let r = h
        .store
        .device_compliance(&a, d)
        .await
        .unwrap()
        .remediation
        .unwrap();
    assert_eq!(r.attempts, 1);
    assert_eq!(r.next_at_ms, h.store.now_ms() + 60_000);
    assert_eq!(
        r.last_reason.as_deref(),
        Some("1 of 1 settings not applied")
    );
    settle(h, &c).await;
    assert!(
        h.store
            .work_fetch(h.a, d, &[])
            .await
            .unwrap()
            .unwrap()
            .is_empty(),
        "no retry before the back-off"
    );
    h.advance(61_000);
    settle(h, &c).await;
    let again = apply_items(&h.store.work_fetch(h.a, d, &[]).await.unwrap().unwrap());
    assert_eq!(again.len(), 1, "retried after the back-off");
    assert_ne!(again[0], first[0]);

    // Refused as unsupported: the item is unsupported from now on, and nothing is sent again.
    let mut ack = WorkAck::new(
        again[0].clone(),
        Outcome::Refused,
        Some("1 of 1 settings not applied".into()),
    );
    ack.results.insert(
        "network.telnet.enabled".into(),
        SettingResult {
            outcome: SettingOutcome::Refused,
            reason: "unsupported".into(),
        },
    );
    h.store.work_fetch(h.a, d, &[ack]).await.unwrap();
    settle(h, &c).await;
    let comp = h.store.device_compliance(&a, d).await.unwrap();
    assert_eq!(comp.items[0].item.status, ItemStatus::Unsupported);
    assert!(comp
        .remediation
        .unwrap()
        .unsupported
        .contains("network.telnet.enabled"));
    h.advance(7 * 3_600_000);
    settle(h, &c).await;
    assert!(h
        .store
        .work_fetch(h.a, d, &[])
        .await
        .unwrap()
        .unwrap()
        .is_empty());
}
