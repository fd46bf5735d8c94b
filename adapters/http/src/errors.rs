//! Every error is JSON `{"msg": "..."}`: never plain text, never HTML, never a stack trace.

use std::fmt::Display;

use poem::http::{header, StatusCode};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::security::challenge;

/// A human-readable message; the body of every error and of some successes.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct MessageBody {
    pub msg: String,
}

/// `Json({"msg": msg})`.
pub fn msg(text: impl Into<String>) -> Json<MessageBody> {
    Json(MessageBody { msg: text.into() })
}

/// Failures that can happen in any operation and are not the client's doing. The details go
/// to the server log; the client learns only that it may retry (503) or not (500).
#[derive(Debug, ApiResponse)]
pub enum ServerError {
    /// An unexpected fault in the server.
    #[oai(status = 500)]
    Internal(Json<MessageBody>),
    /// The event store is unreachable or overloaded; retrying later may succeed.
    #[oai(status = 503)]
    Unavailable(Json<MessageBody>),
}

impl ServerError {
    pub fn internal(cause: impl Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::Internal(msg("Internal server error"))
    }

    pub fn unavailable(cause: impl Display) -> Self {
        tracing::error!(error = %cause, "service unavailable");
        Self::Unavailable(msg("Service temporarily unavailable"))
    }
}

/// The last line of defence: any error that reached the top of the stack (unknown path, wrong
/// method, body too large, ...) is answered in the `{"msg"}` shape with its status.
pub async fn json_error(err: poem::Error) -> Response {
    if err.has_source() {
        tracing::debug!(error = %err, "request failed");
    }
    let status = err.status();
    let text = match status {
        StatusCode::NOT_FOUND => "Not Found".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "Method Not Allowed".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body too large".to_owned(),
        s if s.is_server_error() => {
            tracing::error!(error = %err, "unhandled server error");
            "Internal server error".to_owned()
        }
        _ => err.to_string(),
    };
    let mut response = msg(text).with_status(status).into_response();
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(value) = challenge(None).parse() {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}
