//! A JSON body extractor whose errors name the offending field (through `serde_path_to_error`)
//! and answer 400, 413 or 415 in the API's error format.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest {
                    code: "invalid_body",
                    field: None,
                    message: "the request body could not be read".into(),
                }
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        // serde's messages name types and expected values, not the input, except for unknown
        // variants, whose value we leave out.
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!(
                    "the body is not valid JSON (line {}, column {})",
                    inner.line(),
                    inner.column()
                )
            }
            _ => {
                let m = inner.to_string();
                let m = m.split(" at line ").next().unwrap_or(&m).to_string();
                if m.starts_with("unknown variant") {
                    "is not one of the accepted values".to_string()
                } else {
                    m
                }
            }
        };
        ApiError::BadRequest {
            code: "invalid_body",
            field: if path == "." || syntax {
                None
            } else {
                Some(path)
            },
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u32,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }

    #[test]
    fn errors_name_the_field() {
        match parse::<Outer>(br#"{"inner":{"n":"x"}}"#) {
            Err(ApiError::BadRequest { field, .. }) => {
                assert_eq!(field.as_deref(), Some("inner.n"))
            }
            other => panic!("{other:?}"),
        }
        match parse::<Outer>(br#"{"inner":{"n":1,"zz":2}}"#) {
            Err(ApiError::BadRequest { message, .. }) => {
                assert!(message.contains("zz"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse::<Outer>(b"{"),
            Err(ApiError::BadRequest { .. })
        ));
    }
}
