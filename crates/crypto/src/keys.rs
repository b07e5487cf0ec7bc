//! The master key (outside the database) and the data keys it wraps (inside the database).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use std::fmt;
use std::path::Path;
use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {message}")]
    File { path: String, message: String },
    #[error("{source_name}: must be 32 bytes encoded as base64 or 64 hex digits")]
    Encoding { source_name: String },
    #[error("a wrapped key could not be opened with this master key (wrong key or damaged data)")]
    Unwrap,
}

/// 32 secret bytes that wrap every data key. Never stored in the database.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={})", self.id())
    }
}

impl MasterKey {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        Self(k)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses base64 (standard or URL-safe) or hex text, as found in a key file or variable.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, KeyError> {
        use base64::Engine;
        let t = text.trim();
        let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(t).ok()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .ok()
        };
        match bytes.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()) {
            Some(k) => Ok(Self(k)),
            None => Err(KeyError::Encoding {
                source_name: source_name.to_string(),
            }),
        }
    }

    pub fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// Reads the key file, or creates it with mode 0600 when it does not exist.
    pub fn load_or_create(
        path: &Path,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, KeyError> {
        let file_err = |message: String| KeyError::File {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path).map_err(file_err)?;
                Self::parse(&path.display().to_string(), &text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate(rng);
                write_private(path, &format!("{}\n", key.to_base64())).map_err(file_err)?;
                Ok(key)
            }
            Err(e) => Err(file_err(e.to_string())),
        }
    }

    /// A public identifier for this key (not usable to recover it), stored beside wrapped keys.
    pub fn id(&self) -> String {
        let hk = Hkdf::<Sha256>::new(Some(b"printfleet master key id"), &self.0);
        let mut out = [0u8; 8];
        // Only fails for outputs longer than 255 hashes.
        let _ = hk.expand(b"id", &mut out);
        hex::encode(out)
    }

    /// Wraps a data key with AES-256-GCM; `context` (scope and version) is bound as associated
    /// data so a wrapped key cannot be moved to another scope.
    pub fn wrap(
        &self,
        key: &DataKey,
        context: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Vec<u8> {
        let cipher = Aes256Gcm::new((&self.0).into());
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &key.0,
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    pub fn unwrap_key(&self, wrapped: &[u8], context: &str) -> Result<DataKey, KeyError> {
        if wrapped.len() != 12 + 32 + 16 {
            return Err(KeyError::Unwrap);
        }
        let cipher = Aes256Gcm::new((&self.0).into());
        let (nonce, ct) = wrapped.split_at(12);
        let pt = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Unwrap)?;
        let arr: [u8; 32] = pt.as_slice().try_into().map_err(|_| KeyError::Unwrap)?;
        Ok(DataKey(arr))
    }

    /// Derives a purpose-bound subkey (used for keys that must not change when data keys roll).
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(b"printfleet master derive"), &self.0);
        let mut out = [0u8; 32];
        let _ = hk.expand(purpose.as_bytes(), &mut out);
        out
    }
}

/// A data key: encrypts fields of one scope (the deployment, or one tenant) for one version.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey(pub(crate) [u8; 32]);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        Self(k)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Writes `text` to `path` with mode 0600, atomically (temporary file, then rename).
pub fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp).map_err(|e| e.to_string())?;
    f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
    // The rename itself must survive a power loss, not only the file's bytes.
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Refuses a key file that others can read.
fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| e.to_string())?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "is readable by group or others (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn wrap_round_trip_and_context_binding() {
        let m = MasterKey::generate(&mut OsRng);
        let d = DataKey::generate(&mut OsRng);
        let w = m.wrap(&d, "tenant:x:1", &mut OsRng);
        assert_eq!(m.unwrap_key(&w, "tenant:x:1").unwrap().0, d.0);
        assert!(m.unwrap_key(&w, "tenant:y:1").is_err());
        let other = MasterKey::generate(&mut OsRng);
        assert!(other.unwrap_key(&w, "tenant:x:1").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("master.key");
        let a = MasterKey::load_or_create(&p, &mut OsRng).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let b = MasterKey::load_or_create(&p, &mut OsRng).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(!format!("{a:?}").contains(&a.to_base64()));
    }

    #[test]
    fn parse_rejects_wrong_lengths() {
        assert!(MasterKey::parse("env", "abc").is_err());
        assert!(MasterKey::parse("env", &"00".repeat(32)).is_ok());
    }
}
