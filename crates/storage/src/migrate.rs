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
];

pub(crate) async fn apply(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
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
    for (version, name, sql) in MIGRATIONS {
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
