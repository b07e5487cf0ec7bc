//! `printfleet policy export / apply` against a real server over loopback, with API tokens:
//! export → apply → export is byte-identical, dry runs change nothing, invalid files are refused
//! with line and item, and a token that may only read policies cannot apply.

use crate::harness::{bin, bootstrap, serve, sign_in, Server, PASSWORD};
use serde_json::{json, Value};
use sha2::Digest;
use std::path::{Path, PathBuf};

const ADMIN_PASSWORD_SECRET: &str = "Correct-Horse-9";

struct Setup {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    server: Server,
    http: reqwest::Client,
    csrf: String,
    tenant: String,
    /// An IT Admin's API token.
    token: String,
    policy: String,
    ca_sha256: String,
}

/// A self-signed CA certificate (rcgen's default validity: decades) and its fingerprint.
fn ca() -> (String, String) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "Policy Code Test CA");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), hex::encode(sha2::Sha256::digest(cert.der())))
}

impl Setup {
    /// A server, a tenant, an IT Admin token and policy "Baseline" (version 1) with values, a
    /// secret and a CA certificate.
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let data = path.join("data");
        bootstrap(&data, None, "Acme", "ann@acme.example", "Ann", "Admin");
        let server = serve(&data, None, &path.join("server.log"), "info").await;
        let (http, csrf, tenant) = sign_in(&server.base, "ann@acme.example", PASSWORD).await;
        let mut s = Self {
            _dir: dir,
            dir: path,
            server,
            http,
            csrf,
            tenant,
            token: String::new(),
            policy: String::new(),
            ca_sha256: String::new(),
        };
        s.token = s.token_for(&s.http.clone(), &s.csrf.clone()).await;
        let (pem, sha) = ca();
        s.ca_sha256 = sha;
        let (status, p) = s
            .call(
                "POST",
                "policies",
                Some(json!({
                    "name": "Baseline", "description": "Every printer", "mode": "remediate",
                    "settings": {
                        "network.telnet.enabled": false,
                        "filesystem.stored_jobs.retention": 24,
                        "copier.color.access": "sign-in-required",
                        "security.ews.admin_password": {"secret": ADMIN_PASSWORD_SECRET},
                        "security.cert.ca": {"pem": pem},
                    }
                })),
            )
            .await;
        assert_eq!(status, 201, "{p}");
        s.policy = p["id"].as_str().unwrap().to_string();
        s
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/tenants/{}/{path}", self.server.base, self.tenant)
    }

    /// A request with the IT Admin's session.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }

    async fn token_for(&self, http: &reqwest::Client, csrf: &str) -> String {
        let r: Value = http
            .post(self.url("api-tokens"))
            .header("x-csrf-token", csrf)
            .json(&json!({"name": "policy-as-code"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["secret"].as_str().unwrap().to_string()
    }

    /// The policy's current version as the API shows it.
    async fn current(&self, policy: &str) -> Value {
        let (status, p) = self.call("GET", &format!("policies/{policy}"), None).await;
        assert_eq!(status, 200, "{p}");
        p
    }

    /// Runs `printfleet policy ARGS… --server --tenant` with `token` in PRINTFLEET_TOKEN;
    /// returns exit code, stdout, stderr.
    fn run(&self, token: &str, args: &[&str]) -> (i32, String, String) {
        let out = bin()
            .arg("policy")
            .args(args)
            .args(["--server", &self.server.base, "--tenant", &self.tenant])
            .env("PRINTFLEET_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    fn export(&self, policy: &str) -> String {
        let (code, out, err) = self.run(&self.token, &["export", "--policy", policy]);
        assert_eq!(code, 0, "{err}");
        out
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in {text}");
    text.replacen(from, to, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_apply_export_is_identical_and_dry_run_shows_the_difference() {
    let s = Setup::new().await;
    let exported = s.export("Baseline");
    // References only: no secret value, no certificate.
    assert!(
        exported.contains("\"security.ews.admin_password\" = { secret = \"set\" }"),
        "{exported}"
    );
    assert!(
        exported.contains(&format!(
            "\"security.cert.ca\" = {{ certificate = \"sha256:{}\" }}",
            s.ca_sha256
        )),
        "{exported}"
    );
    assert!(!exported.contains(ADMIN_PASSWORD_SECRET) && !exported.contains("BEGIN"));
    // By id and into a file, the same bytes.
    let file = s.dir.join("by-id.toml");
    let (code, _, err) = s.run(
        &s.token,
        &[
            "export",
            "--policy",
            &s.policy,
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), exported);

    // Applying the export unchanged: nothing to do, no new version.
    let f1 = s.write("baseline.toml", &exported);
    for args in [vec!["apply", &f1, "--dry-run"], vec!["apply", &f1]] {
        let (code, out, err) = s.run(&s.token, &args);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("(version 1): no changes"), "{out}");
    }
    assert_eq!(s.current(&s.policy).await["version"], 1);

    // An edited file: the dry run lists every difference and changes nothing.
    let edited = replace(&exported, "mode = \"remediate\"", "mode = \"assess\"");
    let edited = replace(
        &edited,
        "\"copier.color.access\" = \"sign-in-required\"\n",
        "",
    );
    let edited = replace(
        &edited,
        "\"filesystem.stored_jobs.retention\" = 24",
        "\"filesystem.stored_jobs.retention\" = 48",
    );
    let edited = replace(
        &edited,
        "\"network.telnet.enabled\"",
        "\"network.lpd.enabled\" = false\n\"network.telnet.enabled\"",
    );
    let f2 = s.write("edited.toml", &edited);
    let (code, out, err) = s.run(&s.token, &["apply", &f2, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let listed: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(
        listed,
        [
            "  changed  mode: \"remediate\" -> \"assess\"",
            "  removed  copier.color.access (was \"sign-in-required\")",
            "  changed  filesystem.stored_jobs.retention: 24 -> 48",
            "  added    network.lpd.enabled = false",
        ],
        "{out}"
    );
    assert!(
        out.contains("(version 1): 4 change(s)") && out.contains("dry run"),
        "{out}"
    );
    let before = s.current(&s.policy).await;
    assert_eq!(before["version"], 1);

    // Applied: version 2, the secret and the certificate carried over, and the export is the
    // file, byte for byte.
    let (code, out, err) = s.run(&s.token, &["apply", &f2]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("is now at version 2"), "{out}");
    let after = s.current(&s.policy).await;
    assert_eq!(after["version"], 2);
    assert_eq!(after["mode"], "assess");
    for kept in ["security.ews.admin_password", "security.cert.ca"] {
        assert_eq!(after["settings"][kept], before["settings"][kept], "{kept}");
    }
    assert_eq!(s.export("Baseline"), edited);

    // Into a fresh policy (another name): a secret reference has nothing to keep there and a
    // certificate cannot travel in a file — both refused, naming line and item.
    let copy = replace(&edited, "name = \"Baseline\"", "name = \"Baseline copy\"");
    let f3 = s.write("copy.toml", &copy);
    let (code, _, err) = s.run(&s.token, &["apply", &f3]);
    assert_eq!(code, 1, "{err}");
    let cert_line = copy
        .lines()
        .position(|l| l.contains("security.cert.ca"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("line {cert_line}: security.cert.ca: ")),
        "{err}"
    );
    let copy = replace(
        &copy,
        &format!(
            "\"security.cert.ca\" = {{ certificate = \"sha256:{}\" }}\n",
            s.ca_sha256
        ),
        "",
    );
    let f3 = s.write("copy.toml", &copy);
    let (code, _, err) = s.run(&s.token, &["apply", &f3]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("security.ews.admin_password: the current version has no secret"),
        "{err}"
    );
    // … and accepted with the secret's value from a file, which is never printed.
    let secret_file = s.write("admin-password", "Another-Horse-7\n");
    let secret_arg = format!("security.ews.admin_password={secret_file}");
    let (code, out, err) = s.run(
        &s.token,
        &["apply", &f3, "--secret", &secret_arg, "--dry-run"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("does not exist: it will be created"), "{out}");
    assert!(
        out.contains("  added    security.ews.admin_password = { secret = \"set\" } (new value)"),
        "{out}"
    );
    let (code, out, err) = s.run(&s.token, &["apply", &f3, "--secret", &secret_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("created: policy \"Baseline copy\"") && out.contains("version 1"),
        "{out}"
    );
    assert!(!out.contains("Another-Horse") && !err.contains("Another-Horse"));
    assert_eq!(s.export("Baseline copy"), copy);
    // The original is untouched.
    assert_eq!(s.current(&s.policy).await["version"], 2);
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_files_and_tokens_that_may_not_write_are_refused_and_nothing_changes() {
    let s = Setup::new().await;
    let exported = s.export("Baseline");
    let check_refused = |name: &str, text: &str, expect: &str| {
        let f = s.write(name, text);
        let (code, out, err) = s.run(&s.token, &["apply", &f]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(err.contains(expect), "{name}: expected {expect:?} in {err}");
        assert!(err.contains(&f), "{name}: the file is named: {err}");
    };
    let telnet = line_of(&exported, "network.telnet.enabled");
    check_refused(
        "syntax.toml",
        &replace(
            &exported,
            "\"network.telnet.enabled\" = false",
            "\"network.telnet.enabled\" = = false",
        ),
        &format!("line {telnet}: network.telnet.enabled: not valid"),
    );
    check_refused(
        "unknown.toml",
        &replace(
            &exported,
            "\"network.telnet.enabled\"",
            "\"network.telnet.enabld\"",
        ),
        &format!("line {telnet}: network.telnet.enabld: is not a setting of the catalogue"),
    );
    let retention = line_of(&exported, "filesystem.stored_jobs.retention");
    check_refused(
        "range.toml",
        &replace(&exported, "retention\" = 24", "retention\" = 9000"),
        &format!(
            "line {retention}: filesystem.stored_jobs.retention: must be an integer from 0 to 720"
        ),
    );
    let secret = line_of(&exported, "security.ews.admin_password");
    check_refused(
        "secret-value.toml",
        &replace(
            &exported,
            "{ secret = \"set\" }",
            "{ secret = \"Typed-In-By-Mistake\" }",
        ),
        &format!("line {secret}: security.ews.admin_password: a secret is only referenced"),
    );
    assert_eq!(s.current(&s.policy).await["version"], 1);
    assert_eq!(s.export("Baseline"), exported);

    // A person whose role may read policies but not change them: their token can export and
    // dry-run, and applying is refused by the server.
    let (status, role) = s
        .call(
            "POST",
            "roles",
            Some(json!({"name": "Policy reviewers", "permissions": ["policies.read"]})),
        )
        .await;
    assert_eq!(status, 201, "{role}");
    let (status, inv) = s
        .call(
            "POST",
            "invitations",
            Some(json!({"email": "rita@acme.example", "role": role["id"]})),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/invitations/accept", s.server.base))
        .json(&json!({"token": inv["token"], "first_name": "Rita", "last_name": "Reviewer", "password": "a long reviewer password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (rita, rita_csrf, _) = sign_in(
        &s.server.base,
        "rita@acme.example",
        "a long reviewer password 1",
    )
    .await;
    let reader = s.token_for(&rita, &rita_csrf).await;
    let changed = replace(&exported, "retention\" = 24", "retention\" = 48");
    let f = s.write("changed.toml", &changed);
    assert_eq!(
        s.run(&reader, &["export", "--policy", "Baseline"]).1,
        exported
    );
    let (code, out, err) = s.run(&reader, &["apply", &f, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("filesystem.stored_jobs.retention: 24 -> 48"),
        "{out}"
    );
    let (code, _, err) = s.run(&reader, &["apply", &f]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("403") && err.contains("policies.manage"),
        "{err}"
    );
    // A token that is not one at all.
    let (code, _, err) = s.run("pf_not_a_real_token", &["apply", &f, "--dry-run"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
    // No token: refused before any request.
    let out = bin()
        .args([
            "policy",
            "apply",
            &f,
            "--server",
            &s.server.base,
            "--tenant",
            &s.tenant,
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PRINTFLEET_TOKEN"));
    assert_eq!(s.current(&s.policy).await["version"], 1);
}

/// HTTPS with the server's self-signed certificate (as `printfleet demo --tls`), trusted with
/// --ca-file, and the token from --token-file; plain http to another machine is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_ca_file_and_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    bootstrap(&data, None, "Tls", "tia@tls.example", "Tia", "Admin");
    let port = crate::harness::free_port();
    let log = dir.path().join("server.log");
    let mut child = bin()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("PRINTFLEET_HEARTBEAT_LISTEN", "127.0.0.1:0")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let cert = data.join("tls-cert.pem");
    let base = format!("https://127.0.0.1:{port}");
    wait_tls(&base, &cert, &mut child, &log).await;
    let mut server = Server {
        child,
        base: base.clone(),
    };
    let http = tls_client(&cert);
    let me: Value = http
        .post(format!("{base}/api/v1/auth/sign-in"))
        .json(&json!({"email": "tia@tls.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = me["csrf_token"].as_str().unwrap();
    let tenant = me["memberships"][0]["tenant_id"].as_str().unwrap();
    let tok: Value = http
        .post(format!("{base}/api/v1/tenants/{tenant}/api-tokens"))
        .header("x-csrf-token", csrf)
        .json(&json!({"name": "tls"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let token_file = write("token", &format!("{}\n", tok["secret"].as_str().unwrap()));
    let body = "name = \"Over TLS\"\nmode = \"assess\"\n\n[settings]\n\"network.telnet.enabled\" = false\n";
    let file = write("tls.toml", body);
    let run = |args: &[&str]| {
        let out = bin()
            .arg("policy")
            .args(args)
            .args([
                "--server",
                &base,
                "--tenant",
                tenant,
                "--token-file",
                &token_file,
            ])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Without the certificate the server is not trusted.
    let (code, _, err) = run(&["apply", &file]);
    assert_eq!(code, 2, "{err}");
    let ca = cert.display().to_string();
    let (code, out, err) = run(&["apply", &file, "--ca-file", &ca]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created"), "{out}");
    let (code, out, err) = run(&["export", "--policy", "Over TLS", "--ca-file", &ca]);
    assert_eq!(code, 0, "{err}");
    // The export is the file plus the header comment.
    assert!(out.starts_with('#') && out.ends_with(body), "{out}");
    server.stop();
    // The token never crosses a network in clear.
    let out = bin()
        .args([
            "policy",
            "export",
            "--policy",
            "x",
            "--server",
            "http://192.0.2.1:8080",
            "--tenant",
            tenant,
        ])
        .env("PRINTFLEET_TOKEN", "pf_x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
}

fn tls_client(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .cookie_store(true)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

async fn wait_tls(base: &str, cert: &Path, child: &mut std::process::Child, log: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if cert.exists() {
            if let Ok(r) = tls_client(cert).get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the TLS server did not become ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
