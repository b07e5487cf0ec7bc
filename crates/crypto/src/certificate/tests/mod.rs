//! Tests of certificate parsing and checking. Certificates are made at test time with rcgen;
//! PKCS#12 files are fixtures made with OpenSSL (`../fixtures/README.md`).

mod ca;
mod id;
mod input;
mod pkcs12;

use super::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use std::sync::OnceLock;

/// 2027-01-15T08:00:00Z: inside every test certificate's validity unless a test says otherwise.
pub(super) const NOW_MS: i64 = 1_800_000_000_000;

/// A certificate and the key pair it was issued to.
pub(super) struct Issued {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

impl Issued {
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
    /// Certificate and PKCS#8 key in one PEM text, as an admin would paste them.
    pub fn with_key(&self) -> CertificateInput {
        CertificateInput::Pem(format!("{}{}", self.pem(), self.key_pem()))
    }
    /// This certificate accepted as a CA.
    pub fn ca_info(&self) -> CertificateInfo {
        parse_ca(&CertificateInput::Pem(self.pem()), NOW_MS).unwrap()
    }
}

pub(super) fn params(common_name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    p
}

pub(super) fn ca_params(common_name: &str) -> CertificateParams {
    let mut p = params(common_name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

pub(super) fn leaf_params(common_name: &str) -> CertificateParams {
    let mut p = params(common_name);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p
}

pub(super) fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    KeyPair::generate_for(alg).unwrap()
}

pub(super) fn self_signed(params: CertificateParams, key: KeyPair) -> Issued {
    let cert = params.self_signed(&key).unwrap();
    Issued { cert, key }
}

pub(super) fn signed(params: CertificateParams, key: KeyPair, issuer: &Issued) -> Issued {
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    Issued { cert, key }
}

pub(super) fn p256_ca(common_name: &str) -> Issued {
    self_signed(ca_params(common_name), key(&rcgen::PKCS_ECDSA_P256_SHA256))
}

pub(super) fn p256_leaf(common_name: &str, issuer: &Issued) -> Issued {
    signed(
        leaf_params(common_name),
        key(&rcgen::PKCS_ECDSA_P256_SHA256),
        issuer,
    )
}

/// One RSA-2048 key for all tests (ring, rcgen's backend, cannot generate RSA keys), made from
/// a fixed seed so that failures reproduce.
pub(super) fn rsa_private() -> &'static rsa::PrivateKey {
    static KEY: OnceLock<rsa::PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x7072_696e_7466_6c74);
        rsa::PrivateKey::new(&mut rng, 2048).unwrap()
    })
}

pub(super) fn rsa_key(alg: &'static SignatureAlgorithm) -> KeyPair {
    let pem = rsa_private().to_pkcs8_pem(LineEnding::LF).unwrap();
    KeyPair::from_pkcs8_pem_and_sign_algo(&pem, alg).unwrap()
}

/// Asserts that `shown` contains no line of any secret: for a PEM, its base64 lines; for a
/// passphrase, the passphrase itself.
pub(super) fn assert_hidden(shown: &str, secrets: &[&str]) {
    for secret in secrets {
        let pieces: Vec<&str> = if secret.contains("-----BEGIN") {
            secret
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .collect()
        } else {
            vec![secret]
        };
        assert!(!pieces.is_empty());
        for piece in pieces {
            assert!(!shown.contains(piece), "secret shown in: {shown}");
        }
    }
}

/// The error's `Display` and `Debug`, and the input's `Debug`, show none of `secrets`.
pub(super) fn assert_error_hides(
    input: &CertificateInput,
    err: &CertificateError,
    secrets: &[&str],
) {
    assert_hidden(&format!("{err}"), secrets);
    assert_hidden(&format!("{err:?}"), secrets);
    assert_hidden(&format!("{input:?}"), secrets);
}
