//! Why an uploaded certificate was refused. Every message names what is wrong in words an admin
//! can act on, and none carries key material or a passphrase: variants hold only counts, dates,
//! distinguished names, object identifiers and the decoders' own position-only messages.

/// A refused certificate upload. `code` gives a stable machine code per variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("no certificate found in the {place}")]
    NoCertificate { place: &'static str },
    #[error("expected exactly one CA certificate, found {count}")]
    MoreThanOneCertificate { count: usize },
    #[error("the PEM text could not be read: {reason}")]
    PemMalformed { reason: String },
    #[error("the PEM text holds an unsupported block \"{label}\"")]
    UnsupportedPemBlock { label: String },
    #[error("encrypted private keys are not supported: upload the key unencrypted, or as PKCS#12 with a passphrase")]
    EncryptedPrivateKey,
    #[error("the certificate could not be parsed: {reason}")]
    Malformed { reason: String },
    #[error("the certificate expired on {date}")]
    Expired { date: String },
    #[error("the certificate is not valid yet: its validity starts on {date}")]
    NotYetValid { date: String },
    #[error("the CA certificate expired on {date}")]
    CaExpired { date: String },
    #[error("not a CA certificate: {reason}")]
    NotCa { reason: &'static str },
    #[error("key usage lacks keyCertSign, so this certificate may not sign other certificates")]
    KeyUsageLacksCertSign,
    #[error("key usage allows neither digitalSignature nor keyEncipherment")]
    KeyUsageNotForIdentity,
    #[error("a CA upload must not contain a private key")]
    PrivateKeyNotAllowed,
    #[error("no private key found: an ID certificate must be uploaded with its private key")]
    MissingPrivateKey,
    #[error("more than one private key")]
    MoreThanOneKey,
    #[error("the private key could not be read as {format}")]
    InvalidPrivateKey { format: &'static str },
    #[error("unsupported private key algorithm {algorithm}; supported are RSA, ECDSA P-256 and P-384, and Ed25519")]
    UnsupportedKeyAlgorithm { algorithm: String },
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    #[error("PKCS#12: wrong passphrase or corrupt file")]
    Pkcs12,
    #[error(
        "not signed by the given CA (the certificate's issuer is \"{issuer}\", the CA is \"{ca}\")"
    )]
    NotSignedByCa { issuer: String, ca: String },
    #[error("the signature algorithm {algorithm} is not supported for checking against the CA; supported are RSA PKCS#1 v1.5 and ECDSA P-256/P-384, each with SHA-256/384/512, and Ed25519")]
    UnsupportedSignatureAlgorithm { algorithm: String },
}

impl CertificateError {
    /// A stable machine code, for API answers and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "certificate.too_large",
            Self::NoCertificate { .. } => "certificate.none",
            Self::MoreThanOneCertificate { .. } => "certificate.more_than_one",
            Self::PemMalformed { .. } => "certificate.pem_malformed",
            Self::UnsupportedPemBlock { .. } => "certificate.pem_unsupported_block",
            Self::EncryptedPrivateKey => "certificate.key_encrypted",
            Self::Malformed { .. } => "certificate.malformed",
            Self::Expired { .. } => "certificate.expired",
            Self::NotYetValid { .. } => "certificate.not_yet_valid",
            Self::CaExpired { .. } => "certificate.ca_expired",
            Self::NotCa { .. } => "certificate.not_ca",
            Self::KeyUsageLacksCertSign => "certificate.key_usage_cert_sign",
            Self::KeyUsageNotForIdentity => "certificate.key_usage_identity",
            Self::PrivateKeyNotAllowed => "certificate.key_not_allowed",
            Self::MissingPrivateKey => "certificate.key_missing",
            Self::MoreThanOneKey => "certificate.key_more_than_one",
            Self::InvalidPrivateKey { .. } => "certificate.key_invalid",
            Self::UnsupportedKeyAlgorithm { .. } => "certificate.key_unsupported",
            Self::KeyMismatch => "certificate.key_mismatch",
            Self::Pkcs12 => "certificate.pkcs12",
            Self::NotSignedByCa { .. } => "certificate.not_signed_by_ca",
            Self::UnsupportedSignatureAlgorithm { .. } => "certificate.signature_unsupported",
        }
    }

    /// A decoder error on certificate bytes; its message holds positions and tags only.
    pub(super) fn malformed(e: impl std::fmt::Display) -> Self {
        Self::Malformed {
            reason: e.to_string(),
        }
    }
}
