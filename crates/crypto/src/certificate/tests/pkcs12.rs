//! PKCS#12 uploads, against the OpenSSL-made fixtures.

use super::*;

const PASSPHRASE: &str = "correct-horse";
const CA_PEM: &str = include_str!("../fixtures/ca.pem");
const ID_EC: &[u8] = include_bytes!("../fixtures/id-ec.p12");
const ID_RSA_3DES: &[u8] = include_bytes!("../fixtures/id-rsa-3des.p12");
const CA_ONLY: &[u8] = include_bytes!("../fixtures/ca-only.p12");

fn fixture_ca() -> CertificateInfo {
    parse_ca(&CertificateInput::Pem(CA_PEM.to_string()), NOW_MS).unwrap()
}

#[test]
fn opens_modern_and_legacy_files_with_the_right_passphrase() {
    let ca = fixture_ca();
    for (file, subject) in [(ID_EC, "CN=printer-ec"), (ID_RSA_3DES, "CN=printer-rsa")] {
        let id = parse_id(
            &CertificateInput::pkcs12(file.to_vec(), PASSPHRASE),
            Some(&ca),
            NOW_MS,
        )
        .unwrap();
        assert_eq!(id.certificate.subject, subject);
        assert_eq!(id.certificate.issuer, "CN=Printfleet Fixture CA");
        assert_eq!(id.chain, std::slice::from_ref(&ca));
        assert!(id
            .private_key_pem
            .expose()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        let shown = format!("{id:?}");
        assert_hidden(&shown, &[id.private_key_pem.expose().as_str(), PASSPHRASE]);
    }
}

#[test]
fn serial_numbers_are_lower_hex() {
    let ca = fixture_ca();
    let id = parse_id(
        &CertificateInput::pkcs12(ID_EC.to_vec(), PASSPHRASE),
        Some(&ca),
        NOW_MS,
    )
    .unwrap();
    assert_eq!(id.certificate.serial, "1001");
}

#[test]
fn refuses_a_wrong_passphrase_without_showing_either() {
    let wrong = "Tr0ub4dor&3";
    for file in [ID_EC, ID_RSA_3DES] {
        let input = CertificateInput::pkcs12(file.to_vec(), wrong);
        let err = parse_id(&input, None, NOW_MS).unwrap_err();
        assert_eq!(err.to_string(), "PKCS#12: wrong passphrase or corrupt file");
        assert_error_hides(&input, &err, &[wrong, PASSPHRASE]);
    }
}

#[test]
fn refuses_a_corrupt_or_truncated_file() {
    let mut flipped = ID_EC.to_vec();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    let truncated = ID_EC[..ID_EC.len() - 40].to_vec();
    for bytes in [flipped, truncated, b"not a pkcs12 file".to_vec()] {
        let input = CertificateInput::pkcs12(bytes, PASSPHRASE);
        let err = parse_id(&input, None, NOW_MS).unwrap_err();
        assert_eq!(err, CertificateError::Pkcs12);
        assert_error_hides(&input, &err, &[PASSPHRASE]);
    }
}

#[test]
fn refuses_an_id_from_another_ca() {
    let other = p256_ca("Other CA").ca_info();
    let input = CertificateInput::pkcs12(ID_EC.to_vec(), PASSPHRASE);
    let err = parse_id(&input, Some(&other), NOW_MS).unwrap_err();
    assert_eq!(err.code(), "certificate.not_signed_by_ca");
    assert_error_hides(&input, &err, &[PASSPHRASE]);
}

#[test]
fn a_ca_may_come_as_pkcs12_but_not_with_a_key() {
    let ca = parse_ca(
        &CertificateInput::pkcs12(CA_ONLY.to_vec(), PASSPHRASE),
        NOW_MS,
    )
    .unwrap();
    assert_eq!(ca, fixture_ca());
    let input = CertificateInput::pkcs12(ID_EC.to_vec(), PASSPHRASE);
    let err = parse_ca(&input, NOW_MS).unwrap_err();
    assert_eq!(err, CertificateError::PrivateKeyNotAllowed);
    let err = parse_id(
        &CertificateInput::pkcs12(CA_ONLY.to_vec(), PASSPHRASE),
        None,
        NOW_MS,
    )
    .unwrap_err();
    assert_eq!(err, CertificateError::MissingPrivateKey);
}
