//! Timing the assessor: until the kept counts show the whole fleet at a status, the policy
//! change through the HTTP API, the same-run baseline of the database's part, and the final
//! check that every printer really is assessed and compliant.

use super::fleet::Plan;
use crate::bench::fixture::{expect, Bench};
use indicatif::{ProgressBar, ProgressStyle};
use printfleet_domain::{GroupId, PolicyId};
use reqwest::StatusCode;
use sqlx::Row;
use std::time::{Duration, Instant};

/// How often the kept counts are read while waiting (a small indexed read, so the polling
/// itself costs the assessor next to nothing).
const POLL: Duration = Duration::from_millis(50);
/// Rows per page of the baseline's reads, per transaction and per statement of its writes:
/// the assessor's sweep page (4 × 250), batch (250) and a statement of ~100 parameters.
const READ_PAGE: i64 = 1000;
const WRITE_BATCH: usize = 250;
const WRITE_ROWS: usize = 50;

/// Printers of the policy at `status` by the kept counts (what the tenant-wide figures read).
async fn at_status(bench: &Bench, policy: PolicyId, status: &str) -> anyhow::Result<i64> {
    let n: Option<i64> = sqlx::query(
        "SELECT n FROM compliance_counts WHERE tenant_id = $1 AND scope = '' AND policy_id = $2 AND setting_id = '' AND status = $3",
    )
    .bind(bench.tenant().to_string())
    .bind(policy.to_string())
    .bind(status)
    .fetch_optional(bench.store().raw_pool())
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    Ok(n.unwrap_or(0))
}

/// Waits until all `n` printers are at `status` under `policy`; returns the time since `start`.
pub async fn until_all(
    bench: &Bench,
    policy: PolicyId,
    status: &str,
    n: usize,
    start: Instant,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<Duration> {
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:<26} [{bar:30}] {pos}/{len} {elapsed}")?
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    let target = i64::try_from(n)?;
    loop {
        let done = at_status(bench, policy, status).await?;
        bar.set_position(u64::try_from(done.max(0))?);
        if done >= target {
            let took = start.elapsed();
            bar.finish();
            return Ok(took);
        }
        if start.elapsed() > timeout {
            bar.abandon();
            anyhow::bail!("{what}: {done} of {n} printers {status} after {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The policy change through the API: `PUT …/policies/{p}` with every item at the value the
/// printers report. Returns the request's own latency.
pub async fn put_fixed_policy(
    bench: &Bench,
    plan: &Plan,
    policy: PolicyId,
) -> anyhow::Result<Duration> {
    let (client, base, csrf) = bench.client();
    let settings: serde_json::Map<String, serde_json::Value> = plan
        .items(true)
        .into_iter()
        .map(|(id, v)| Ok((id, serde_json::to_value(v)?)))
        .collect::<anyhow::Result<_>>()?;
    let body = serde_json::json!({
        "name": "Fleet baseline",
        "description": "60 settings of the mfp-color family (benchmark)",
        "mode": "assess",
        "settings": settings,
    });
    let t = Instant::now();
    let resp = client
        .put(format!(
            "{base}/api/v1/tenants/{}/policies/{policy}",
            bench.tenant()
        ))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await?;
    expect(resp, StatusCode::OK).await?;
    Ok(t.elapsed())
}

/// The database's part of a sweep without any assessment: every state row read (pages of
/// [`READ_PAGE`] by key) and as many rows of an assessment's size written, [`WRITE_BATCH`] per
/// transaction with multi-row inserts. Returns the time and the bytes read.
pub async fn baseline(bench: &Bench) -> anyhow::Result<(Duration, usize, u64)> {
    let pool = bench.store().raw_pool();
    let tenant = bench.tenant().to_string();
    let body: String =
        sqlx::query("SELECT items FROM device_compliance WHERE tenant_id = $1 LIMIT 1")
            .bind(&tenant)
            .fetch_one(pool)
            .await?
            .try_get(0)?;
    sqlx::query("CREATE TABLE bench_rows (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(pool)
        .await?;
    let t = Instant::now();
    let (mut after, mut rows, mut bytes) = (String::new(), 0usize, 0u64);
    loop {
        let page = sqlx::query(
            "SELECT device_id, state FROM device_state WHERE tenant_id = $1 AND device_id > $2 ORDER BY device_id LIMIT $3",
        )
        .bind(&tenant)
        .bind(&after)
        .bind(READ_PAGE)
        .fetch_all(pool)
        .await?;
        let ids: Vec<String> = page
            .iter()
            .map(|r| {
                bytes += r.try_get::<String, _>(1)?.len() as u64;
                r.try_get(0)
            })
            .collect::<Result<_, sqlx::Error>>()?;
        let Some(last) = ids.last() else { break };
        after = last.clone();
        rows += ids.len();
        for batch in ids.chunks(WRITE_BATCH) {
            let mut tx = pool.begin().await?;
            for part in batch.chunks(WRITE_ROWS) {
                let values: Vec<String> = (0..part.len())
                    .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                    .collect();
                let sql = format!(
                    "INSERT INTO bench_rows (id, body) VALUES {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for id in part {
                    q = q.bind(id.clone()).bind(body.clone());
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
    }
    let took = t.elapsed();
    sqlx::query("DROP TABLE bench_rows").execute(pool).await?;
    Ok((took, rows, bytes))
}

/// What the final check counted.
pub struct Verified {
    pub printers: i64,
    /// Rows assessed under the tenant's current policy epoch and compliant.
    pub current_and_compliant: i64,
    /// `GET …/compliance`: printers compliant, tenant-wide and in the small group.
    pub api_compliant: u64,
    pub api_group_compliant: u64,
    pub history_rows: i64,
}

/// Counts from the tables and through the API that every printer is assessed under the
/// current epoch and compliant.
pub async fn verify(bench: &Bench, small: GroupId) -> anyhow::Result<Verified> {
    let pool = bench.store().raw_pool();
    let tenant = bench.tenant().to_string();
    let count = |sql: &'static str| {
        let tenant = tenant.clone();
        async move {
            let n: i64 = sqlx::query(sql)
                .bind(tenant)
                .fetch_one(pool)
                .await?
                .try_get(0)?;
            anyhow::Ok(n)
        }
    };
    let printers =
        count("SELECT COUNT(*) FROM devices WHERE tenant_id = $1 AND removed_at IS NULL").await?;
    let current_and_compliant = count(
        "SELECT COUNT(*) FROM device_compliance c JOIN policy_epochs e ON e.tenant_id = c.tenant_id \
         WHERE c.tenant_id = $1 AND c.epoch = e.epoch AND c.status = 'compliant' AND c.non_compliant = 0 AND c.unknown = 0",
    )
    .await?;
    let history_rows =
        count("SELECT COUNT(*) FROM assessment_history WHERE tenant_id = $1").await?;
    let (client, base, _) = bench.client();
    let compliant = |path: String| async move {
        let v: serde_json::Value = client
            .get(format!("{base}/api/v1/tenants/{}{path}", bench.tenant()))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        anyhow::Ok(v["printers"]["compliant"].as_u64().unwrap_or(0))
    };
    Ok(Verified {
        printers,
        current_and_compliant,
        api_compliant: compliant("/compliance".into()).await?,
        api_group_compliant: compliant(format!("/groups/{small}/compliance")).await?,
        history_rows,
    })
}
