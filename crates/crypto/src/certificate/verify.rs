//! Checking that a certificate was signed by an issuer's key. Only public-key operations happen
//! here; each algorithm is the RustCrypto crate's own verifier.

use super::CertificateError;
use const_oid::db::{rfc5912, rfc8410};
use der::Encode;
use pkcs8::DecodePublicKey;
use rsa::pkcs1v15;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::signature::Verifier;
use x509_cert::Certificate;

/// `Ok(true)` when `issuer`'s public key verifies `cert`'s signature, `Ok(false)` when it does
/// not (wrong key, wrong curve or damaged signature), and an error for an algorithm we do not
/// check at all, so that "unsupported" is never reported as "not signed".
pub(super) fn signed_by(
    cert: &Certificate,
    issuer: &Certificate,
) -> Result<bool, CertificateError> {
    let tbs = cert
        .tbs_certificate()
        .to_der()
        .map_err(CertificateError::malformed)?;
    let Some(signature) = cert.signature().as_bytes() else {
        return Ok(false);
    };
    let issuer_key = issuer
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(CertificateError::malformed)?;
    let algorithm = cert.signature_algorithm().oid;
    let verified = if algorithm == rfc5912::SHA_256_WITH_RSA_ENCRYPTION {
        rsa_pkcs1v15::<Sha256>(&issuer_key, &tbs, signature)
    } else if algorithm == rfc5912::SHA_384_WITH_RSA_ENCRYPTION {
        rsa_pkcs1v15::<Sha384>(&issuer_key, &tbs, signature)
    } else if algorithm == rfc5912::SHA_512_WITH_RSA_ENCRYPTION {
        rsa_pkcs1v15::<Sha512>(&issuer_key, &tbs, signature)
    } else if algorithm == rfc5912::ECDSA_WITH_SHA_256 {
        ecdsa(&issuer_key, &Sha256::digest(&tbs), signature)
    } else if algorithm == rfc5912::ECDSA_WITH_SHA_384 {
        ecdsa(&issuer_key, &Sha384::digest(&tbs), signature)
    } else if algorithm == rfc5912::ECDSA_WITH_SHA_512 {
        ecdsa(&issuer_key, &Sha512::digest(&tbs), signature)
    } else if algorithm == rfc8410::ID_ED_25519 {
        ed25519(&issuer_key, &tbs, signature)
    } else {
        return Err(CertificateError::UnsupportedSignatureAlgorithm {
            algorithm: algorithm.to_string(),
        });
    };
    Ok(verified)
}

fn rsa_pkcs1v15<D>(issuer_key: &[u8], message: &[u8], signature: &[u8]) -> bool
where
    D: Digest + const_oid::AssociatedOid,
{
    let Ok(key) = rsa::PublicKey::from_public_key_der(issuer_key) else {
        return false;
    };
    let Ok(signature) = pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    pkcs1v15::VerifyingKey::<D>::new(key)
        .verify(message, &signature)
        .is_ok()
}

/// ECDSA over a digest computed by the caller, so that any of the SHA-2 hashes works with either
/// curve (FIPS 186-5 truncates a longer digest to the curve's size; the crates do that).
fn ecdsa(issuer_key: &[u8], digest: &[u8], signature: &[u8]) -> bool {
    use rsa::signature::hazmat::PrehashVerifier;
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(issuer_key) {
        return p256::ecdsa::Signature::from_der(signature)
            .is_ok_and(|s| key.verify_prehash(digest, &s).is_ok());
    }
    if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(issuer_key) {
        return p384::ecdsa::Signature::from_der(signature)
            .is_ok_and(|s| key.verify_prehash(digest, &s).is_ok());
    }
    false
}

fn ed25519(issuer_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(signature)) = (
        ed25519_dalek::VerifyingKey::from_public_key_der(issuer_key),
        ed25519_dalek::Signature::from_slice(signature),
    ) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}
