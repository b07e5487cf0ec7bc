//! Loading the keys that live outside the database: the master key (file or
//! `PRINTFLEET_MASTER_KEY`), keys from an interrupted rotation, and the audit MAC key.

use crate::config::Config;
use anyhow::Context;
use printfleet_crypto::{AuditKey, MasterKey};
use printfleet_storage::StoreKeys;
use rand::rngs::OsRng;
use std::path::{Path, PathBuf};

/// A rotation writes the new key here before re-wrapping, and renames it afterwards.
pub fn next_key_path(master: &Path) -> PathBuf {
    master.with_extension("key.next")
}

/// The previous master key is kept here after a rotation (delete it once backups are re-keyed).
pub fn previous_key_path(master: &Path) -> PathBuf {
    master.with_extension("key.previous")
}

pub fn load(cfg: &Config) -> anyhow::Result<StoreKeys> {
    let path = cfg.master_key_file();
    let mut masters = Vec::new();
    match &cfg.master_key {
        Some(text) => masters.push(
            MasterKey::parse("master_key", text.expose()).map_err(|e| anyhow::anyhow!("{e}"))?,
        ),
        None => masters.push(
            MasterKey::load_or_create(&path, &mut OsRng)
                .map_err(|e| anyhow::anyhow!("master_key_file: {e}"))?,
        ),
    }
    for extra in [next_key_path(&path), previous_key_path(&path)] {
        if extra.exists() {
            let text = std::fs::read_to_string(&extra)
                .with_context(|| format!("reading {}", extra.display()))?;
            masters.push(
                MasterKey::parse(&extra.display().to_string(), &text)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
        }
    }
    let audit = MasterKey::load_or_create(&cfg.audit_key_file(), &mut OsRng)
        .map_err(|e| anyhow::anyhow!("audit_key_file: {e}"))?;
    Ok(StoreKeys {
        masters,
        audit: AuditKey::from_bytes(audit.derive("printfleet audit mac")),
    })
}

/// The CSRF derivation key: bound to the master key, so tokens survive restarts.
pub fn csrf_key(keys: &StoreKeys) -> [u8; 32] {
    keys.masters[0].derive("printfleet csrf")
}
