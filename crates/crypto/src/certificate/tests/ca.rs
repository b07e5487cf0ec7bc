//! CA certificate uploads.

use super::*;
use rsa::sha2::{Digest, Sha256};

#[test]
fn accepts_a_p256_ca_as_pem_and_der_with_the_same_summary() {
    let ca = p256_ca("Site CA");
    let from_pem = parse_ca(&CertificateInput::Pem(ca.pem()), NOW_MS).unwrap();
    let from_der = parse_ca(&CertificateInput::Der(ca.cert.der().to_vec()), NOW_MS).unwrap();
    assert_eq!(from_pem, from_der);
    assert_eq!(from_pem.sha256, hex::encode(Sha256::digest(ca.cert.der())));
    assert_eq!(from_pem.subject, "CN=Site CA");
    assert_eq!(from_pem.issuer, "CN=Site CA");
    assert!(from_pem.is_ca);
    assert_eq!(from_pem.key_usage, ["keyCertSign", "cRLSign"]);
    assert!(!from_pem.serial.is_empty());
    assert!(from_pem.not_before_ms < NOW_MS && NOW_MS < from_pem.not_after_ms);
    assert_eq!(fingerprint_of_pem(&from_pem.pem).unwrap(), from_pem.sha256);
}

#[test]
fn accepts_an_rsa_ca_and_one_without_key_usage() {
    let rsa = self_signed(ca_params("RSA CA"), rsa_key(&rcgen::PKCS_RSA_SHA256));
    assert!(rsa.ca_info().is_ca);
    let mut p = ca_params("No usage CA");
    p.key_usages = Vec::new();
    let no_usage = self_signed(p, key(&rcgen::PKCS_ECDSA_P384_SHA384));
    assert!(no_usage.ca_info().key_usage.is_empty());
}

#[test]
fn refuses_a_certificate_that_is_not_a_ca() {
    let ca = p256_ca("Site CA");
    let leaf = p256_leaf("printer-1", &ca);
    let err = parse_ca(&CertificateInput::Pem(leaf.pem()), NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a CA certificate: basicConstraints CA is false"
    );

    let mut p = leaf_params("no-constraints");
    p.is_ca = IsCa::NoCa;
    let bare = signed(p, key(&rcgen::PKCS_ECDSA_P256_SHA256), &ca);
    let err = parse_ca(&CertificateInput::Pem(bare.pem()), NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a CA certificate: it has no basicConstraints extension"
    );
    assert_eq!(err.code(), "certificate.not_ca");
}

#[test]
fn refuses_a_ca_whose_key_usage_lacks_cert_sign() {
    let mut p = ca_params("Bad usage CA");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
    let ca = self_signed(p, key(&rcgen::PKCS_ECDSA_P256_SHA256));
    let err = parse_ca(&CertificateInput::Pem(ca.pem()), NOW_MS).unwrap_err();
    assert_eq!(err, CertificateError::KeyUsageLacksCertSign);
    assert!(err.to_string().starts_with("key usage lacks keyCertSign"));
}

#[test]
fn refuses_an_expired_or_not_yet_valid_ca_naming_the_date() {
    let mut p = ca_params("Old CA");
    p.not_after = rcgen::date_time_ymd(2026, 1, 2);
    let old = self_signed(p, key(&rcgen::PKCS_ECDSA_P256_SHA256));
    let err = parse_ca(&CertificateInput::Pem(old.pem()), NOW_MS).unwrap_err();
    assert_eq!(err.to_string(), "the certificate expired on 2026-01-02");

    let mut p = ca_params("Future CA");
    p.not_before = rcgen::date_time_ymd(2030, 6, 1);
    let future = self_signed(p, key(&rcgen::PKCS_ECDSA_P256_SHA256));
    let err = parse_ca(&CertificateInput::Pem(future.pem()), NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the certificate is not valid yet: its validity starts on 2030-06-01"
    );
}

#[test]
fn refuses_a_private_key_with_a_ca_upload_without_showing_it() {
    let ca = p256_ca("Site CA");
    let input = ca.with_key();
    let err = parse_ca(&input, NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a CA upload must not contain a private key"
    );
    assert_error_hides(&input, &err, &[&ca.key_pem()]);
}

#[test]
fn refuses_more_than_one_certificate() {
    let a = p256_ca("A");
    let b = p256_ca("B");
    let err = parse_ca(&CertificateInput::Pem(a.pem() + &b.pem()), NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected exactly one CA certificate, found 2"
    );
}
