//! The endpoints printers call (`/device/v1`). Printers start every exchange; the server never
//! connects to them.

use crate::auth::Source;
use crate::device_channel::Refused;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use printfleet_domain::device::DeviceFacts;
use printfleet_protocol::messages::{
    message_id_hex, AckStatus, CheckIn, CheckInAck, Fetch, ReEnrol, Work, WorkItem,
};
use printfleet_protocol::{Header, MessageType, PublicKey, SealedToDevice};
use printfleet_storage::enrolment::{EnrolRefusal, Takeover};
use printfleet_storage::telemetry::CheckInOutcome;
use printfleet_wire as wire;
use std::time::Duration;

/// Enrols a printer with an enrolment token. Refusals have distinct codes: `token_malformed`,
/// `token_unknown`, `token_expired`, `token_revoked`, `token_exhausted`, `device_exists`,
/// `bad_public_key`, `public_key_in_use`, `bad_proof`, `key_revoked`. A serial already enrolled
/// re-enrols with a `proof` from its current key, or after an admin's approval.
#[utoipa::path(post, path = "/device/v1/enrol", tag = "device", request_body = wire::EnrolRequest,
    responses((status = 201, body = wire::EnrolResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn enrol(
    State(state): State<AppState>,
    Source(source): Source,
    ApiJson(req): ApiJson<wire::EnrolRequest>,
) -> ApiResult<Response> {
    let facts = DeviceFacts::parse(&req.serial, &req.model, &req.firmware)?;
    let key_bytes = hex::decode(req.public_key.trim())
        .map_err(|_| ApiError::field("public_key", "must be 64 hex digits"))?;
    let device_pk = PublicKey::from_bytes(&key_bytes).ok_or_else(|| {
        ApiError::field("public_key", "must be an X25519 public key (64 hex digits)")
    })?;
    let takeover = match &req.proof {
        None => Takeover::None,
        Some(proof) => match check_proof(&state, proof, &device_pk).await? {
            Ok(device) => Takeover::Proven(device),
            Err(r) => return Ok(r.into_response()),
        },
    };
    let enrolled = match state
        .store
        .enrol_device(&req.token, &facts, &key_bytes, source, takeover)
        .await?
    {
        Ok(e) => e,
        Err(r) => return Err(refusal(r)),
    };
    if enrolled.key_version > 1 {
        // Re-enrolled: the old heartbeat key must stop working at once (the doorbell caches
        // keys by id).
        if let Some(d) = state.doorbell.get() {
            d.forget_printer(enrolled.device);
        }
        state.channel.sessions.forget(enrolled.device);
    }
    let server = state.store.server_device_keypair().await?;
    let mut content = hex::decode(&enrolled.secrets.enrolment_secret)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    content.extend(
        hex::decode(&enrolled.secrets.verifier_key)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    let sealed = seal_to_device(&state, &server, &device_pk, "enrolment", content)?;
    Ok((
        StatusCode::CREATED,
        Json(wire::EnrolResponse {
            printer_id: enrolled.device,
            server_public_key: hex::encode(server.public.to_bytes()),
            parameters: wire::DeviceParameters {
                heartbeat_port: state
                    .doorbell
                    .get()
                    .and_then(|d| d.local_addr().ok())
                    .map(|a| a.port())
                    .unwrap_or(printfleet_doorbell::DEFAULT_PORT),
                heartbeat_interval_s: 60,
                keepalive_interval_s: 25,
                https_ports: vec![443, 631],
            },
            sealed_secrets: sealed,
        }),
    )
        .into_response())
}

fn refusal(r: EnrolRefusal) -> ApiError {
    let message = r.to_string();
    match r {
        EnrolRefusal::Malformed | EnrolRefusal::BadKey => ApiError::BadRequest {
            code: r.code(),
            field: Some(
                if r == EnrolRefusal::BadKey {
                    "public_key"
                } else {
                    "token"
                }
                .into(),
            ),
            message,
        },
        EnrolRefusal::AlreadyEnrolled | EnrolRefusal::KeyInUse => ApiError::Conflict {
            code: r.code(),
            message,
        },
        EnrolRefusal::Unknown
        | EnrolRefusal::BadProof
        | EnrolRefusal::Expired
        | EnrolRefusal::Revoked
        | EnrolRefusal::Exhausted => ApiError::Refused {
            code: r.code(),
            message,
        },
    }
}

/// Opens a re-enrolment proof: a `re_enrol` body from a live printer's current key naming that
/// printer and the key being enrolled. Returns the printer it proves.
async fn check_proof(
    state: &AppState,
    proof_hex: &str,
    new_key: &PublicKey,
) -> ApiResult<Result<printfleet_domain::DeviceId, Response>> {
    let bad = |message: &str| -> Response {
        ApiError::Refused {
            code: "bad_proof",
            message: message.to_string(),
        }
        .into_response()
    };
    let Ok(bytes) = hex::decode(proof_hex.trim()) else {
        return Ok(Err(bad("proof must be hex")));
    };
    let now = state.clock.now_ms();
    let opened = match state
        .channel
        .open(
            &state.store,
            &state.metrics,
            now,
            MessageType::ReEnrol,
            &bytes,
        )
        .await?
    {
        Ok(o) => o,
        Err(Refused::KeyRevoked) => return Ok(Err(Refused::KeyRevoked.into_response())),
        Err(r) => {
            return Ok(Err(ApiError::Refused {
                code: "bad_proof",
                message: format!("the proof was refused: {}", r.code()),
            }
            .into_response()))
        }
    };
    let Ok(claim) = ReEnrol::decode(&opened.plaintext) else {
        return Ok(Err(bad("the proof's content is not a re_enrol message")));
    };
    if claim.printer_id != opened.sender.device.to_string()
        || !claim
            .new_public_key
            .eq_ignore_ascii_case(&hex::encode(new_key.to_bytes()))
    {
        return Ok(Err(bad("the proof names another printer or key")));
    }
    Ok(Ok(opened.sender.device))
}

/// A printer's check-in (sealed `check_in`): stored durably before the sealed acknowledgement
/// is sent. 200 `stored`/`duplicate`, 422 `refused` (sealed, with code and field); a body that
/// cannot be opened gets a clear JSON refusal.
#[utoipa::path(post, path = "/device/v1/check-in", tag = "device",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "sealed check_in body"),
    responses((status = 200, description = "sealed check_in_ack (stored or duplicate)", content_type = "application/octet-stream"),
        (status = 422, description = "sealed check_in_ack (refused)", content_type = "application/octet-stream"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody)))]
pub async fn check_in(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let now = state.clock.now_ms();
    let opened = match open_body(&state, now, MessageType::CheckIn, body).await? {
        Ok(o) => o,
        Err(refused) => return Ok(refused),
    };
    let mut ack = CheckInAck {
        reply_to: message_id_hex(&opened.message_id),
        seq: 0,
        status: AckStatus::Stored,
        code: None,
        field: None,
        message: None,
    };
    let refuse = |ack: &mut CheckInAck, code: &str, field: String, message: String| {
        ack.status = AckStatus::Refused;
        ack.code = Some(code.to_string());
        ack.field = Some(field);
        ack.message = Some(message);
    };
    match CheckIn::decode(&opened.plaintext) {
        Err(e) => refuse(&mut ack, e.code, e.field, e.message),
        Ok(report) => {
            ack.seq = report.seq;
            match state
                .store
                .check_in(
                    opened.sender.tenant,
                    opened.sender.device,
                    report,
                    state.channel.catalogue.clone(),
                )
                .await?
            {
                // Only a report that changed what compliance depends on wakes the assessor.
                CheckInOutcome::Stored { reassess: true } => state
                    .assessor
                    .hint(opened.sender.tenant, opened.sender.device),
                CheckInOutcome::Stored { reassess: false } => {}
                CheckInOutcome::Duplicate => ack.status = AckStatus::Duplicate,
                CheckInOutcome::Refused(r) => refuse(&mut ack, r.code, r.field, r.message),
                CheckInOutcome::Gone => return Ok(gone(&state, &opened).await?.into_response()),
            }
        }
    }
    let (status, outcome) = match (&ack.status, &ack.code) {
        (AckStatus::Stored, _) => (StatusCode::OK, "stored".to_string()),
        (AckStatus::Duplicate, _) => (StatusCode::OK, "duplicate".to_string()),
        (AckStatus::Refused, code) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("refused_{}", code.as_deref().unwrap_or("unknown")),
        ),
    };
    state.metrics.check_in(&outcome);
    state
        .channel
        .answer(
            &state.store,
            now,
            &opened,
            MessageType::CheckInAck,
            status,
            &ack.encode(),
        )
        .await
}

/// A printer fetches its work (sealed `fetch`), acknowledging earlier items; with `wait_ms` the
/// request is held until work appears (the long-poll fallback where UDP is blocked).
#[utoipa::path(post, path = "/device/v1/fetch", tag = "device",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "sealed fetch body"),
    responses((status = 200, description = "sealed work", content_type = "application/octet-stream"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn fetch(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let now = state.clock.now_ms();
    let opened = match open_body(&state, now, MessageType::Fetch, body).await? {
        Ok(o) => o,
        Err(refused) => return Ok(refused),
    };
    let req = Fetch::decode(&opened.plaintext).map_err(|e| ApiError::Unprocessable {
        code: e.code,
        field: e.field,
        message: e.message,
    })?;
    let (tenant, device) = (opened.sender.tenant, opened.sender.device);
    let Some(mut items) = state.store.work_fetch(tenant, device, &req.acks).await? else {
        return Ok(gone(&state, &opened).await?.into_response());
    };
    if items.is_empty() && req.wait_ms > 0 {
        let waiter = state.channel.waiter(device);
        let notified = waiter.notified();
        tokio::pin!(notified);
        // Registered before looking again, so work queued in between is not missed.
        notified.as_mut().enable();
        let mut again = state.store.work_fetch(tenant, device, &[]).await?;
        if again.as_ref().is_some_and(Vec::is_empty) {
            let _ = tokio::time::timeout(Duration::from_millis(req.wait_ms), notified).await;
            again = state.store.work_fetch(tenant, device, &[]).await?;
        }
        state.channel.forget_waiter(device, &waiter);
        match again {
            Some(a) => items = a,
            None => return Ok(gone(&state, &opened).await?.into_response()),
        }
    }
    let work = Work {
        reply_to: message_id_hex(&opened.message_id),
        items: items
            .into_iter()
            .map(|w| WorkItem {
                id: w.id,
                kind: w.kind,
                data: w.data,
            })
            .collect(),
    };
    let work = resolve_secrets(&state, tenant, device, &opened.sender_key, work).await?;
    state
        .channel
        .answer(
            &state.store,
            state.clock.now_ms(),
            &opened,
            MessageType::Work,
            StatusCode::OK,
            &work.encode(),
        )
        .await
}

/// Reads and opens a printer's sealed body of type `kind`; `Err` is the clear refusal to send.
async fn open_body(
    state: &AppState,
    now: i64,
    kind: MessageType,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Result<crate::device_channel::Opened, Response>> {
    let body = match body {
        Ok(b) => b,
        Err(r) => return Ok(Err(body_refused(state, r))),
    };
    Ok(state
        .channel
        .open(&state.store, &state.metrics, now, kind, &body)
        .await?
        .map_err(IntoResponse::into_response))
}

/// A body the server would not even read (larger than the configured limit): the same clear
/// refusal as a sealed body over the protocol's limit.
fn body_refused(state: &AppState, r: BytesRejection) -> Response {
    let refused = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Refused::Open(printfleet_protocol::OpenError::Oversized)
    } else {
        Refused::Open(printfleet_protocol::OpenError::Truncated)
    };
    state.metrics.sealed_refused(refused.code());
    refused.into_response()
}

/// The printer went away while its request was handled: say how (revoked or removed).
async fn gone(state: &AppState, opened: &crate::device_channel::Opened) -> ApiResult<Refused> {
    let key_id = opened.sender_key.key_id();
    Ok(
        match printfleet_storage::resolver::device_by_kem_key(&state.store, &key_id.0).await? {
            Some(k) if k.revoked => Refused::KeyRevoked,
            _ => Refused::UnknownSender,
        },
    )
}

/// Seals `content` so that only the printer holding `device_pk` can open it (message type
/// `sealed_to_device`); hex, as it travels inside JSON.
fn seal_to_device(
    state: &AppState,
    server: &printfleet_protocol::KeyPair,
    device_pk: &PublicKey,
    purpose: &str,
    content: Vec<u8>,
) -> Result<String, ApiError> {
    let payload = SealedToDevice {
        purpose: purpose.into(),
        content,
    }
    .encode()
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut rng = printfleet_protocol::system_rng();
    let header = Header::new(
        MessageType::SealedToDevice,
        &server.public,
        device_pk,
        state.clock.now_ms().max(0) as u64,
        &mut rng,
    );
    let sealed = printfleet_protocol::seal(
        device_pk,
        &server.private,
        &server.public,
        &header,
        &payload,
        &mut rng,
    )
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(hex::encode(sealed.as_bytes()))
}

/// `apply_settings` items name the secrets and certificates they carry (`resolve`); they are
/// looked up in the policy version now (a secret unique per printer: this printer's own
/// generated value) and sealed to this printer, so the outbox never holds them and nothing
/// between the server and the printer can read them.
async fn resolve_secrets(
    state: &AppState,
    tenant: printfleet_domain::TenantId,
    device: printfleet_domain::DeviceId,
    device_pk: &PublicKey,
    mut work: Work,
) -> Result<Work, ApiError> {
    for item in &mut work.items {
        if item.kind != "apply_settings" {
            continue;
        }
        let Some(data) = item.data.as_object_mut() else {
            continue;
        };
        let resolve: Vec<String> = match data.remove("resolve") {
            Some(serde_json::Value::Array(a)) => a
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if resolve.is_empty() {
            continue;
        }
        let policy = data
            .get("policy")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        let version = data.get("version").and_then(|v| v.as_i64());
        let (Some(policy), Some(version)) = (policy, version) else {
            continue;
        };
        let (public, secrets) = state
            .store
            .apply_settings_payload(tenant, device, policy, version, &resolve)
            .await?;
        if let Some(serde_json::Value::Object(settings)) = data.get_mut("settings") {
            settings.extend(public);
        }
        if !secrets.0.is_empty() {
            let content =
                serde_json::to_vec(&secrets).map_err(|e| ApiError::Internal(e.to_string()))?;
            let server = state.store.server_device_keypair().await?;
            let sealed = seal_to_device(state, &server, device_pk, "settings", content)?;
            data.insert("sealed".into(), serde_json::Value::String(sealed));
        }
    }
    Ok(work)
}
