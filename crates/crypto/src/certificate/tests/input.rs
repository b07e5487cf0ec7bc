//! The shape of uploads: size limit, PEM blocks, garbage.

use super::*;

#[test]
fn refuses_uploads_over_the_size_limit() {
    let big = "A".repeat(MAX_INPUT_BYTES + 1);
    let err = parse_ca(&CertificateInput::Pem(big.clone()), NOW_MS).unwrap_err();
    assert_eq!(err.code(), "certificate.too_large");
    assert_eq!(
        err.to_string(),
        "the upload is larger than the limit of 65536 bytes"
    );
    let der = CertificateInput::Der(big.clone().into_bytes());
    assert_eq!(
        parse_ca(&der, NOW_MS).unwrap_err().code(),
        "certificate.too_large"
    );
    let p12 = CertificateInput::pkcs12(big.clone().into_bytes(), "pw");
    assert_eq!(
        parse_id(&p12, None, NOW_MS).unwrap_err().code(),
        "certificate.too_large"
    );
    assert_eq!(
        fingerprint_of_pem(&big).unwrap_err().code(),
        "certificate.too_large"
    );
}

#[test]
fn names_what_is_missing_or_unreadable_in_pem_text() {
    let check = |text: &str, expected: &str| {
        let err = parse_ca(&CertificateInput::Pem(text.to_string()), NOW_MS).unwrap_err();
        assert_eq!(err.to_string(), expected, "for {text:?}");
    };
    check("", "no certificate found in the PEM text");
    check("hello", "no certificate found in the PEM text");
    check(
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
        "the PEM text could not be read: the block \"CERTIFICATE\" has no END line",
    );
    check(
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "the PEM text could not be read: the block \"CERTIFICATE\": PEM Base64 error: invalid Base64 encoding",
    );
    check(
        "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
        "the PEM text holds an unsupported block \"PUBLIC KEY\"",
    );
    check(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        "encrypted private keys are not supported: upload the key unencrypted, or as PKCS#12 with a passphrase",
    );
    check(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMAA=\n-----END RSA PRIVATE KEY-----\n",
        "encrypted private keys are not supported: upload the key unencrypted, or as PKCS#12 with a passphrase",
    );
    // The rest of this message is the DER decoder's own (positions, lengths).
    let empty = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    let err = parse_ca(&CertificateInput::Pem(empty.to_string()), NOW_MS).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("the certificate could not be parsed: ASN.1 DER"));
}

#[test]
fn refuses_der_that_is_not_a_certificate() {
    let err = parse_ca(
        &CertificateInput::Der(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
        NOW_MS,
    )
    .unwrap_err();
    assert_eq!(err.code(), "certificate.malformed");
}

#[test]
fn accepts_crlf_and_text_around_blocks() {
    let ca = p256_ca("Site CA");
    let text = format!(
        "Bag Attributes\r\n    friendlyName: ca\r\n{}",
        ca.pem().replace('\n', "\r\n")
    );
    let info = parse_ca(&CertificateInput::Pem(text), NOW_MS).unwrap();
    assert_eq!(info.subject, "CN=Site CA");
}

#[test]
fn fingerprint_of_pem_wants_exactly_one_certificate() {
    let a = p256_ca("A");
    let b = p256_ca("B");
    let info = a.ca_info();
    assert_eq!(fingerprint_of_pem(&a.pem()).unwrap(), info.sha256);
    assert_eq!(info.sha256.len(), 64);
    assert_eq!(
        fingerprint_of_pem(&(a.pem() + &b.pem()))
            .unwrap_err()
            .code(),
        "certificate.more_than_one"
    );
    assert_eq!(
        fingerprint_of_pem("").unwrap_err().code(),
        "certificate.none"
    );
}

#[test]
fn input_debug_shows_sizes_only() {
    let ca = p256_ca("Site CA");
    let input = ca.with_key();
    let shown = format!("{input:?}");
    assert!(shown.starts_with("Pem(") && shown.ends_with(" bytes)"));
    assert_hidden(&shown, &[&ca.key_pem()]);
    let p12 = CertificateInput::pkcs12(vec![1, 2, 3], "open sesame");
    assert_eq!(
        format!("{p12:?}"),
        "Pkcs12(3 bytes, passphrase: [redacted])"
    );
}
