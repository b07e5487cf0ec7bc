//! Argon2id password hashing with parameters chosen per deployment, re-hash detection, and a
//! dummy hash so an unknown account costs the same time as a known one.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{CryptoRng, RngCore};

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl PasswordParams {
    /// OWASP's recommended minimum for Argon2id (19 MiB, 2 passes, 1 lane).
    pub const PRODUCTION: PasswordParams = PasswordParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
    /// For tests only: fast and weak.
    pub const INSECURE_FOR_TESTS: PasswordParams = PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher")
    }
}

/// The result of checking a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the stored hash uses old parameters: store this new hash.
    YesRehash(String),
}

impl PasswordHasher {
    pub fn new(p: PasswordParams, rng: &mut (impl RngCore + CryptoRng)) -> Result<Self, String> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| format!("invalid Argon2 parameters: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut h = Self {
            argon,
            dummy_hash: String::new(),
        };
        let mut pw = [0u8; 16];
        rng.fill_bytes(&mut pw);
        h.dummy_hash = h.hash(&hex::encode(pw), rng)?;
        Ok(h)
    }

    pub fn hash(
        &self,
        password: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<String, String> {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no account, so
    /// that both cases take the same time.
    pub fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Verified {
        let target = stored.unwrap_or(&self.dummy_hash);
        let Ok(parsed) = PasswordHash::new(target) else {
            return Verified::No;
        };
        let ok = self
            .argon
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        if !ok || stored.is_none() {
            return Verified::No;
        }
        let current = self.argon.params();
        let same = argon2::Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == current.m_cost()
                && p.t_cost() == current.t_cost()
                && p.p_cost() == current.p_cost()
        });
        if same {
            Verified::Yes
        } else {
            match self.hash(password, rng) {
                Ok(h) => Verified::YesRehash(h),
                Err(_) => Verified::Yes,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn hash_verify_and_rehash() {
        let h = PasswordHasher::new(PasswordParams::INSECURE_FOR_TESTS, &mut OsRng).unwrap();
        let stored = h.hash("correct horse battery", &mut OsRng).unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert_eq!(
            h.verify("correct horse battery", Some(&stored), &mut OsRng),
            Verified::Yes
        );
        assert_eq!(h.verify("wrong", Some(&stored), &mut OsRng), Verified::No);
        assert_eq!(h.verify("anything", None, &mut OsRng), Verified::No);
        let stronger = PasswordHasher::new(
            PasswordParams {
                memory_kib: 128,
                iterations: 1,
                parallelism: 1,
            },
            &mut OsRng,
        )
        .unwrap();
        match stronger.verify("correct horse battery", Some(&stored), &mut OsRng) {
            Verified::YesRehash(new) => assert!(new.contains("m=128")),
            other => panic!("expected rehash, got {other:?}"),
        }
    }
}
