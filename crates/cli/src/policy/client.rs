//! The policy commands' API client: one tenant of one server, an API token, and the server's
//! error answers turned into [`ApiFailure`]s that keep the offending `field` (so a file error
//! found only by the server can still be reported with its line).

use anyhow::Context;
use printfleet_domain::{PolicyId, Redacted};
use printfleet_wire as wire;
use std::path::PathBuf;
use std::time::Duration;

/// Where and as whom the commands talk to the API. The token never comes from the command line
/// (it would show in `ps` and shell history): `PRINTFLEET_TOKEN`, or `--token-file`.
#[derive(clap::Args, Clone, Debug)]
pub struct ApiArgs {
    /// The server's base URL, e.g. https://printfleet.example.com (plain http only on loopback).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The tenant's id.
    #[arg(long, value_name = "ID")]
    pub tenant: String,
    /// Read the API token (pf_…) from this file instead of the PRINTFLEET_TOKEN variable.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust this certificate (PEM) for the server, e.g. the demo's self-signed
    /// printfleet-demo/tls-cert.pem.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// An answer other than success, as the server gave it.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub message: String,
    pub field: Option<String>,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            401 => write!(f, "the server refused the API token (401): {}; check PRINTFLEET_TOKEN or --token-file", self.message),
            403 => write!(f, "the API token may not do this (403): {}", self.message),
            404 => write!(f, "not found (404): check --tenant and the policy"),
            s => write!(f, "the server refused ({s}): {}", self.message),
        }
    }
}

impl std::error::Error for ApiFailure {}

pub struct Client {
    http: reqwest::Client,
    /// `…/api/v1/tenants/{tenant}`.
    base: String,
    token: Redacted<String>,
}

fn token(args: &ApiArgs) -> anyhow::Result<Redacted<String>> {
    let raw = match &args.token_file {
        Some(f) => std::fs::read_to_string(f)
            .with_context(|| format!("--token-file: cannot read {}", f.display()))?,
        None => std::env::var("PRINTFLEET_TOKEN").map_err(|_| {
            anyhow::anyhow!("no API token: set PRINTFLEET_TOKEN or give --token-file FILE")
        })?,
    };
    let t = raw.trim();
    anyhow::ensure!(!t.is_empty(), "the API token is empty");
    Ok(Redacted::new(t.to_string()))
}

/// An HTTP client for `server` (its base URL without a trailing `/`), trusting `ca_file` if
/// given; plain http only to loopback, as credentials would cross the network in clear. Shared
/// with `printfleet secret`.
pub fn http_client(
    server: &str,
    ca_file: Option<&std::path::Path>,
) -> anyhow::Result<(reqwest::Client, String)> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("printfleet-cli/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca)
            .with_context(|| format!("--ca-file: cannot read {}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("--ca-file: {} is not a PEM certificate", ca.display()))?;
        b = b.add_root_certificate(cert);
    }
    let url = reqwest::Url::parse(server).context("--server: not a URL")?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    anyhow::ensure!(
        url.scheme() == "https" || (url.scheme() == "http" && loopback),
        "--server: must be an https:// URL (plain http only on loopback)"
    );
    Ok((
        b.build().context("HTTP client")?,
        server.trim_end_matches('/').to_string(),
    ))
}

impl Client {
    pub fn new(args: &ApiArgs) -> anyhow::Result<Self> {
        let (http, server) = http_client(&args.server, args.ca_file.as_deref())?;
        let tenant: printfleet_domain::TenantId =
            args.tenant.parse().context("--tenant: not a tenant id")?;
        Ok(Self {
            http,
            base: format!("{server}/api/v1/tenants/{tenant}"),
            token: token(args)?,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let r = req
            .bearer_auth(self.token.expose())
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        Err(ApiFailure {
            status,
            message: body["message"].as_str().unwrap_or("no details").to_string(),
            field: body["field"].as_str().map(str::to_string),
        }
        .into())
    }

    pub async fn policies(&self) -> anyhow::Result<Vec<wire::PolicyView>> {
        let r = self
            .send(self.http.get(format!("{}/policies", self.base)))
            .await?;
        r.json().await.context("the list of policies")
    }

    /// A policy by id, or else by its (unique) name; `None` when there is none.
    pub async fn find(&self, id_or_name: &str) -> anyhow::Result<Option<wire::PolicyView>> {
        let id: Option<PolicyId> = id_or_name.parse().ok();
        Ok(self
            .policies()
            .await?
            .into_iter()
            .find(|p| Some(p.id) == id || p.name == id_or_name))
    }

    /// The current version as a policy file.
    pub async fn export(&self, id: PolicyId) -> anyhow::Result<String> {
        let r = self
            .send(self.http.get(format!("{}/policies/{id}/export", self.base)))
            .await?;
        r.text().await.context("the exported policy")
    }

    pub async fn create(&self, body: &serde_json::Value) -> anyhow::Result<wire::PolicyView> {
        let r = self
            .send(self.http.post(format!("{}/policies", self.base)).json(body))
            .await?;
        r.json().await.context("the created policy")
    }

    /// The server's dry run of saving `body` as the policy's next version: totals, and the
    /// first `limit` printers that would change.
    pub async fn dry_run(
        &self,
        id: PolicyId,
        body: &serde_json::Value,
        limit: u32,
    ) -> anyhow::Result<wire::DryRunView> {
        let url = format!("{}/policies/{id}/dry-run?limit={limit}", self.base);
        let r = self.send(self.http.post(url).json(body)).await?;
        r.json().await.context("the dry run's answer")
    }

    /// GET `path` (under the tenant) as JSON (`printfleet rollout`).
    pub async fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let r = self
            .send(self.http.get(format!("{}/{path}", self.base)))
            .await?;
        r.json()
            .await
            .with_context(|| format!("the answer to GET {path}"))
    }

    /// POST `body` to `path` (under the tenant); the answer as JSON (`printfleet rollout`).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let r = self
            .send(self.http.post(format!("{}/{path}", self.base)).json(body))
            .await?;
        r.json()
            .await
            .with_context(|| format!("the answer to POST {path}"))
    }

    pub async fn update(
        &self,
        id: PolicyId,
        body: &serde_json::Value,
    ) -> anyhow::Result<wire::PolicySaved> {
        let r = self
            .send(
                self.http
                    .put(format!("{}/policies/{id}", self.base))
                    .json(body),
            )
            .await?;
        r.json().await.context("the saved policy")
    }
}
