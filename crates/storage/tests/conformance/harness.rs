//! The harness every check runs on: a fresh store (SQLite in a temp dir, or PostgreSQL in a schema
//! of its own), a manual clock, two tenants (A and B) each with one IT Admin, and helpers.

use printfleet_crypto::{AuditKey, MasterKey};
use printfleet_domain::clock::{Clock, ManualClock};
use printfleet_domain::context::Me;
use printfleet_domain::tenant::Contact;
use printfleet_domain::user::Profile;
use printfleet_domain::{
    BuiltInRole, Ctx, MembershipId, Permission, RoleRef, Scope, TenantId, UserId,
};
use printfleet_storage::{resolver, Backend, Store, StoreError, StoreKeys, StoreOptions};
use rand::rngs::OsRng;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// Any string is fine: the store only encrypts and returns it.
pub const HASH: &str = "$argon2id$fake";
pub const START_MS: i64 = 1_700_000_000_000;
pub const AUDIT_KEY: [u8; 32] = [7; 32];

pub fn pg_url() -> String {
    std::env::var("PF_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The URL with any password replaced, for messages.
fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// Connects once, quickly, so an unreachable server fails the test at once with its URL (the
/// store's pool would wait 30 seconds before giving up).
async fn probe_postgres(url: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let shown = shown_url(url);
    let hint = "set PF_TEST_DATABASE_URL; these tests fail rather than skip";
    match tokio::time::timeout(Duration::from_secs(10), sqlx::AnyConnection::connect(url)).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
        }
        Ok(Err(e)) => panic!("PostgreSQL at {shown} is unreachable ({hint}): {e}"),
        Err(_) => panic!("PostgreSQL at {shown} did not answer within 10 s ({hint})"),
    }
}

/// A person with a membership in one tenant.
#[derive(Clone, Debug)]
pub struct Person {
    pub user: UserId,
    pub membership: MembershipId,
    pub email: String,
    pub tenant: TenantId,
}

impl Person {
    pub fn me(&self) -> Me {
        Me {
            user: self.user,
            session: None,
            source: Some("192.0.2.1".into()),
        }
    }
}

pub struct Harness {
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub opts: StoreOptions,
    pub keys: StoreKeys,
    pub a: TenantId,
    pub b: TenantId,
    pub admin_a: Person,
    pub admin_b: Person,
    /// Holds the SQLite database (and the checkpoint file for both backends) for the test.
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = StoreOptions {
            url: format!("sqlite://{}", dir.path().join("t.db").display()),
            pg_schema: None,
            max_connections: 4,
            checkpoint_path: dir.path().join("audit-checkpoint.json"),
        };
        Self::open(dir, opts).await
    }

    /// Fails (never skips) when PostgreSQL cannot be reached.
    pub async fn postgres() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = pg_url();
        probe_postgres(&url).await;
        let opts = StoreOptions {
            url,
            pg_schema: Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
            max_connections: 4,
            checkpoint_path: dir.path().join("audit-checkpoint.json"),
        };
        Self::open(dir, opts).await
    }

    async fn open(dir: tempfile::TempDir, opts: StoreOptions) -> Self {
        let clock = Arc::new(ManualClock::new(START_MS));
        let keys = StoreKeys {
            masters: vec![MasterKey::generate(&mut OsRng)],
            audit: AuditKey::from_bytes(AUDIT_KEY),
        };
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let store = match Store::open(opts.clone(), keys.clone(), dyn_clock).await {
            Ok(s) => s,
            Err(e) => panic!(
                "cannot open the test store at {} (for PostgreSQL set PF_TEST_DATABASE_URL; \
                 these tests fail rather than skip): {e}",
                shown_url(&opts.url)
            ),
        };
        let contact = Contact::parse(
            Some("Ada Contact"),
            Some("ada.contact@tenant-a.example"),
            Some("+1 555 0100"),
            Some("1 Main Street, Springfield"),
        )
        .expect("contact");
        let a = store
            .create_tenant("Tenant A", "eu-west", &contact, None)
            .await
            .expect("tenant A");
        let b = store
            .create_tenant("Tenant B", "us", &Contact::default(), None)
            .await
            .expect("tenant B");
        let mut h = Self {
            store,
            clock,
            opts,
            keys,
            a,
            b,
            admin_a: Person {
                user: UserId::new_random(),
                membership: MembershipId::new_random(),
                email: String::new(),
                tenant: a,
            },
            admin_b: Person {
                user: UserId::new_random(),
                membership: MembershipId::new_random(),
                email: String::new(),
                tenant: b,
            },
            dir,
        };
        h.admin_a = h
            .add_builtin(a, "admin@tenant-a.example", BuiltInRole::ItAdmin)
            .await;
        h.admin_b = h
            .add_builtin(b, "admin@tenant-b.example", BuiltInRole::ItAdmin)
            .await;
        h
    }

    pub fn backend(&self) -> Backend {
        self.store.backend()
    }

    /// Closes the store and, on PostgreSQL, drops the test's schema.
    pub async fn finish(self) {
        if let Some(schema) = &self.opts.pg_schema {
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            sqlx::query(&drop)
                .execute(self.store.raw_pool())
                .await
                .expect("drop the test schema");
        }
        self.store.close().await;
    }

    /// Cleans up after a check even when it panicked, then fails the test with that panic.
    pub async fn finish_then(self, outcome: std::thread::Result<()>) {
        self.finish().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    pub fn advance(&self, ms: i64) {
        self.clock.advance_ms(ms);
    }

    pub fn dyn_clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Opens a second store on the same database and checkpoint file with other master keys.
    pub async fn reopen(&self, masters: Vec<MasterKey>) -> Result<Store, StoreError> {
        let keys = StoreKeys {
            masters,
            audit: AuditKey::from_bytes(AUDIT_KEY),
        };
        Store::open(self.opts.clone(), keys, self.dyn_clock()).await
    }

    /// Adds a member (a new person, or an existing one by e-mail) through the system path.
    pub async fn add(&self, tenant: TenantId, email: &str, role: RoleRef, scope: Scope) -> Person {
        let (user, membership) = self
            .store
            .add_member_as_system(tenant, &profile(email), HASH, role, scope)
            .await
            .expect("add_member_as_system");
        Person {
            user,
            membership,
            email: email.to_string(),
            tenant,
        }
    }

    pub async fn add_builtin(&self, tenant: TenantId, email: &str, role: BuiltInRole) -> Person {
        self.add(tenant, email, RoleRef::BuiltIn(role), Scope::Tenant)
            .await
    }

    /// The person's context in their tenant, through the resolver.
    pub async fn ctx(&self, p: &Person) -> Ctx {
        resolver::tenant_ctx(&self.store, &p.me(), p.tenant)
            .await
            .expect("tenant_ctx")
    }

    pub async fn ctx_a(&self) -> Ctx {
        self.ctx(&self.admin_a).await
    }

    pub async fn ctx_b(&self) -> Ctx {
        self.ctx(&self.admin_b).await
    }

    /// Adds a person with a new custom role holding `perms` (created by tenant's system context).
    pub async fn add_custom(
        &self,
        tenant: TenantId,
        email: &str,
        role_name: &str,
        perms: &[Permission],
        scope: Scope,
    ) -> Person {
        let role = self
            .store
            .role_create(
                &Ctx::system(tenant),
                role_name,
                perms.iter().copied().collect(),
            )
            .await
            .expect("role_create");
        self.add(tenant, email, role.reference, scope).await
    }
}

pub fn profile(email: &str) -> Profile {
    Profile::parse(email, "Test", "Person", "en").expect("profile")
}

#[track_caller]
pub fn assert_not_found<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_forbidden<T: Debug>(r: Result<T, StoreError>, p: Permission) {
    match r {
        Err(StoreError::Forbidden(got)) if got == p => {}
        other => panic!("expected Forbidden({p}), got {other:?}"),
    }
}

#[track_caller]
pub fn assert_conflict<T: Debug>(r: Result<T, StoreError>, code: &str) {
    match r {
        Err(StoreError::Conflict { code: got, .. }) if got == code => {}
        other => panic!("expected Conflict({code}), got {other:?}"),
    }
}

/// Expects a validation error naming `field`.
#[track_caller]
pub fn assert_invalid<T: Debug>(r: Result<T, StoreError>, field: &str) {
    match r {
        Err(StoreError::Invalid(v)) if v.field == field => {}
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

#[track_caller]
pub fn assert_scope_too_narrow<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::ScopeTooNarrow) => {}
        other => panic!("expected ScopeTooNarrow, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_session_required<T: Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::SessionRequired) => {}
        other => panic!("expected SessionRequired, got {other:?}"),
    }
}
