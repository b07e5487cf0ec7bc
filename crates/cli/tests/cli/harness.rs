//! Running the real binary: free ports, readiness, stopping with SIGTERM, output capture.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "a long and planted password 7431";

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_printfleet"));
    // Tests must not inherit an operator's configuration.
    for (k, _) in std::env::vars() {
        if k.starts_with("PRINTFLEET_") {
            c.env_remove(k);
        }
    }
    c
}

pub fn pg_url() -> String {
    std::env::var("PF_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process, stopped (SIGTERM, then kill) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback UDP port that was free a moment ago (e.g. for `PRINTFLEET_HEARTBEAT_LISTEN`).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Kills the process at once (SIGKILL: no shutdown, no flushing) and reaps it.
    pub fn kill9(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            panic!("the server had already exited");
        }
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Starts `printfleet serve` on a free loopback port (plain HTTP), logging to `log`.
pub async fn serve(data_dir: &Path, database_url: Option<&str>, log: &Path, level: &str) -> Server {
    serve_env(data_dir, database_url, log, level, &[]).await
}

/// [`serve`] with extra environment variables (they override the harness's own, e.g.
/// `PRINTFLEET_HEARTBEAT_LISTEN`).
pub async fn serve_env(
    data_dir: &Path,
    database_url: Option<&str>,
    log: &Path,
    level: &str,
    env: &[(&str, &str)],
) -> Server {
    let port = free_port();
    let mut c = bin();
    c.args([
        "serve",
        "--plain-http",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(data_dir)
    .env("PRINTFLEET_LOG__LEVEL", level)
    .env("PRINTFLEET_HEARTBEAT_LISTEN", "127.0.0.1:0")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        c.env(k, v);
    }
    if let Some(u) = database_url {
        c.args(["--database-url", u]);
    }
    let child = c.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut s = Server { child, base };
    wait_ready(&mut s, log).await;
    s
}

pub async fn wait_ready(s: &mut Server, log: &Path) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{}/readyz", s.base)).send().await {
            if r.status() == 200 {
                return;
            }
        }
        if let Ok(Some(status)) = s.child.try_wait() {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new, empty PostgreSQL database on the server of [`pg_url`], dropped (with whatever still
/// connects to it) when this is dropped, also when the test fails. Creating it fails (does not
/// skip) when PostgreSQL cannot be reached.
pub struct PgDatabase {
    pub url: String,
}

impl PgDatabase {
    pub async fn create(prefix: &str) -> Self {
        use sqlx::Connection;
        let admin_url = pg_url();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is needed at {admin_url} (set PF_TEST_DATABASE_URL): {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("cannot create a database at {admin_url}: {e}"));
        c.close().await.unwrap();
        let base = admin_url.rsplit_once('/').unwrap().0;
        Self {
            url: format!("{base}/{name}"),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        use sqlx::Connection;
        let Some((_, name)) = self.url.rsplit_once('/') else {
            return;
        };
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        // Best effort, on a runtime of its own (this may run while a test unwinds).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut c = sqlx::PgConnection::connect(&pg_url()).await.ok()?;
                let _ = sqlx::query(&drop).execute(&mut c).await;
                c.close().await.ok()
            })
        })
        .join();
    }
}

/// Runs `printfleet admin audit verify`; returns its exit code and its output.
pub fn audit_verify(data_dir: &Path, database_url: Option<&str>) -> (i32, String) {
    let mut c = bin();
    c.args(["admin", "audit", "verify", "--data-dir"])
        .arg(data_dir);
    if let Some(u) = database_url {
        c.args(["--database-url", u]);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs `printfleet admin bootstrap` with the password on stdin.
pub fn bootstrap(
    data_dir: &Path,
    database_url: Option<&str>,
    tenant: &str,
    email: &str,
    first: &str,
    last: &str,
) {
    let mut c = bin();
    c.args([
        "admin",
        "bootstrap",
        "--tenant-name",
        tenant,
        "--region",
        "eu",
        "--email",
        email,
        "--first-name",
        first,
        "--last-name",
        last,
        "--password-stdin",
        "--data-dir",
    ])
    .arg(data_dir)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(u) = database_url {
        c.args(["--database-url", u]);
    }
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "bootstrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("tenant") && !stdout.contains(PASSWORD),
        "{stdout}"
    );
}

/// Signs in; returns the client (with its cookie), the CSRF token and the first tenant id.
pub async fn sign_in(base: &str, email: &str, password: &str) -> (reqwest::Client, String, String) {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = c
        .post(format!("{base}/api/v1/auth/sign-in"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign-in of {email}");
    let v: serde_json::Value = r.json().await.unwrap();
    (
        c,
        v["csrf_token"].as_str().unwrap().to_string(),
        v["memberships"][0]["tenant_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Reads lines from a child's stdout until one contains `until`.
pub fn read_until(reader: &mut BufReader<std::process::ChildStdout>, until: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "output ended before {until:?}: {lines:?}");
        lines.push(line.trim_end().to_string());
        if line.contains(until) {
            return lines;
        }
    }
}
