//! The audit chains' latest heads, kept in a file outside the database, so that a truncated tail
//! or a chain rebuilt inside the database is detected.

use crate::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: i64,
    pub mac: String,
}

pub struct Checkpoints {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Checkpoints {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }

    pub fn read_all(&self) -> Result<BTreeMap<String, Head>, StoreError> {
        match std::fs::read_to_string(&self.path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| {
                StoreError::Corrupt(format!(
                    "audit checkpoint file {}: {e}",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(StoreError::Config(format!(
                "audit checkpoint file {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// Records new heads. A head never moves backwards.
    pub fn advance(&self, heads: &[(String, Head)]) -> Result<(), StoreError> {
        if heads.is_empty() {
            return Ok(());
        }
        let _g = self
            .lock
            .lock()
            .map_err(|_| StoreError::Corrupt("checkpoint lock".into()))?;
        let mut all = self.read_all()?;
        for (chain, head) in heads {
            let newer = all.get(chain).is_none_or(|h| h.seq < head.seq);
            if newer {
                all.insert(chain.clone(), head.clone());
            }
        }
        let text =
            serde_json::to_string_pretty(&all).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        printfleet_crypto::keys::write_private(&self.path, &text).map_err(|e| {
            StoreError::Config(format!(
                "audit checkpoint file {}: {e}",
                self.path.display()
            ))
        })
    }
}
