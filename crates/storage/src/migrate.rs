//! Versioned migrations, one SQL text for both backends (`{BLOB}` and `{WITHOUT_ROWID}` are the
//! only differences),
//! applied in order at start, each in its own transaction.

use crate::{Backend, StoreError};
use sqlx::{AnyPool, Row};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/0001_foundation.sql"),
    ),
    (2, "devices", include_str!("../migrations/0002_devices.sql")),
    (
        3,
        "heartbeat",
        include_str!("../migrations/0003_heartbeat.sql"),
    ),
    (
        4,
        "telemetry_outbox",
        include_str!("../migrations/0004_telemetry_outbox.sql"),
    ),
    (
        5,
        "policies",
        include_str!("../migrations/0005_policies.sql"),
    ),
    (
        6,
        "scoped_counts",
        include_str!("../migrations/0006_scoped_counts.sql"),
    ),
    (
        7,
        "device_secrets",
        include_str!("../migrations/0007_device_secrets.sql"),
    ),
    (
        8,
        "rollouts",
        include_str!("../migrations/0008_rollouts.sql"),
    ),
    (
        9,
        "settings_at",
        include_str!("../migrations/0009_settings_at.sql"),
    ),
    (
        10,
        "heartbeat_window_log",
        include_str!("../migrations/0010_heartbeat_window_log.sql"),
    ),
    (
        11,
        "report_history",
        include_str!("../migrations/0011_report_history.sql"),
    ),
];

pub(crate) async fn apply(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    apply_through(pool, backend, i64::MAX).await
}

/// Applies the migrations up to version `last` (tests start from an older schema with it).
async fn apply_through(pool: &AnyPool, backend: Backend, last: i64) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    if let Some(max) = applied.last() {
        if *max > MIGRATIONS.last().map(|m| m.0).unwrap_or(0) {
            return Err(StoreError::Config(format!(
                "the database is at schema version {max}, newer than this printfleet knows; upgrade printfleet"
            )));
        }
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 <= last) {
        if applied.contains(version) {
            continue;
        }
        let (blob, without_rowid) = match backend {
            Backend::Sqlite => ("BLOB", " WITHOUT ROWID"),
            Backend::Postgres => ("BYTEA", ""),
        };
        let sql = sql
            .replace("{BLOB}", blob)
            .replace("{WITHOUT_ROWID}", without_rowid);
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(&sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(*version)
        .bind(*name)
        .bind(0_i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history stored by the older schema (a row per report and class) becomes one row per
    /// report holding each class's document, and nothing else is lost.
    #[tokio::test]
    async fn report_history_migration_keeps_every_document() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        apply_through(&pool, Backend::Sqlite, 10).await.unwrap();
        for (seq, class, body) in [
            (1, "meters", r#"{"total_impressions":7}"#),
            (1, "settings", r#"{"a":true}"#),
            (2, "meters", r#"{"total_impressions":9}"#),
            (2, "events", "[]"),
        ] {
            sqlx::query(
                "INSERT INTO telemetry_history (tenant_id, utc_day, device_id, seq, data_class, reported_at, received_at, body, key_version) \
                 VALUES ('t', 20000, 'd', $1, $2, 5, 6, $3, 1)",
            )
            .bind(seq as i64)
            .bind(class)
            .bind(body)
            .execute(&pool)
            .await
            .unwrap();
        }
        apply(&pool, Backend::Sqlite).await.unwrap();
        type Row = (i64, i64, Option<String>, Option<String>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT seq, utc_day, meters, events, settings FROM report_history ORDER BY seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            rows,
            [
                (
                    1,
                    20000,
                    Some(r#"{"total_impressions":7}"#.into()),
                    None,
                    Some(r#"{"a":true}"#.into())
                ),
                (
                    2,
                    20000,
                    Some(r#"{"total_impressions":9}"#.into()),
                    Some("[]".into()),
                    None
                ),
            ]
        );
        let old: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE name = 'telemetry_history'")
                .fetch_optional(&pool)
                .await
                .unwrap();
        assert_eq!(old, None, "the old table is gone");
    }
}
