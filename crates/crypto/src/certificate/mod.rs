//! Certificates for printer policies: a CA certificate that printers' certificates must chain to,
//! and a printer ID certificate uploaded with its private key. Parsing and every check happen
//! here, before anything is stored; each refusal is its own `CertificateError` variant.
//!
//! Private keys and passphrases travel only inside `Redacted<Zeroizing<…>>`: `Debug` prints
//! `[redacted]` and the memory is wiped on drop. Certificates themselves are public.

mod error;
mod info;
mod input;
mod key;
mod verify;

#[cfg(test)]
mod tests;

pub use error::CertificateError;

use printfleet_domain::Redacted;
use std::fmt;
use x509_cert::Certificate;
use zeroize::{Zeroize, Zeroizing};

/// The largest upload accepted, in bytes (PEM text, DER or PKCS#12). A certificate with a
/// short chain and a 4096-bit RSA key is well under 16 KiB.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Text that must never be printed: `Debug` shows `[redacted]`, and it is wiped on drop.
pub type SecretString = Redacted<Zeroizing<String>>;

/// An upload as the admin gave it.
pub enum CertificateInput {
    /// PEM text: certificates, and for an ID certificate its private key (PKCS#8 `PRIVATE KEY`,
    /// PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
    Pem(String),
    /// One DER-encoded certificate.
    Der(Vec<u8>),
    /// A PKCS#12 (`.p12`/`.pfx`) file and its passphrase.
    Pkcs12 {
        der: Vec<u8>,
        passphrase: SecretString,
    },
}

impl CertificateInput {
    pub fn pkcs12(der: Vec<u8>, passphrase: impl Into<String>) -> Self {
        Self::Pkcs12 {
            der,
            passphrase: Redacted::new(Zeroizing::new(passphrase.into())),
        }
    }
}

/// PEM text may hold a private key, so only sizes are shown.
impl fmt::Debug for CertificateInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pem(text) => write!(f, "Pem({} bytes)", text.len()),
            Self::Der(der) => write!(f, "Der({} bytes)", der.len()),
            Self::Pkcs12 { der, .. } => {
                write!(f, "Pkcs12({} bytes, passphrase: [redacted])", der.len())
            }
        }
    }
}

/// The PEM text may hold a private key; wipe it like the other secrets.
impl Drop for CertificateInput {
    fn drop(&mut self) {
        if let Self::Pem(text) = self {
            text.zeroize();
        }
    }
}

/// What a policy keeps about one certificate (all of it public).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// SHA-256 of the certificate's DER, lower-case hex.
    pub sha256: String,
    /// RFC 4514 distinguished names.
    pub subject: String,
    pub issuer: String,
    /// Lower-case hex of the serial number.
    pub serial: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// basicConstraints CA is true.
    pub is_ca: bool,
    /// RFC 5280 names of the keyUsage bits set; empty when the extension is absent.
    pub key_usage: Vec<String>,
    /// The certificate alone, PEM.
    pub pem: String,
}

/// A printer ID certificate with its private key.
#[derive(Debug, Clone)]
pub struct IdCertificate {
    pub certificate: CertificateInfo,
    /// The other certificates of the upload (intermediates, often the CA), in upload order.
    pub chain: Vec<CertificateInfo>,
    /// The private key, re-encoded as PKCS#8 PEM whatever form it was uploaded in.
    pub private_key_pem: SecretString,
}

/// Parses and checks a CA certificate upload: exactly one certificate, no private key,
/// basicConstraints CA true, keyCertSign when keyUsage is present, valid at `now_ms`.
pub fn parse_ca(
    input: &CertificateInput,
    now_ms: i64,
) -> Result<CertificateInfo, CertificateError> {
    let unpacked = input::unpack(input)?;
    if !unpacked.keys.is_empty() {
        return Err(CertificateError::PrivateKeyNotAllowed);
    }
    let der = match unpacked.certificates.as_slice() {
        [] => {
            return Err(CertificateError::NoCertificate {
                place: unpacked.place,
            })
        }
        [one] => one,
        more => return Err(CertificateError::MoreThanOneCertificate { count: more.len() }),
    };
    let parsed = info::parse(der)?;
    match info::basic_constraints(&parsed.cert)? {
        None => {
            return Err(CertificateError::NotCa {
                reason: "it has no basicConstraints extension",
            })
        }
        Some(b) if !b.ca => {
            return Err(CertificateError::NotCa {
                reason: "basicConstraints CA is false",
            })
        }
        Some(_) => {}
    }
    if info::key_usage(&parsed.cert)?.is_some_and(|u| !u.key_cert_sign()) {
        return Err(CertificateError::KeyUsageLacksCertSign);
    }
    info::check_validity(&parsed.info, now_ms)?;
    Ok(parsed.info)
}

/// Parses and checks an ID certificate upload: exactly one private key, a certificate whose
/// public key is that key's, valid at `now_ms`, keyUsage (when present) allowing
/// digitalSignature or keyEncipherment, and, when `ca` is given, signed by the CA directly or
/// through intermediates among the uploaded certificates.
pub fn parse_id(
    input: &CertificateInput,
    ca: Option<&CertificateInfo>,
    now_ms: i64,
) -> Result<IdCertificate, CertificateError> {
    let unpacked = input::unpack(input)?;
    let key_der = match unpacked.keys.as_slice() {
        [] => return Err(CertificateError::MissingPrivateKey),
        [one] => one,
        _ => return Err(CertificateError::MoreThanOneKey),
    };
    if unpacked.certificates.is_empty() {
        return Err(CertificateError::NoCertificate {
            place: unpacked.place,
        });
    }
    let key = key::PrivateKey::parse(key_der)?;
    let mut parsed = unpacked
        .certificates
        .iter()
        .map(|der| info::parse(der))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf_at = parsed
        .iter()
        .position(|p| spki_der(&p.cert).is_some_and(|spki| key.matches(&spki)))
        .ok_or(CertificateError::KeyMismatch)?;
    let leaf = parsed.remove(leaf_at);
    info::check_validity(&leaf.info, now_ms)?;
    let usage = info::key_usage(&leaf.cert)?;
    if usage.is_some_and(|u| !u.digital_signature() && !u.key_encipherment()) {
        return Err(CertificateError::KeyUsageNotForIdentity);
    }
    if let Some(ca) = ca {
        check_issued_by(&leaf.cert, &parsed, ca, now_ms)?;
    }
    Ok(IdCertificate {
        certificate: leaf.info,
        chain: parsed.into_iter().map(|p| p.info).collect(),
        private_key_pem: Redacted::new(key.to_pkcs8_pem()?),
    })
}

/// SHA-256 (lower-case hex) of the one certificate in `pem`.
pub fn fingerprint_of_pem(pem: &str) -> Result<String, CertificateError> {
    if pem.len() > MAX_INPUT_BYTES {
        return Err(CertificateError::TooLarge {
            limit: MAX_INPUT_BYTES,
        });
    }
    let unpacked = input::unpack_pem(pem)?;
    match unpacked.certificates.as_slice() {
        [] => Err(CertificateError::NoCertificate {
            place: unpacked.place,
        }),
        [der] => Ok(info::parse(der)?.info.sha256),
        more => Err(CertificateError::MoreThanOneCertificate { count: more.len() }),
    }
}

/// The most intermediates followed between an ID certificate and its CA.
const MAX_INTERMEDIATES: usize = 4;

/// Walks from `leaf` towards `ca` through intermediates of the upload that are CAs and whose
/// key verifies the previous link; succeeds when the CA's key verifies the last one.
fn check_issued_by(
    leaf: &Certificate,
    intermediates: &[info::Parsed],
    ca: &CertificateInfo,
    now_ms: i64,
) -> Result<(), CertificateError> {
    if now_ms > ca.not_after_ms {
        return Err(CertificateError::CaExpired {
            date: info::date_of(ca.not_after_ms),
        });
    }
    let ca_der = input::unpack_pem(&ca.pem)?
        .certificates
        .into_iter()
        .next()
        .ok_or(CertificateError::NoCertificate {
            place: "CA's PEM text",
        })?;
    let ca_cert = info::parse(&ca_der)?.cert;
    let mut current = leaf;
    for _ in 0..=MAX_INTERMEDIATES {
        if verify::signed_by(current, &ca_cert)? {
            return Ok(());
        }
        let issuer = current.tbs_certificate().issuer();
        let next = intermediates.iter().find(|p| {
            p.info.is_ca
                && p.cert.tbs_certificate().subject() == issuer
                && verify::signed_by(current, &p.cert).unwrap_or(false)
        });
        match next {
            Some(p) => current = &p.cert,
            None => break,
        }
    }
    Err(CertificateError::NotSignedByCa {
        issuer: leaf.tbs_certificate().issuer().to_string(),
        ca: ca.subject.clone(),
    })
}

fn spki_der(cert: &Certificate) -> Option<Vec<u8>> {
    use der::Encode;
    cert.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .ok()
}
