//! `printfleet secret`: break-glass for unique per-printer secrets (docs/policies.md, "Unique
//! per-printer secrets and break-glass"). `reveal` signs in as the person (an API token cannot
//! re-authenticate), reveals one printer's generated value with a reason, and signs out;
//! `reveals` lists the break-glass feed with an API token.

use crate::policy::client::{http_client, ApiArgs, Client};
use anyhow::Context;
use clap::{Args, Subcommand};
use printfleet_wire as wire;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum Task {
    /// Reveal one printer's generated value (audited; the value is rotated right after). Signs
    /// in as --email: the password comes from --password-file or a prompt on the terminal.
    Reveal(RevealArgs),
    /// The break-glass feed: recent reveals, newest first (never the values), with an API
    /// token (PRINTFLEET_TOKEN or --token-file).
    Reveals {
        #[command(flatten)]
        api: ApiArgs,
        /// At most this many reveals (1–500).
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
    },
}

#[derive(Args)]
pub struct RevealArgs {
    /// The server's base URL, e.g. https://printfleet.example.com (plain http only on loopback).
    #[arg(long, value_name = "URL")]
    server: String,
    /// The tenant's id.
    #[arg(long, value_name = "ID")]
    tenant: String,
    /// The printer's id.
    #[arg(long, value_name = "ID")]
    device: String,
    /// The generated setting, e.g. security.ews.admin_password.
    #[arg(long, value_name = "SETTING")]
    setting: String,
    /// Your own e-mail address: you sign in and re-authenticate as this person.
    #[arg(long, value_name = "EMAIL")]
    email: String,
    /// Why the value is needed (recorded in the audit log and the break-glass feed).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Read your password from this file (first line) instead of a prompt on the terminal.
    /// Never from the command line or the environment.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Trust this certificate (PEM) for the server.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

pub async fn run(task: Task) -> anyhow::Result<ExitCode> {
    let r = match task {
        Task::Reveal(args) => reveal(&args).await,
        Task::Reveals { api, limit } => reveals(&api, limit).await,
    };
    match r {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("printfleet: {e:#}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The password: the first line of `file`, or typed at the terminal without echo.
fn password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let raw = match file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("--password-file: cannot read {}", f.display()))?,
        None => prompt("Password (re-authentication): ")?,
    };
    let p = raw.lines().next().unwrap_or_default().to_string();
    anyhow::ensure!(!p.is_empty(), "the password is empty");
    Ok(p)
}

#[cfg(unix)]
fn prompt(text: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, Write};
    let tty = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .context("no terminal to ask for the password: give --password-file FILE")
    };
    let stty = |arg: &str| -> anyhow::Result<()> {
        let ok = std::process::Command::new("stty")
            .arg(arg)
            .stdin(tty()?)
            .status()
            .is_ok_and(|s| s.success());
        anyhow::ensure!(
            ok,
            "cannot turn off echo on the terminal: give --password-file FILE"
        );
        Ok(())
    };
    let mut out = tty()?;
    write!(out, "{text}")?;
    out.flush()?;
    stty("-echo")?;
    let mut line = String::new();
    let read = std::io::BufReader::new(tty()?).read_line(&mut line);
    let restored = stty("echo");
    let _ = writeln!(out);
    read.context("reading the password from the terminal")?;
    restored?;
    Ok(line)
}

#[cfg(not(unix))]
fn prompt(_text: &str) -> anyhow::Result<String> {
    anyhow::bail!("cannot prompt for a password here: give --password-file FILE")
}

/// The server's error answer: status, `code`, `message`.
async fn failure(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let s = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    (status, s("code"), s("message"))
}

async fn reveal(a: &RevealArgs) -> anyhow::Result<()> {
    let (http, server) = http_client(&a.server, a.ca_file.as_deref())?;
    let tenant: printfleet_domain::TenantId =
        a.tenant.parse().context("--tenant: not a tenant id")?;
    anyhow::ensure!(!a.reason.trim().is_empty(), "--reason: give a reason");
    let password = printfleet_domain::Redacted::new(password(a.password_file.as_deref())?);

    // Sign in: the session cookie and its CSRF token.
    let r = http
        .post(format!("{server}/api/v1/auth/sign-in"))
        .json(&serde_json::json!({"email": a.email, "password": password.expose()}))
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    if !r.status().is_success() {
        let (status, _, message) = failure(r).await;
        anyhow::bail!(match status {
            401 =>
                "re-authentication failed: the server refused the e-mail address or password (401)"
                    .to_string(),
            429 => format!("too many attempts (429): {message}"),
            s => format!("sign-in refused ({s}): {message}"),
        });
    }
    let cookie = r
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|c| c.starts_with("pf_session=") || c.starts_with("__Host-pf_session="))
        .map(str::to_string)
        .context("the server's sign-in answer has no session cookie")?;
    let session: wire::SessionView = r.json().await.context("the sign-in answer")?;
    let cookie = printfleet_domain::Redacted::new(cookie);

    let url = format!(
        "{server}/api/v1/tenants/{tenant}/devices/{}/secrets/{}/reveal",
        a.device, a.setting
    );
    let result = http
        .post(url)
        .header(reqwest::header::COOKIE, cookie.expose())
        .header("x-csrf-token", &session.csrf_token)
        .json(&serde_json::json!({"password": password.expose(), "reason": a.reason}))
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"));

    // Sign out whatever the answer; a failure here only leaves the session to expire.
    let out = http
        .post(format!("{server}/api/v1/auth/sign-out"))
        .header(reqwest::header::COOKIE, cookie.expose())
        .header("x-csrf-token", &session.csrf_token)
        .send()
        .await;
    if !out.is_ok_and(|r| r.status().is_success()) {
        eprintln!("printfleet: warning: signing out failed; the session ends when it expires");
    }

    let r = result?;
    if !r.status().is_success() {
        let (status, code, message) = failure(r).await;
        anyhow::bail!(match (status, code.as_str()) {
            (403, "reauthentication_failed") => format!("re-authentication failed (403): {message}"),
            (403, _) => format!("not allowed (403): {message}"),
            (404, _) => format!(
                "no generated value for printer {} and setting {} (404): check --device, --setting and --tenant",
                a.device, a.setting
            ),
            (429, _) => format!("too many attempts (429): {message}; wait and try again"),
            (s, _) => format!("the server refused ({s}): {message}"),
        });
    }
    let v: wire::RevealedSecret = r.json().await.context("the revealed value")?;
    println!("value: {}", v.value);
    println!("generation: {}", v.generation);
    println!("confirmed: {}", v.confirmed);
    if let Some(last) = &v.last_confirmed_value {
        println!("last_confirmed_value: {last}");
    }
    if let Some(g) = v.last_confirmed_generation {
        println!("last_confirmed_generation: {g}");
    }
    eprintln!(
        "printfleet: warning: this reveal was audited and listed in the break-glass feed; the printer's value will be rotated now"
    );
    Ok(())
}

async fn reveals(api: &ApiArgs, limit: u32) -> anyhow::Result<()> {
    let client = Client::new(api)?;
    let feed: wire::BreakGlassFeed = serde_json::from_value(
        client
            .get_json(&format!("break-glass?limit={limit}"))
            .await?,
    )
    .context("the break-glass feed")?;
    if feed.reveals.is_empty() {
        println!("no reveals");
    }
    for r in feed.reveals {
        println!(
            "{}  {}  {}  {}  generation {}  {}  reason: {}",
            r.at_ms,
            r.actor,
            r.device,
            r.setting_id,
            r.generation,
            if r.rotated_since {
                "rotated since"
            } else {
                "not rotated yet"
            },
            r.reason
        );
    }
    Ok(())
}
