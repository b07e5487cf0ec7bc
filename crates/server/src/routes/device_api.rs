//! The endpoints printers call (`/device/v1`). Printers start every exchange; the server never
//! connects to them.

use crate::auth::Source;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use printfleet_domain::device::DeviceFacts;
use printfleet_protocol::{Header, MessageType, PublicKey, SealedToDevice};
use printfleet_storage::enrolment::EnrolRefusal;
use printfleet_wire as wire;

/// Enrols a printer with an enrolment token. Refusals have distinct codes: `token_malformed`,
/// `token_unknown`, `token_expired`, `token_revoked`, `token_exhausted`, `device_exists`,
/// `bad_public_key`.
#[utoipa::path(post, path = "/device/v1/enrol", tag = "device", request_body = wire::EnrolRequest,
    responses((status = 201, body = wire::EnrolResponse), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn enrol(
    State(state): State<AppState>,
    Source(source): Source,
    ApiJson(req): ApiJson<wire::EnrolRequest>,
) -> ApiResult<(StatusCode, Json<wire::EnrolResponse>)> {
    let facts = DeviceFacts::parse(&req.serial, &req.model, &req.firmware)?;
    let key_bytes = hex::decode(req.public_key.trim())
        .map_err(|_| ApiError::field("public_key", "must be 64 hex digits"))?;
    let device_pk = PublicKey::from_bytes(&key_bytes).ok_or_else(|| {
        ApiError::field("public_key", "must be an X25519 public key (64 hex digits)")
    })?;
    let enrolled = match state
        .store
        .enrol_device(&req.token, &facts, &key_bytes, source)
        .await?
    {
        Ok(e) => e,
        Err(r) => return Err(refusal(r)),
    };
    let server = state.store.server_device_keypair().await?;
    let mut content = hex::decode(&enrolled.secrets.enrolment_secret)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    content.extend(
        hex::decode(&enrolled.secrets.verifier_key)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    let payload = SealedToDevice {
        purpose: "enrolment".into(),
        content,
    }
    .encode()
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut rng = printfleet_protocol::system_rng();
    let header = Header::new(
        MessageType::SealedToDevice,
        &server.public,
        &device_pk,
        state.clock.now_ms().max(0) as u64,
        &mut rng,
    );
    let sealed = printfleet_protocol::seal(
        &device_pk,
        &server.private,
        &server.public,
        &header,
        &payload,
        &mut rng,
    )
    .map_err(|e| ApiError::Internal(e.to_string()))?;
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
            sealed_secrets: hex::encode(sealed.as_bytes()),
        }),
    ))
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
        EnrolRefusal::AlreadyEnrolled => ApiError::Conflict {
            code: r.code(),
            message,
        },
        EnrolRefusal::Unknown
        | EnrolRefusal::Expired
        | EnrolRefusal::Revoked
        | EnrolRefusal::Exhausted => ApiError::Refused {
            code: r.code(),
            message,
        },
    }
}
