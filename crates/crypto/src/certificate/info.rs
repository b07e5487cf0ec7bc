//! Reading one X.509 certificate: the summary kept with a policy (`CertificateInfo`), its validity
//! window and the extensions the checks look at.

use super::{CertificateError, CertificateInfo};
use der::Decode;
use rsa::sha2::{Digest, Sha256};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::time::Time;
use x509_cert::Certificate;

/// A certificate parsed once, with its summary.
pub(super) struct Parsed {
    pub cert: Certificate,
    pub info: CertificateInfo,
}

pub(super) fn parse(der: &[u8]) -> Result<Parsed, CertificateError> {
    let cert = Certificate::from_der(der).map_err(CertificateError::malformed)?;
    let tbs = cert.tbs_certificate();
    let validity = tbs.validity();
    let basic = basic_constraints(&cert)?;
    let usage = key_usage(&cert)?;
    let info = CertificateInfo {
        sha256: hex::encode(Sha256::digest(der)),
        subject: tbs.subject().to_string(),
        issuer: tbs.issuer().to_string(),
        serial: serial_hex(tbs.serial_number().as_bytes()),
        not_before_ms: unix_ms(validity.not_before),
        not_after_ms: unix_ms(validity.not_after),
        is_ca: basic.is_some_and(|b| b.ca),
        key_usage: usage.map(|u| usage_names(&u)).unwrap_or_default(),
        pem: pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der)
            .map_err(CertificateError::malformed)?,
    };
    Ok(Parsed { cert, info })
}

/// Refuses a certificate outside its validity window at `now_ms`.
pub(super) fn check_validity(info: &CertificateInfo, now_ms: i64) -> Result<(), CertificateError> {
    if now_ms > info.not_after_ms {
        return Err(CertificateError::Expired {
            date: date_of(info.not_after_ms),
        });
    }
    if now_ms < info.not_before_ms {
        return Err(CertificateError::NotYetValid {
            date: date_of(info.not_before_ms),
        });
    }
    Ok(())
}

pub(super) fn basic_constraints(
    cert: &Certificate,
) -> Result<Option<BasicConstraints>, CertificateError> {
    let found = cert.tbs_certificate().get_extension::<BasicConstraints>();
    Ok(found.map_err(CertificateError::malformed)?.map(|(_, b)| b))
}

pub(super) fn key_usage(cert: &Certificate) -> Result<Option<KeyUsage>, CertificateError> {
    let found = cert.tbs_certificate().get_extension::<KeyUsage>();
    Ok(found.map_err(CertificateError::malformed)?.map(|(_, u)| u))
}

/// The RFC 5280 names of the bits set, in the RFC's order.
fn usage_names(u: &KeyUsage) -> Vec<String> {
    let bits = [
        (u.digital_signature(), "digitalSignature"),
        (u.non_repudiation(), "nonRepudiation"),
        (u.key_encipherment(), "keyEncipherment"),
        (u.data_encipherment(), "dataEncipherment"),
        (u.key_agreement(), "keyAgreement"),
        (u.key_cert_sign(), "keyCertSign"),
        (u.crl_sign(), "cRLSign"),
        (u.encipher_only(), "encipherOnly"),
        (u.decipher_only(), "decipherOnly"),
    ];
    bits.iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| (*name).to_string())
        .collect()
}

/// Lower-case hex of the serial number, without the sign byte DER adds to keep it positive.
fn serial_hex(bytes: &[u8]) -> String {
    let trimmed = match bytes {
        [0, next, ..] if *next >= 0x80 => &bytes[1..],
        _ => bytes,
    };
    hex::encode(trimmed)
}

fn unix_ms(t: Time) -> i64 {
    // DER times end in the year 9999, far inside i64 milliseconds; saturate rather than fail.
    i64::try_from(t.to_unix_duration().as_millis()).unwrap_or(i64::MAX)
}

/// `YYYY-MM-DD` (UTC) of a Unix time in milliseconds, for messages.
pub(super) fn date_of(ms: i64) -> String {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    match der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs)) {
        Ok(d) => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        Err(_) => format!("{ms} ms after 1970"),
    }
}
