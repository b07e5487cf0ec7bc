//! How a simulated printer reports an installed certificate: the SHA-256 fingerprint of the
//! first certificate's DER encoding and its notAfter (docs/protocol.md §7.3). The PEM may hold
//! more (a CA chain, or an ID certificate's private key): only the first certificate counts.

use printfleet_protocol::messages::ReportedValue;
use sha2::{Digest, Sha256};
use x509_cert::der::{DecodePem, Encode};
use x509_cert::Certificate;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The report of the first certificate in `pem`; `None` when there is none that parses.
pub fn certificate_report(pem: &str) -> Option<ReportedValue> {
    let start = pem.find(BEGIN)?;
    let len = pem.get(start..)?.find(END)? + END.len();
    let block = pem.get(start..start + len)?;
    let cert = Certificate::from_pem(block).ok()?;
    let der = cert.to_der().ok()?;
    let not_after = cert
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration();
    Some(ReportedValue::Certificate {
        sha256: hex::encode(Sha256::digest(&der)),
        not_after_ms: u64::try_from(not_after.as_millis()).ok()?,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A self-signed certificate (and its key) valid until 2030-01-01T00:00:00Z.
    pub fn self_signed() -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec!["printer.example".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn fingerprint_of_the_der_and_expiry() {
        let (cert, key) = self_signed();
        let der = x509_cert::der::pem::decode_vec(cert.as_bytes()).unwrap().1;
        let want = ReportedValue::Certificate {
            sha256: hex::encode(Sha256::digest(&der)),
            not_after_ms: 1_893_456_000_000,
        };
        assert_eq!(certificate_report(&cert), Some(want.clone()));
        // An ID certificate comes with its private key; a CA chain has several certificates.
        assert_eq!(
            certificate_report(&format!("{cert}{key}")),
            Some(want.clone())
        );
        let (other, _) = self_signed();
        assert_eq!(certificate_report(&format!("{cert}{other}")), Some(want));
        assert_eq!(certificate_report(&key), None);
        assert_eq!(
            certificate_report("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"),
            None
        );
    }
}
