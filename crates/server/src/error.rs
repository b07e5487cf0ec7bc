//! The one place where errors become HTTP answers: a JSON body with a stable machine `code`, a
//! human `message`, and the offending `field` when there is one. Unexpected errors answer an
//! opaque 500 and are logged in full here.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use printfleet_storage::StoreError;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable.
    pub code: String,
    /// For people; never contains secrets or personal data.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    #[error("sign in first")]
    Unauthenticated,
    #[error("wrong e-mail or password")]
    BadCredentials,
    #[error("missing or invalid CSRF token")]
    Csrf,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A credential that is not (or no longer) good for this, with the precise reason's code.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// Well formed but not acceptable (a printer's message that breaks a rule).
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        field: String,
        message: String,
    },
    #[error("request body too large")]
    TooLarge,
    #[error("unsupported media type: send application/json")]
    UnsupportedMediaType,
    #[error("too many attempts; retry after {retry_after_s} s")]
    TooManyAttempts { retry_after_s: i64 },
    #[error("service unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "invalid_field",
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Forbidden(p) => ApiError::Forbidden(format!("missing permission {p}")),
            StoreError::ScopeTooNarrow => {
                ApiError::Forbidden("a membership scoped to device groups cannot do this".into())
            }
            StoreError::SessionRequired => {
                ApiError::Forbidden("this needs a signed-in person, not an API token".into())
            }
            StoreError::Conflict { code, message } => ApiError::Conflict { code, message },
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "storage unavailable");
                ApiError::Unavailable
            }
            StoreError::Invalid(v) => ApiError::BadRequest {
                code: "invalid_field",
                field: Some(v.field),
                message: v.message,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<printfleet_domain::ValidationError> for ApiError {
    fn from(v: printfleet_domain::ValidationError) -> Self {
        ApiError::BadRequest {
            code: "invalid_field",
            field: Some(v.field),
            message: v.message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = match &self {
            ApiError::BadRequest { code, field, .. } => {
                (StatusCode::BAD_REQUEST, *code, field.clone())
            }
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", None),
            ApiError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials", None),
            ApiError::Csrf => (StatusCode::FORBIDDEN, "csrf", None),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, *code, None),
            ApiError::Refused { code, .. } => (StatusCode::FORBIDDEN, *code, None),
            ApiError::Unprocessable { code, field, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, *code, Some(field.clone()))
            }
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            ApiError::TooManyAttempts { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", None)
            }
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        let body = ErrorBody {
            code: code.to_string(),
            message: self.to_string(),
            field,
        };
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::TooManyAttempts { retry_after_s } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.max(1).to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
