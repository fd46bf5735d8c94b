//! A JSON request body that reports *why* it could not be read.
//!
//! poem-openapi's own `Json<T>` folds "this is not JSON" and "this JSON lacks a field" into one
//! error with a free-text reason. The contract answers those differently (login says
//! `Missing username or password` for the second), so this wrapper keeps them apart as
//! [`BodyError`] variants, and a body type names its own message for the second
//! ([`RequestBody::WRONG_SHAPE`]). The error answers itself: 400 with that message.

use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::FromRequest as _;
use poem::{IntoResponse, Request, Response, Result};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};

use crate::errors::msg;

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

/// What a request body type says when JSON of the wrong shape arrives.
pub trait RequestBody {
    /// The `msg` of the 400, e.g. `Missing username or password`.
    const WRONG_SHAPE: &'static str;
}

/// Why the body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("Request body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not of the type's shape; the text is the type's own message.
    #[error("{message}")]
    WrongShape {
        message: &'static str,
        /// What did not fit, for the server log.
        detail: String,
    },
}

impl ResponseError for BodyError {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn as_response(&self) -> Response {
        msg(self.to_string())
            .with_status(self.status())
            .into_response()
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

impl<T: ParseFromJSON + RequestBody> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut poem::RequestBody) -> Result<Self> {
        // The body-limit middleware has already bounded the size.
        let bytes = Vec::<u8>::from_request(request, body).await?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| BodyError::NotJson(e.to_string()))?;
        let parsed = T::parse_from_json(Some(value)).map_err(|e| BodyError::WrongShape {
            message: T::WRONG_SHAPE,
            detail: e.into_message(),
        })?;
        Ok(Self(parsed))
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON + RequestBody);

/// A JSON body of type `T` that may be left out: a request with no `Content-Type` and an empty
/// body reads as `None` (`curl -X POST` with nothing to say); anything else is read as
/// [`JsonBody`] is. The OpenAPI document marks the body as not required.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<'a, T: Type + ParseFromJSON + RequestBody> poem_openapi::ApiExtractor<'a>
    for OptionalJsonBody<T>
{
    const TYPES: &'static [poem_openapi::ApiExtractorType] =
        &[poem_openapi::ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<poem_openapi::registry::MetaRequest> {
        Some(poem_openapi::registry::MetaRequest {
            description: None,
            content: vec![poem_openapi::registry::MetaMediaType {
                content_type: <JsonBody<T> as Payload>::CONTENT_TYPE,
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut poem::RequestBody,
        _param_opts: poem_openapi::ExtractParamOptions<Self::ParamType>,
    ) -> Result<Self> {
        match request.content_type() {
            Some(content_type) if JsonBody::<T>::check_content_type(content_type) => {
                let parsed = <JsonBody<T> as ParsePayload>::from_request(request, body).await?;
                Ok(Self(Some(parsed.0)))
            }
            Some(content_type) => Err(poem_openapi::error::ContentTypeError::NotSupported {
                content_type: content_type.to_string(),
            }
            .into()),
            None => {
                let bytes = <Vec<u8> as poem::FromRequest>::from_request(request, body).await?;
                if bytes.is_empty() {
                    Ok(Self(None))
                } else {
                    Err(poem_openapi::error::ContentTypeError::ExpectContentType.into())
                }
            }
        }
    }
}
