//! TLS with rustls: the configured certificate, or a self-signed one made on first start and
//! kept in the data directory.

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use std::path::{Path, PathBuf};

/// Installs ring as rustls' process-wide provider (once).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificate and key paths to use, creating a self-signed pair when none is configured.
pub fn ensure_cert(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    if let (Some(c), Some(k)) = (cert, key) {
        return Ok((c.to_path_buf(), k.to_path_buf()));
    }
    let c = data_dir.join("tls-cert.pem");
    let k = data_dir.join("tls-key.pem");
    if c.exists() && k.exists() {
        return Ok((c, k));
    }
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)
        .context("generating a self-signed certificate")?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(&c, certified.cert.pem()).with_context(|| format!("writing {}", c.display()))?;
    printfleet_crypto::keys::write_private(&k, &certified.key_pair.serialize_pem())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", k.display()))?;
    tracing::info!(cert = %c.display(), "created a self-signed TLS certificate");
    Ok((c, k))
}

pub async fn rustls_config(cert: &Path, key: &Path) -> anyhow::Result<RustlsConfig> {
    install_provider();
    RustlsConfig::from_pem_file(cert, key)
        .await
        .with_context(|| {
            format!(
                "tls_cert/tls_key: cannot load {} and {}",
                cert.display(),
                key.display()
            )
        })
}
