#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The storage conformance suite: every check runs unchanged against SQLite (a fresh temp dir per
//! test) and PostgreSQL (`PF_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`,
//! a fresh schema per test). The PostgreSQL tests fail, never skip, when the server is unreachable.

/// `check_xxx => sqlite_xxx, postgres_xxx;` makes one `#[tokio::test]` per backend that runs
/// `check_xxx(&Harness)`.
macro_rules! conformance {
    ($($check:ident => $sqlite:ident, $postgres:ident;)*) => {
        $(
            #[tokio::test]
            async fn $sqlite() {
                let h = $crate::harness::Harness::sqlite().await;
                let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe($check(&h))).await;
                h.finish_then(outcome).await;
            }

            #[tokio::test]
            async fn $postgres() {
                let h = $crate::harness::Harness::postgres().await;
                let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe($check(&h))).await;
                h.finish_then(outcome).await;
            }
        )*
    };
}

mod audit;
mod devices;
mod groups;
mod harness;
mod invitations;
mod keys;
mod members;
mod policies;
mod roles;
mod sessions;
mod tamper;
mod telemetry;
mod tenants;
mod tokens;
