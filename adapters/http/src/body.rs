//! A JSON request body that reports *why* it could not be read.
//!
//! poem-openapi's own `Json<T>` folds "this is not JSON" and "this JSON lacks a field" into one
//! error with a free-text reason. The handlers answer those differently (the login contract
//! says `Missing username or password` for the second), so this wrapper keeps them apart as
//! [`BodyError`] variants that a handler can match on.

use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::FromRequest as _;
use poem::{Request, RequestBody, Result};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

/// Why the body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("Request body is not valid JSON: {0}")]
    NotJson(String),
    #[error("Request body has the wrong shape: {0}")]
    WrongShape(String),
}

impl ResponseError for BodyError {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .parse::<mime::Mime>()
            .is_ok_and(|m| m.type_() == "application" && m.subtype() == "json")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        // The body-limit middleware has already bounded the size.
        let bytes = Vec::<u8>::from_request(request, body).await?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| BodyError::NotJson(e.to_string()))?;
        let parsed =
            T::parse_from_json(Some(value)).map_err(|e| BodyError::WrongShape(e.into_message()))?;
        Ok(Self(parsed))
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON);
