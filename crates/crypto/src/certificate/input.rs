//! Turning an upload (PEM text, DER bytes or a PKCS#12 file) into certificate DERs and private key
//! DERs, without interpreting either yet. Key bytes live only in `Zeroizing` buffers.

use super::{CertificateError, CertificateInput, MAX_INPUT_BYTES};
use zeroize::Zeroizing;

/// A private key's DER in the format its PEM label (or PKCS#12 bag) announced.
pub(super) enum KeyDer {
    Pkcs8(Zeroizing<Vec<u8>>),
    Pkcs1(Zeroizing<Vec<u8>>),
    Sec1(Zeroizing<Vec<u8>>),
}

/// The pieces of one upload.
pub(super) struct Unpacked {
    pub certificates: Vec<Vec<u8>>,
    pub keys: Vec<KeyDer>,
    /// Where the certificates came from, for "no certificate found in the …".
    pub place: &'static str,
}

pub(super) fn unpack(input: &CertificateInput) -> Result<Unpacked, CertificateError> {
    let too_large = CertificateError::TooLarge {
        limit: MAX_INPUT_BYTES,
    };
    match input {
        CertificateInput::Pem(text) if text.len() > MAX_INPUT_BYTES => Err(too_large),
        CertificateInput::Pem(text) => unpack_pem(text),
        CertificateInput::Der(der) if der.len() > MAX_INPUT_BYTES => Err(too_large),
        CertificateInput::Der(der) => Ok(Unpacked {
            certificates: vec![der.clone()],
            keys: Vec::new(),
            place: "DER file",
        }),
        CertificateInput::Pkcs12 { der, .. } if der.len() > MAX_INPUT_BYTES => Err(too_large),
        CertificateInput::Pkcs12 { der, passphrase } => unpack_pkcs12(der, passphrase.expose()),
    }
}

/// Collects every `-----BEGIN …-----` block; text between blocks (such as OpenSSL's "Bag
/// Attributes" lines) is ignored, as tools commonly write it.
pub(super) fn unpack_pem(text: &str) -> Result<Unpacked, CertificateError> {
    let mut out = Unpacked {
        certificates: Vec::new(),
        keys: Vec::new(),
        place: "PEM text",
    };
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after_begin = &rest[start + "-----BEGIN ".len()..];
        let label_end = after_begin
            .find("-----")
            .ok_or_else(|| pem_error("a BEGIN line is not closed"))?;
        let label = &after_begin[..label_end];
        let end_line = format!("-----END {label}-----");
        let end = rest[start..].find(&end_line).ok_or_else(|| {
            pem_error(&format!(
                "the block \"{}\" has no END line",
                safe_label(label)
            ))
        })?;
        let block_end = start + end + end_line.len();
        let block = &rest[start..block_end];
        rest = &rest[block_end..];
        take_block(label, block, &mut out)?;
    }
    Ok(out)
}

fn take_block(label: &str, block: &str, out: &mut Unpacked) -> Result<(), CertificateError> {
    // Legacy OpenSSL encryption writes RFC 1421 headers, which RFC 7468 decoders refuse.
    if label == "ENCRYPTED PRIVATE KEY" || block.contains("Proc-Type:") {
        return Err(CertificateError::EncryptedPrivateKey);
    }
    let decode = || {
        pem_rfc7468::decode_vec(block.as_bytes())
            .map(|(_, der)| Zeroizing::new(der))
            .map_err(|e| pem_error(&format!("the block \"{}\": {e}", safe_label(label))))
    };
    match label {
        "CERTIFICATE" | "X509 CERTIFICATE" => out.certificates.push(decode()?.to_vec()),
        "PRIVATE KEY" => out.keys.push(KeyDer::Pkcs8(decode()?)),
        "RSA PRIVATE KEY" => out.keys.push(KeyDer::Pkcs1(decode()?)),
        "EC PRIVATE KEY" => out.keys.push(KeyDer::Sec1(decode()?)),
        // `openssl ecparam -genkey` writes the curve's name before the key; the key names it too.
        "EC PARAMETERS" => {}
        other => {
            return Err(CertificateError::UnsupportedPemBlock {
                label: safe_label(other),
            })
        }
    }
    Ok(())
}

fn unpack_pkcs12(der: &[u8], passphrase: &str) -> Result<Unpacked, CertificateError> {
    // The crate's errors are not passed on: a wrong passphrase and a damaged file look alike
    // (the MAC fails), and its messages are not ours to promise free of content.
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(der, passphrase)
        .map_err(|_| CertificateError::Pkcs12)?;
    Ok(Unpacked {
        certificates: archive
            .certs
            .iter()
            .map(|bag| bag.cert.as_der().to_vec())
            .collect(),
        keys: archive
            .keys
            .iter()
            .map(|bag| KeyDer::Pkcs8(Zeroizing::new(bag.key.as_der().to_vec())))
            .collect(),
        place: "PKCS#12 file",
    })
}

fn pem_error(reason: &str) -> CertificateError {
    CertificateError::PemMalformed {
        reason: reason.to_string(),
    }
}

/// A label is echoed in messages only if it looks like one: short, upper-case words.
fn safe_label(label: &str) -> String {
    let plausible = label.len() <= 40
        && label
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || c == '#');
    if plausible {
        label.to_string()
    } else {
        "(unreadable label)".to_string()
    }
}
