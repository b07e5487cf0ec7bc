//! Enrolment: generate a key pair, present the token, open the sealed secrets, derive the
//! heartbeat keys.

use printfleet_protocol::heartbeat::{derive_heartbeat_key, HeartbeatKeys};
use printfleet_protocol::messages::ReEnrol;
use printfleet_protocol::{
    Header, KeyPair, MessageType, OpenLimits, PublicKey, ReplayCache, SealedToDevice,
};
use printfleet_wire as wire;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused, with its stable code (e.g. `token_expired`).
    #[error("refused: {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the server's answer is not valid: {0}")]
    BadAnswer(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What the printer says about itself.
#[derive(Clone, Debug)]
pub struct Identity {
    pub serial: String,
    pub model: String,
    pub firmware: String,
}

/// What a printer keeps after enrolling. Holds secrets: `Debug` shows only the id.
pub struct Enrolment {
    pub printer_id: uuid::Uuid,
    pub key: KeyPair,
    pub server_key: PublicKey,
    pub heartbeat_keys: HeartbeatKeys,
    pub verifier_key: [u8; 32],
    pub parameters: wire::DeviceParameters,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("printer_id", &self.printer_id)
            .finish_non_exhaustive()
    }
}

fn bad(what: &str) -> AgentError {
    AgentError::BadAnswer(what.to_string())
}

/// Enrols at `base_url` (e.g. `https://printfleet.example.com`) with an enrolment token.
pub async fn enrol(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    identity: &Identity,
    now_ms: u64,
) -> Result<Enrolment, AgentError> {
    enrol_inner(client, base_url, token, identity, now_ms, None).await
}

/// Enrols at the first of `bases` that can be reached (443, then 631: see
/// [`crate::base_urls`]); returns the enrolment and the base URL that answered.
pub async fn enrol_first(
    client: &reqwest::Client,
    bases: &[String],
    token: &str,
    identity: &Identity,
    now_ms: u64,
) -> Result<(Enrolment, String), AgentError> {
    let mut last = AgentError::BadAnswer("no server URL".into());
    for base in bases {
        match enrol(client, base, token, identity, now_ms).await {
            Ok(e) => return Ok((e, base.clone())),
            Err(AgentError::Http(e)) if e.is_connect() => last = AgentError::Http(e),
            Err(other) => return Err(other),
        }
    }
    Err(last)
}

/// Enrols again with a new key pair, proving with the current one (`current`) that this is
/// the same printer: it keeps its id and history and gets all-new secrets. Without a proof
/// (lost key, revoked key) use [`enrol`] after an admin approved the re-enrolment.
pub async fn reenrol(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    identity: &Identity,
    current: &Enrolment,
    now_ms: u64,
) -> Result<Enrolment, AgentError> {
    enrol_inner(client, base_url, token, identity, now_ms, Some(current)).await
}

async fn enrol_inner(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    identity: &Identity,
    now_ms: u64,
    current: Option<&Enrolment>,
) -> Result<Enrolment, AgentError> {
    let key = KeyPair::generate(&mut printfleet_protocol::system_rng());
    let mut body = serde_json::json!({
        "token": token,
        "serial": identity.serial,
        "model": identity.model,
        "firmware": identity.firmware,
        "public_key": hex::encode(key.public.to_bytes()),
    });
    if let Some(cur) = current {
        let claim = ReEnrol {
            printer_id: cur.printer_id.to_string(),
            new_public_key: hex::encode(key.public.to_bytes()),
        };
        let mut rng = printfleet_protocol::system_rng();
        let header = Header::new(
            MessageType::ReEnrol,
            &cur.key.public,
            &cur.server_key,
            now_ms,
            &mut rng,
        );
        let proof = printfleet_protocol::seal(
            &cur.server_key,
            &cur.key.private,
            &cur.key.public,
            &header,
            &claim.encode(),
            &mut rng,
        )
        .map_err(|e| AgentError::BadAnswer(format!("sealing the proof: {}", e.code())))?;
        body["proof"] = serde_json::Value::String(hex::encode(proof.as_bytes()));
    }
    let r = client
        .post(format!(
            "{}/device/v1/enrol",
            base_url.trim_end_matches('/')
        ))
        .json(&body)
        .send()
        .await?;
    let status = r.status().as_u16();
    if status != 201 {
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        return Err(AgentError::Refused {
            status,
            code: v["code"].as_str().unwrap_or("unknown").to_string(),
            message: v["message"].as_str().unwrap_or("").to_string(),
        });
    }
    let answer: wire::EnrolResponse = r.json().await?;
    let server_key = hex::decode(&answer.server_public_key)
        .ok()
        .and_then(|b| PublicKey::from_bytes(&b))
        .ok_or_else(|| bad("server_public_key"))?;
    let sealed = hex::decode(&answer.sealed_secrets).map_err(|_| bad("sealed_secrets"))?;
    let (_, plain) = printfleet_protocol::open(
        &key.private,
        &server_key,
        &sealed,
        &OpenLimits::new(now_ms),
        &mut ReplayCache::new(4),
    )
    .map_err(|e| AgentError::BadAnswer(format!("sealed_secrets: {}", e.code())))?;
    let payload =
        SealedToDevice::decode(&plain).map_err(|e| AgentError::BadAnswer(e.code().into()))?;
    if payload.purpose != "enrolment" || payload.content.len() != 64 {
        return Err(bad("sealed_secrets: not an enrolment payload"));
    }
    let printer_id = answer.printer_id.as_uuid();
    let heartbeat_keys = derive_heartbeat_key(&payload.content[..32], printer_id.as_bytes()).keys();
    let mut verifier_key = [0u8; 32];
    verifier_key.copy_from_slice(&payload.content[32..]);
    Ok(Enrolment {
        printer_id,
        key,
        server_key,
        heartbeat_keys,
        verifier_key,
        parameters: answer.parameters,
    })
}
