//! The private key of an ID certificate: read from PKCS#8, PKCS#1 or SEC1, compared with a
//! certificate's public key, and written back as PKCS#8 PEM (the one form we store).

use super::input::KeyDer;
use super::CertificateError;
use const_oid::db::{rfc5912, rfc8410};
use const_oid::ObjectIdentifier;
use der::Decode;
use pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};
use zeroize::Zeroizing;

/// A supported private key. No `Debug`: nothing should ever print one.
pub(super) enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl PrivateKey {
    pub fn parse(key: &KeyDer) -> Result<Self, CertificateError> {
        match key {
            KeyDer::Pkcs8(der) => parse_pkcs8(der),
            KeyDer::Pkcs1(der) => RsaPrivateKey::from_pkcs1_der(der)
                .map(|k| Self::Rsa(Box::new(k)))
                .map_err(|_| invalid("PKCS#1 (RSA PRIVATE KEY)")),
            KeyDer::Sec1(der) => parse_sec1(der),
        }
    }

    /// Whether `spki_der` (a certificate's SubjectPublicKeyInfo) is this key's public half.
    /// Comparing decoded keys, not bytes, so that point compression cannot cause a false "no".
    pub fn matches(&self, spki_der: &[u8]) -> bool {
        match self {
            Self::Rsa(k) => {
                RsaPublicKey::from_public_key_der(spki_der).is_ok_and(|p| p == k.to_public_key())
            }
            Self::P256(k) => {
                p256::PublicKey::from_public_key_der(spki_der).is_ok_and(|p| p == k.public_key())
            }
            Self::P384(k) => {
                p384::PublicKey::from_public_key_der(spki_der).is_ok_and(|p| p == k.public_key())
            }
            Self::Ed25519(k) => ed25519_dalek::VerifyingKey::from_public_key_der(spki_der)
                .is_ok_and(|p| p == k.verifying_key()),
        }
    }

    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, CertificateError> {
        let pem = match self {
            Self::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
            Self::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            Self::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
            Self::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF),
        };
        pem.map_err(|_| invalid("PKCS#8"))
    }
}

fn parse_pkcs8(der: &[u8]) -> Result<PrivateKey, CertificateError> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der).map_err(|_| invalid("PKCS#8"))?;
    let algorithm = info.algorithm.oid;
    if algorithm == rfc5912::RSA_ENCRYPTION {
        return Ok(PrivateKey::Rsa(Box::new(
            RsaPrivateKey::from_pkcs8_der(der).map_err(bad_pkcs8)?,
        )));
    }
    if algorithm == rfc8410::ID_ED_25519 {
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(bad_pkcs8)?;
        return Ok(PrivateKey::Ed25519(Box::new(key)));
    }
    if algorithm == rfc5912::ID_EC_PUBLIC_KEY {
        let curve = info.algorithm.parameters_oid().map_err(bad_pkcs8)?;
        if curve == rfc5912::SECP_256_R_1 {
            return Ok(PrivateKey::P256(
                p256::SecretKey::from_pkcs8_der(der).map_err(bad_pkcs8)?,
            ));
        }
        if curve == rfc5912::SECP_384_R_1 {
            return Ok(PrivateKey::P384(
                p384::SecretKey::from_pkcs8_der(der).map_err(bad_pkcs8)?,
            ));
        }
        return Err(unsupported(curve));
    }
    Err(unsupported(algorithm))
}

fn parse_sec1(der: &[u8]) -> Result<PrivateKey, CertificateError> {
    let format = "SEC1 (EC PRIVATE KEY)";
    let key = sec1::EcPrivateKey::from_der(der).map_err(|_| invalid(format))?;
    // The curve is optional in SEC1; without it, the scalar's length tells P-256 from P-384.
    let curve = match key.parameters.and_then(|p| p.named_curve()) {
        Some(oid) => oid,
        None if key.private_key.len() == 32 => rfc5912::SECP_256_R_1,
        None => rfc5912::SECP_384_R_1,
    };
    if curve == rfc5912::SECP_256_R_1 {
        return p256::SecretKey::from_sec1_der(der)
            .map(PrivateKey::P256)
            .map_err(|_| invalid(format));
    }
    if curve == rfc5912::SECP_384_R_1 {
        return p384::SecretKey::from_sec1_der(der)
            .map(PrivateKey::P384)
            .map_err(|_| invalid(format));
    }
    Err(unsupported(curve))
}

fn bad_pkcs8<E>(_: E) -> CertificateError {
    invalid("PKCS#8")
}

fn invalid(format: &'static str) -> CertificateError {
    CertificateError::InvalidPrivateKey { format }
}

fn unsupported(oid: ObjectIdentifier) -> CertificateError {
    CertificateError::UnsupportedKeyAlgorithm {
        algorithm: oid.to_string(),
    }
}
