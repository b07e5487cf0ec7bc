//! ID certificate uploads with their keys.

use super::*;
use pkcs8::DecodePrivateKey;

/// Parses an accepted upload and checks what every accepted one must satisfy: the key comes
/// back as PKCS#8 and `Debug` never shows it.
fn accept(input: &CertificateInput, ca: Option<&CertificateInfo>) -> IdCertificate {
    let id = parse_id(input, ca, NOW_MS).unwrap();
    let key_pem = id.private_key_pem.expose();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_hidden(&format!("{id:?}"), &[key_pem.as_str()]);
    assert!(format!("{id:?}").contains("[redacted]"));
    id
}

#[test]
fn accepts_a_p256_id_signed_by_the_ca() {
    let ca = p256_ca("Site CA");
    let leaf = p256_leaf("printer-1", &ca);
    let id = accept(&leaf.with_key(), Some(&ca.ca_info()));
    assert_eq!(id.certificate.subject, "CN=printer-1");
    assert_eq!(id.certificate.issuer, "CN=Site CA");
    assert!(!id.certificate.is_ca);
    assert_eq!(
        id.certificate.key_usage,
        ["digitalSignature", "keyEncipherment"]
    );
    assert!(id.chain.is_empty());
    let key = p256::SecretKey::from_pkcs8_pem(id.private_key_pem.expose()).unwrap();
    let original = p256::SecretKey::from_pkcs8_pem(&leaf.key_pem()).unwrap();
    assert_eq!(key.to_bytes(), original.to_bytes());
}

#[test]
fn accepts_p384_ed25519_and_rsa_keys_and_cas() {
    let p384_ca = self_signed(ca_params("P-384 CA"), key(&rcgen::PKCS_ECDSA_P384_SHA384));
    let leaf = signed(
        leaf_params("p384"),
        key(&rcgen::PKCS_ECDSA_P384_SHA384),
        &p384_ca,
    );
    accept(&leaf.with_key(), Some(&p384_ca.ca_info()));

    let ed_ca = self_signed(ca_params("Ed25519 CA"), key(&rcgen::PKCS_ED25519));
    let leaf = signed(leaf_params("ed"), key(&rcgen::PKCS_ED25519), &ed_ca);
    accept(&leaf.with_key(), Some(&ed_ca.ca_info()));

    for alg in [&rcgen::PKCS_RSA_SHA256, &rcgen::PKCS_RSA_SHA384] {
        let rsa_ca = self_signed(ca_params("RSA CA"), rsa_key(alg));
        let leaf = p256_leaf("under-rsa", &rsa_ca);
        accept(&leaf.with_key(), Some(&rsa_ca.ca_info()));
    }
    // A P-384 CA signing with SHA-256 and a P-256 leaf: hash and curve need not match.
    let mixed = signed(
        leaf_params("mixed"),
        key(&rcgen::PKCS_ECDSA_P256_SHA256),
        &p384_ca,
    );
    accept(&mixed.with_key(), Some(&p384_ca.ca_info()));
}

#[test]
fn accepts_pkcs1_and_sec1_keys_and_returns_them_as_pkcs8() {
    use p256::pkcs8::DecodePrivateKey as _;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let ca = p256_ca("Site CA");
    let rsa_leaf = signed(leaf_params("rsa"), rsa_key(&rcgen::PKCS_RSA_SHA256), &ca);
    let pkcs1 = rsa_private().to_pkcs1_pem(LineEnding::LF).unwrap();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let id = accept(
        &CertificateInput::Pem(format!("{}{}", rsa_leaf.pem(), *pkcs1)),
        Some(&ca.ca_info()),
    );
    let back = rsa::PrivateKey::from_pkcs8_pem(id.private_key_pem.expose()).unwrap();
    assert_eq!(&back, rsa_private());

    let ec_leaf = p256_leaf("sec1", &ca);
    let secret = p256::SecretKey::from_pkcs8_pem(&ec_leaf.key_pem()).unwrap();
    let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
    let text = format!(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}{}",
        *sec1,
        ec_leaf.pem()
    );
    accept(&CertificateInput::Pem(text), Some(&ca.ca_info()));
}

#[test]
fn finds_the_leaf_among_the_chain_and_follows_intermediates() {
    let root = p256_ca("Root");
    let intermediate = signed(
        ca_params("Intermediate"),
        key(&rcgen::PKCS_ECDSA_P256_SHA256),
        &root,
    );
    let leaf = p256_leaf("printer-2", &intermediate);
    let text = format!(
        "{}{}{}{}",
        intermediate.pem(),
        root.pem(),
        leaf.key_pem(),
        leaf.pem()
    );
    let id = accept(&CertificateInput::Pem(text), Some(&root.ca_info()));
    assert_eq!(id.certificate.subject, "CN=printer-2");
    let chain: Vec<_> = id.chain.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(chain, ["CN=Intermediate", "CN=Root"]);

    // Without the intermediate there is no path to the root.
    let err = parse_id(&leaf.with_key(), Some(&root.ca_info()), NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not signed by the given CA (the certificate's issuer is \"CN=Intermediate\", the CA is \"CN=Root\")"
    );
}

#[test]
fn refuses_an_id_signed_by_another_ca() {
    let ca = p256_ca("Site CA");
    let other = p256_ca("Other CA");
    let leaf = p256_leaf("printer-1", &other);
    let input = leaf.with_key();
    let err = parse_id(&input, Some(&ca.ca_info()), NOW_MS).unwrap_err();
    assert_eq!(err.code(), "certificate.not_signed_by_ca");
    assert!(err.to_string().starts_with("not signed by the given CA"));
    assert_error_hides(&input, &err, &[&leaf.key_pem()]);
    // Without a CA to check against, the same upload is fine.
    accept(&input, None);
}

#[test]
fn refuses_an_expired_id_and_an_id_under_an_expired_ca() {
    let ca = p256_ca("Site CA");
    let mut p = leaf_params("old");
    p.not_after = rcgen::date_time_ymd(2026, 1, 2);
    let old = signed(p, key(&rcgen::PKCS_ECDSA_P256_SHA256), &ca);
    let input = old.with_key();
    let err = parse_id(&input, Some(&ca.ca_info()), NOW_MS).unwrap_err();
    assert_eq!(err.to_string(), "the certificate expired on 2026-01-02");
    assert_error_hides(&input, &err, &[&old.key_pem()]);

    let mut ca_info = ca.ca_info();
    ca_info.not_after_ms = NOW_MS - 1;
    let leaf = p256_leaf("printer", &ca);
    let err = parse_id(&leaf.with_key(), Some(&ca_info), NOW_MS).unwrap_err();
    assert_eq!(err.code(), "certificate.ca_expired");
}

#[test]
fn refuses_key_usage_without_signature_or_encipherment() {
    let ca = p256_ca("Site CA");
    let mut p = leaf_params("agreement-only");
    p.key_usages = vec![KeyUsagePurpose::KeyAgreement];
    let leaf = signed(p, key(&rcgen::PKCS_ECDSA_P256_SHA256), &ca);
    let err = parse_id(&leaf.with_key(), Some(&ca.ca_info()), NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "key usage allows neither digitalSignature nor keyEncipherment"
    );
}

#[test]
fn refuses_a_key_that_does_not_match_without_showing_it() {
    let ca = p256_ca("Site CA");
    let leaf = p256_leaf("printer-1", &ca);
    let stranger = key(&rcgen::PKCS_ECDSA_P256_SHA256).serialize_pem();
    let input = CertificateInput::Pem(format!("{}{}", leaf.pem(), stranger));
    let err = parse_id(&input, Some(&ca.ca_info()), NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the private key does not match the certificate"
    );
    assert_error_hides(&input, &err, &[&stranger]);

    // Same curve is not enough, and another algorithm does not match either.
    let ed = key(&rcgen::PKCS_ED25519).serialize_pem();
    let input = CertificateInput::Pem(format!("{}{}", leaf.pem(), ed));
    assert_eq!(
        parse_id(&input, None, NOW_MS).unwrap_err(),
        CertificateError::KeyMismatch
    );
}

#[test]
fn refuses_no_key_two_keys_and_unsupported_keys() {
    let ca = p256_ca("Site CA");
    let leaf = p256_leaf("printer-1", &ca);
    let der = CertificateInput::Der(leaf.cert.der().to_vec());
    assert_eq!(
        parse_id(&der, None, NOW_MS).unwrap_err(),
        CertificateError::MissingPrivateKey
    );

    let two = CertificateInput::Pem(format!(
        "{}{}{}",
        leaf.pem(),
        leaf.key_pem(),
        leaf.key_pem()
    ));
    let err = parse_id(&two, None, NOW_MS).unwrap_err();
    assert_eq!(err.to_string(), "more than one private key");
    assert_error_hides(&two, &err, &[&leaf.key_pem()]);

    // An X25519 key (OID 1.3.101.110) is valid PKCS#8 but cannot sign.
    let mut x25519 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04,
        0x20,
    ];
    x25519.extend([7u8; 32]);
    let pem =
        pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &x25519).unwrap();
    let input = CertificateInput::Pem(format!("{}{}", leaf.pem(), pem));
    let err = parse_id(&input, None, NOW_MS).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("unsupported private key algorithm 1.3.101.110"));

    let junk = pem_rfc7468::encode_string(
        "EC PRIVATE KEY",
        pem_rfc7468::LineEnding::LF,
        &[0x30, 0x03, 0x02, 0x01, 0x01],
    )
    .unwrap();
    let input = CertificateInput::Pem(format!("{}{}", leaf.pem(), junk));
    let err = parse_id(&input, None, NOW_MS).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the private key could not be read as SEC1 (EC PRIVATE KEY)"
    );

    let only_key = CertificateInput::Pem(leaf.key_pem());
    let err = parse_id(&only_key, None, NOW_MS).unwrap_err();
    assert_eq!(err.to_string(), "no certificate found in the PEM text");
    assert_error_hides(&only_key, &err, &[&leaf.key_pem()]);
}
