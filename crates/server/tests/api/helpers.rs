//! `spawn_app()`: a server on 127.0.0.1 port 0 over its own database, with seeded people.

use printfleet_crypto::{AuditKey, MasterKey, PasswordParams};
use printfleet_domain::clock::{Clock, ManualClock};
use printfleet_domain::context::Me;
use printfleet_domain::tenant::Contact;
use printfleet_domain::user::Profile;
use printfleet_domain::{
    BuiltInRole, Ctx, GroupId, MembershipId, RoleRef, Scope, TenantId, UserId,
};
use printfleet_server::config::Config;
use printfleet_server::state::AppState;
use printfleet_server::Running;
use printfleet_storage::enrolment::Takeover;
use printfleet_storage::{Store, StoreKeys, StoreOptions};
use rand::rngs::OsRng;
use std::sync::Arc;

pub const PASSWORD: &str = "correct horse battery staple";

#[allow(dead_code)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_url() -> String {
    std::env::var("PF_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub struct Options {
    pub backend: Backend,
    pub tls: bool,
    /// More addresses to listen on (e.g. a second HTTPS port).
    pub extra_listen: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            tls: false,
            extra_listen: Vec::new(),
        }
    }
}

#[allow(dead_code)]
pub struct TestApp {
    pub base: String,
    pub heartbeat: Option<std::net::SocketAddr>,
    /// Every HTTP(S) address the server listens on.
    pub addrs: Vec<std::net::SocketAddr>,
    pub state: AppState,
    pub store: Store,
    pub clock: ManualClock,
    boot: Option<Boot>,
    running: Option<Running>,
}

impl TestApp {
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap()
    }

    /// Signs in over HTTP; returns a client holding the session cookie, and the CSRF token.
    pub async fn sign_in(&self, email: &str, password: &str) -> (reqwest::Client, String) {
        let c = self.client();
        let r = c
            .post(self.url("/api/v1/auth/sign-in"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "sign-in of {email}");
        let v: serde_json::Value = r.json().await.unwrap();
        (c, v["csrf_token"].as_str().unwrap().to_string())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        self.store.close().await;
    }

    /// Creates a person with `role` and `scope` in `tenant`; returns ids.
    pub async fn add_person(
        &self,
        tenant: TenantId,
        email: &str,
        role: RoleRef,
        scope: Scope,
    ) -> (UserId, MembershipId) {
        let hash = self.state.hasher.hash(PASSWORD, &mut OsRng).unwrap();
        let profile = Profile::parse(email, "Test", "Person", "en").unwrap();
        self.store
            .add_member_as_system(tenant, &profile, &hash, role, scope)
            .await
            .unwrap()
    }

    pub async fn ctx(&self, user: UserId, tenant: TenantId) -> Ctx {
        let me = Me {
            user,
            session: None,
            source: None,
        };
        printfleet_storage::resolver::tenant_ctx(&self.store, &me, tenant)
            .await
            .unwrap()
    }

    /// A session cookie value and its CSRF token, made directly in the store.
    pub async fn session(&self, user: UserId) -> (String, String) {
        let (_, secret) = self
            .store
            .session_create(user, self.state.settings.session, None, None)
            .await
            .unwrap();
        let secret = secret.into_inner();
        let csrf = self.state.csrf_token(&secret);
        (secret, csrf)
    }

    pub fn cookie_name(&self) -> &'static str {
        self.state.cookie_name()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(o: Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(printfleet_domain::clock::SystemClock.now_ms());
    let (url, pg_schema) = match o.backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.path().join("t.db").display()),
            None,
        ),
        Backend::Postgres => (
            pg_url(),
            Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
        ),
    };
    let master = MasterKey::generate(&mut OsRng);
    boot(Boot {
        o,
        dir,
        clock,
        url,
        pg_schema,
        master,
    })
    .await
}

/// What a server start needs; a restart reuses it (same database, keys and clock).
pub struct Boot {
    o: Options,
    dir: tempfile::TempDir,
    clock: ManualClock,
    url: String,
    pg_schema: Option<String>,
    master: MasterKey,
}

async fn boot(b: Boot) -> TestApp {
    let Boot {
        o,
        dir,
        clock,
        url,
        pg_schema,
        master,
    } = b;
    let dyn_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let keys = StoreKeys {
        masters: vec![master.clone()],
        audit: AuditKey::from_bytes(master.derive("audit-test")),
    };
    let store = Store::open(
        StoreOptions {
            url: url.clone(),
            pg_schema: pg_schema.clone(),
            max_connections: 8,
            checkpoint_path: dir.path().join("audit-checkpoints.json"),
        },
        keys,
        dyn_clock.clone(),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "cannot open the {:?} test database at {url}: {e}",
            o.backend
        )
    });
    let cfg = Config {
        listen: "127.0.0.1:0".into(),
        extra_listen: o.extra_listen.clone(),
        plain_http: !o.tls,
        heartbeat_listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let state = printfleet_server::build_state(
        &cfg,
        store.clone(),
        PasswordParams::INSECURE_FOR_TESTS,
        dyn_clock,
        master.derive("csrf"),
    )
    .unwrap();
    let running = printfleet_server::start(&cfg, state.clone()).await.unwrap();
    let scheme = if o.tls { "https" } else { "http" };
    let base = format!("{scheme}://{}", running.addrs[0]);
    let heartbeat = running.heartbeat_addr;
    let addrs = running.addrs.clone();
    TestApp {
        base,
        heartbeat,
        addrs,
        state,
        store,
        clock,
        boot: Some(Boot {
            o,
            dir,
            clock: ManualClock::new(0),
            url,
            pg_schema,
            master,
        }),
        running: Some(running),
    }
}

impl TestApp {
    /// The server's data directory (the SQLite database and its WAL live there).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.boot
            .as_ref()
            .map(|b| b.dir.path().to_path_buf())
            .unwrap_or_default()
    }

    /// Stops the server and starts it again on the same database and keys (new ports).
    pub async fn restart(mut self) -> TestApp {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
        self.store.close().await;
        let mut b = self.boot.take().unwrap();
        b.clock = self.clock.clone();
        boot(b).await
    }
}

/// Two tenants with one person per built-in role in A, a group-scoped Printer Admin, and an IT
/// Admin of tenant B.
pub struct World {
    /// A printer of tenant A in group Floor 2 (outside the scoped admin's groups).
    pub device: printfleet_domain::DeviceId,
    pub a: TenantId,
    pub b: TenantId,
    pub g1: GroupId,
    pub g2: GroupId,
    pub it_admin: UserId,
    pub printer_admin: UserId,
    pub printer_admin_membership: MembershipId,
    pub report_admin: UserId,
    pub scoped: UserId,
    pub other_tenant_admin: UserId,
    /// A Report Admin whom member routes act on.
    pub target_member: MembershipId,
}

pub async fn world(app: &TestApp) -> World {
    let contact = Contact::parse(
        Some("Casey Contact"),
        Some("casey@a.example"),
        Some("+1 555 0199"),
        Some("7 Contact Road"),
    )
    .unwrap();
    let a = app
        .store
        .create_tenant("Tenant A", "us", &contact, None)
        .await
        .unwrap();
    let b = app
        .store
        .create_tenant("Tenant B", "eu", &Contact::default(), None)
        .await
        .unwrap();
    let sys = Ctx::system(a);
    let g1 = app.store.group_create(&sys, "Floor 1").await.unwrap().id;
    let g2 = app.store.group_create(&sys, "Floor 2").await.unwrap().id;
    let (it_admin, _) = app
        .add_person(
            a,
            "it@a.example",
            RoleRef::BuiltIn(BuiltInRole::ItAdmin),
            Scope::Tenant,
        )
        .await;
    let (printer_admin, printer_admin_membership) = app
        .add_person(
            a,
            "printer@a.example",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Tenant,
        )
        .await;
    let (report_admin, _) = app
        .add_person(
            a,
            "report@a.example",
            RoleRef::BuiltIn(BuiltInRole::ReportAdmin),
            Scope::Tenant,
        )
        .await;
    let (scoped, _) = app
        .add_person(
            a,
            "scoped@a.example",
            RoleRef::BuiltIn(BuiltInRole::PrinterAdmin),
            Scope::Groups([g1].into_iter().collect()),
        )
        .await;
    let device = enrol_printer(app, a, "WORLD-0001").await;
    app.store.group_add_device(&sys, g2, device).await.unwrap();
    let (_, target_member) = app
        .add_person(
            a,
            "target@a.example",
            RoleRef::BuiltIn(BuiltInRole::ReportAdmin),
            Scope::Tenant,
        )
        .await;
    let (other_tenant_admin, _) = app
        .add_person(
            b,
            "it@b.example",
            RoleRef::BuiltIn(BuiltInRole::ItAdmin),
            Scope::Tenant,
        )
        .await;
    World {
        device,
        a,
        b,
        g1,
        g2,
        it_admin,
        printer_admin,
        printer_admin_membership,
        report_admin,
        scoped,
        other_tenant_admin,
        target_member,
    }
}

/// JSON body of a response, for assertions.
pub async fn json(r: reqwest::Response) -> serde_json::Value {
    r.json().await.unwrap()
}

/// Enrols a printer of `tenant` through the storage layer; returns its id.
pub async fn enrol_printer(
    app: &TestApp,
    tenant: TenantId,
    serial: &str,
) -> printfleet_domain::DeviceId {
    let (_, secret) = app
        .store
        .enrolment_token_create(&Ctx::system(tenant), "test", 3_600_000, None)
        .await
        .unwrap();
    let key = printfleet_protocol::KeyPair::generate(&mut printfleet_protocol::system_rng());
    let facts =
        printfleet_domain::device::DeviceFacts::parse(serial, "LaserJet Test", "1.0").unwrap();
    let device = app
        .store
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
        .device;
    // One report, so the printer has a state and a history like a real one.
    let report = printfleet_protocol::messages::CheckIn {
        seq: 1,
        taken_at_ms: app.store.now_ms() as u64,
        info: None,
        meters: Some(printfleet_protocol::messages::Meters {
            total_impressions: 10,
            ..Default::default()
        }),
        supplies: None,
        events: vec![],
        settings: Default::default(),
    };
    let catalogue =
        std::sync::Arc::new(printfleet_domain::catalogue::Catalogue::builtin().unwrap());
    let stored = app
        .store
        .check_in(tenant, device, report, catalogue)
        .await
        .unwrap();
    assert!(matches!(
        stored,
        printfleet_storage::telemetry::CheckInOutcome::Stored { .. }
    ));
    device
}

/// A remediating policy (telnet off) assigned to `group` at priority 5.
pub async fn policy_fixture(
    app: &TestApp,
    ctx: &printfleet_domain::Ctx,
    group: GroupId,
) -> printfleet_domain::PolicyId {
    use printfleet_domain::catalogue::SettingValue;
    use printfleet_domain::policy::{PolicyItem, PolicyItems, PolicyMode, PolicySecrets};
    let mut items = PolicyItems::new();
    items.insert(
        "network.telnet.enabled".into(),
        PolicyItem::Value {
            value: SettingValue::Bool(false),
        },
    );
    let p = app
        .store
        .policy_create(
            ctx,
            printfleet_storage::policies::PolicyWrite {
                name: "Fixture".into(),
                description: None,
                mode: PolicyMode::Remediate,
                items,
                secrets: PolicySecrets::default(),
                catalogue_version: "test".into(),
                enters_secrets: false,
            },
        )
        .await
        .unwrap();
    app.store.policy_assign(ctx, p.id, group, 5).await.unwrap();
    p.id
}
