//! Configuration: a TOML file, then `PRINTFLEET_*` environment variables on top (nested keys
//! with `__`, e.g. `PRINTFLEET_AUTH__SESSION_IDLE_MINUTES`). Unknown keys are errors; every
//! value is checked at start-up and a bad one stops start-up naming the key. Every key is
//! documented in `docs/configuration.md`.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use printfleet_domain::Redacted;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port the HTTPS (or plain HTTP) API listens on.
    pub listen: String,
    /// Further addresses to listen on (e.g. port 631 as the printers' fallback).
    pub extra_listen: Vec<String>,
    /// UDP address of the printers' heartbeat (doorbell) service; empty turns it off.
    pub heartbeat_listen: String,
    /// Directory for the SQLite database, key files, certificate and audit checkpoints.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://…`; empty means SQLite in `data_dir`.
    pub database_url: String,
    pub database_max_connections: u32,
    /// Serve plain HTTP instead of HTTPS. Only for loopback demos and tests.
    pub plain_http: bool,
    /// PEM certificate chain and key; when both are empty a self-signed pair is made in `data_dir`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The URL people use to reach this server (for invitation links); derived from `listen`
    /// when empty.
    pub public_url: String,
    /// The master key as base64 (32 bytes). Prefer the key file; this exists for environments
    /// that inject secrets as variables (`PRINTFLEET_MASTER_KEY`).
    pub master_key: Option<Redacted<String>>,
    /// Where the master key is read from (created with mode 0600 when missing).
    pub master_key_file: Option<PathBuf>,
    /// Where the audit MAC key is read from (created with mode 0600 when missing).
    pub audit_key_file: Option<PathBuf>,
    pub max_body_bytes: usize,
    pub auth: AuthConfig,
    pub log: LogConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    pub invitation_ttl_hours: i64,
    /// Failed sign-ins (per account) before the delays start.
    pub lockout_threshold: u32,
    /// Failed sign-ins per source address before the delays start.
    pub lockout_threshold_per_address: u32,
    /// First delay, doubled with each further failure up to `lockout_max_seconds`.
    pub lockout_base_seconds: i64,
    pub lockout_max_seconds: i64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `printfleet=debug,info`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8443".into(),
            extra_listen: Vec::new(),
            heartbeat_listen: "127.0.0.1:9930".into(),
            data_dir: PathBuf::from("printfleet-data"),
            database_url: String::new(),
            database_max_connections: 8,
            plain_http: false,
            tls_cert: None,
            tls_key: None,
            public_url: String::new(),
            master_key: None,
            master_key_file: None,
            audit_key_file: None,
            max_body_bytes: 64 * 1024,
            auth: AuthConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            invitation_ttl_hours: 72,
            lockout_threshold: 5,
            lockout_threshold_per_address: 20,
            lockout_base_seconds: 1,
            lockout_max_seconds: 900,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// Command-line values that override the file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub plain_http: Option<bool>,
    pub database_url: Option<String>,
}

/// `PRINTFLEET_*` variables that belong to the command-line client, not the configuration
/// (lower case, as figment compares them).
const CLIENT_VARIABLES: [&str; 1] = ["token"];

impl Config {
    /// Defaults, then the file (if given), then `PRINTFLEET_*` variables, then command-line flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(bad("--config", format!("{} does not exist", f.display())));
            }
            fig = fig.merge(Toml::file(f));
        }
        // PRINTFLEET_TOKEN is the API token of the `printfleet policy` commands, not a key
        // here: an operator's shell that holds it must still start the server.
        fig = fig.merge(
            Env::prefixed("PRINTFLEET_")
                .ignore(&CLIENT_VARIABLES)
                .split("__"),
        );
        if let Some(v) = &overrides.listen {
            fig = fig.merge(("listen", v));
        }
        if let Some(v) = &overrides.data_dir {
            fig = fig.merge(("data_dir", v));
        }
        if let Some(v) = overrides.plain_http {
            fig = fig.merge(("plain_http", v));
        }
        if let Some(v) = &overrides.database_url {
            fig = fig.merge(("database_url", v));
        }
        let cfg: Config = fig.extract().map_err(|e| {
            let key = if e.path.is_empty() {
                "(file)".to_string()
            } else {
                e.path.join(".")
            };
            let mut message = e.kind.to_string();
            if let Some(m) = &e.metadata {
                message.push_str(&format!(" (from {})", m.name));
            }
            bad(&key, message)
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        for (i, l) in self.extra_listen.iter().enumerate() {
            l.parse::<SocketAddr>().map_err(|_| {
                bad(
                    &format!("extra_listen[{i}]"),
                    "must be ADDR:PORT, e.g. 0.0.0.0:631",
                )
            })?;
        }
        if !self.heartbeat_listen.is_empty() && self.heartbeat_listen.parse::<SocketAddr>().is_err()
        {
            return Err(bad(
                "heartbeat_listen",
                "must be ADDR:PORT (e.g. 0.0.0.0:9930) or empty",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(bad("data_dir", "must not be empty"));
        }
        let url = self.database_url.trim();
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !url.is_empty() && !known.iter().any(|p| url.starts_with(p)) {
            return Err(bad(
                "database_url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if !(1..=256).contains(&self.database_max_connections) {
            return Err(bad("database_max_connections", "must be between 1 and 256"));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(bad(
                "tls_cert",
                "tls_cert and tls_key must be given together",
            ));
        }
        if self.plain_http && self.tls_cert.is_some() {
            return Err(bad(
                "plain_http",
                "cannot be combined with tls_cert/tls_key",
            ));
        }
        let schemes = ["https://", "http://"];
        if !self.public_url.is_empty() && !schemes.iter().any(|p| self.public_url.starts_with(p)) {
            return Err(bad("public_url", "must start with https:// or http://"));
        }
        if let Some(k) = &self.master_key {
            printfleet_crypto::MasterKey::parse("master_key", k.expose())
                .map_err(|_| bad("master_key", "must be 32 bytes as base64 or 64 hex digits"))?;
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(bad("max_body_bytes", "must be between 1024 and 16777216"));
        }
        let a = &self.auth;
        if !(1..=24 * 60).contains(&a.session_idle_minutes) {
            return Err(bad(
                "auth.session_idle_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1..=24 * 30).contains(&a.session_absolute_hours) {
            return Err(bad(
                "auth.session_absolute_hours",
                "must be between 1 and 720",
            ));
        }
        if !(1..=24 * 30).contains(&a.invitation_ttl_hours) {
            return Err(bad(
                "auth.invitation_ttl_hours",
                "must be between 1 and 720",
            ));
        }
        if !(1..=100).contains(&a.lockout_threshold) {
            return Err(bad("auth.lockout_threshold", "must be between 1 and 100"));
        }
        if !(1..=10_000).contains(&a.lockout_threshold_per_address) {
            return Err(bad(
                "auth.lockout_threshold_per_address",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=3600).contains(&a.lockout_base_seconds) {
            return Err(bad(
                "auth.lockout_base_seconds",
                "must be between 1 and 3600",
            ));
        }
        if !(a.lockout_base_seconds..=86_400).contains(&a.lockout_max_seconds) {
            return Err(bad(
                "auth.lockout_max_seconds",
                "must be between lockout_base_seconds and 86400",
            ));
        }
        // OWASP's floor for Argon2id; lower values are only reachable from test code.
        if !(19 * 1024..=4 * 1024 * 1024).contains(&a.argon2_memory_kib) {
            return Err(bad(
                "auth.argon2_memory_kib",
                "must be between 19456 and 4194304",
            ));
        }
        if !(2..=20).contains(&a.argon2_iterations) {
            return Err(bad("auth.argon2_iterations", "must be between 2 and 20"));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(bad("log.format", "must be text or json"));
        }
        tracing_filter_ok(&self.log.level).map_err(|m| bad("log.level", m))?;
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen
            .parse()
            .map_err(|_| bad("listen", "must be ADDR:PORT, e.g. 127.0.0.1:8443"))
    }

    pub fn database_url(&self) -> String {
        if self.database_url.trim().is_empty() {
            format!("sqlite://{}", self.data_dir.join("printfleet.db").display())
        } else {
            self.database_url.trim().to_string()
        }
    }

    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    pub fn audit_key_file(&self) -> PathBuf {
        self.audit_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit.key"))
    }

    pub fn checkpoint_file(&self) -> PathBuf {
        self.data_dir.join("audit-checkpoints.json")
    }

    /// The configuration as TOML with secrets masked (for `printfleet config`).
    pub fn to_masked_toml(&self) -> String {
        let mut c = self.clone();
        if c.master_key.is_some() {
            c.master_key = Some(Redacted::new("********".into()));
        }
        if let Some(i) = c.database_url.find('@') {
            if let Some(s) = c.database_url.find("://") {
                if let Some(colon) = c.database_url[s + 3..i].find(':') {
                    let start = s + 3 + colon + 1;
                    c.database_url.replace_range(start..i, "********");
                }
            }
        }
        toml::to_string_pretty(&c).unwrap_or_default()
    }
}

fn tracing_filter_ok(level: &str) -> Result<(), String> {
    let ok = !level.trim().is_empty()
        && level.split(',').all(|d| {
            let lvl = d.rsplit('=').next().unwrap_or("");
            ["trace", "debug", "info", "warn", "error", "off"].contains(&lvl.trim())
        });
    if ok {
        Ok(())
    } else {
        Err("must be a filter such as info or printfleet=debug,info".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, text).unwrap();
        Config::load(Some(&p), &Overrides::default())
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = load_text("listne = \"1.2.3.4:5\"\n").unwrap_err();
        assert!(e.to_string().contains("listne"), "{e}");
        let e = load_text("[auth]\nsession_idle = 3\n").unwrap_err();
        assert!(e.to_string().contains("session_idle"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key) in [
            ("listen = \"nowhere\"\n", "listen"),
            ("database_url = \"mysql://x\"\n", "database_url"),
            ("[auth]\nargon2_memory_kib = 8\n", "auth.argon2_memory_kib"),
            (
                "[auth]\nsession_idle_minutes = \"ten\"\n",
                "auth.session_idle_minutes",
            ),
            ("tls_cert = \"a.pem\"\n", "tls_cert"),
            ("[log]\nformat = \"xml\"\n", "log.format"),
            ("master_key = \"short\"\n", "master_key"),
        ] {
            let e = load_text(text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }

    #[test]
    fn masked_output_hides_secrets() {
        let c = Config {
            master_key: Some(Redacted::new(
                "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=".into(),
            )),
            database_url: "postgres://user:hunter2@db/pf".into(),
            ..Config::default()
        };
        let t = c.to_masked_toml();
        assert!(!t.contains("hunter2") && !t.contains("c2VjcmV0"), "{t}");
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
    }
}
