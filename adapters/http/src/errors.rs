//! Every error is JSON `{"msg": "..."}`: never plain text, never HTML, never a stack trace.
//!
//! How an error becomes its answer, at each boundary:
//! - A request refused before its handler runs (a missing or bad token, a failed CSRF check, a
//!   body that is not JSON) is a `ResponseError` that answers itself ([`crate::security`],
//!   [`crate::body`]); [`json_error`] hands it its turn.
//! - A use case's error converts (`From`) into its operation's refusal enum, which documents
//!   each status in the OpenAPI document; handlers just use `?`. The shared refusals are here.
//! - Anything else that reaches the top (unknown path, wrong method, body too large) is
//!   answered by [`json_error`] with its status.

use std::fmt::Display;

use authlog_application::me::MeError;
use authlog_application::ports::StoreError;
use authlog_application::revoke::RevokeError;
use authlog_application::sessions::SessionsError;
use poem::http::{header, StatusCode};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OperationId};

use crate::body::BodyError;
use crate::security::{challenge, AuthFailure};

/// A human-readable message; the body of every error and of some successes.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct MessageBody {
    pub msg: String,
}

/// `Json({"msg": msg})`.
pub fn msg(text: impl Into<String>) -> Json<MessageBody> {
    Json(MessageBody { msg: text.into() })
}

/// The body of a 500: the cause goes to the server log, the client learns only that it failed.
pub fn internal(cause: impl Display) -> Json<MessageBody> {
    tracing::error!(error = %cause, "internal error");
    msg("Internal server error")
}

/// The body of a 503: the cause goes to the server log; the client learns it may retry.
pub fn unavailable(cause: impl Display) -> Json<MessageBody> {
    tracing::error!(error = %cause, "service unavailable");
    msg("Service temporarily unavailable")
}

/// A refused credential's 401: the message, and the RFC 6750 challenge naming it.
pub fn invalid_token(cause: impl Display) -> (Json<MessageBody>, String) {
    let text = cause.to_string();
    let header = challenge(Some(&text));
    (msg(text), header)
}

/// The refusals of an operation that needs only a valid access token.
#[derive(Debug, ApiResponse)]
pub enum Unauthenticated {
    /// `Missing Authorization Header`, or an invalid, expired, revoked or refresh token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
}

/// The refusals of an operation that needs a valid access token and the event store.
#[derive(Debug, ApiResponse)]
pub enum StoreRefusal {
    /// No, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// An unexpected fault in the server.
    #[oai(status = 500)]
    Internal(Json<MessageBody>),
    /// The event store is unreachable or overloaded; retrying later may succeed.
    #[oai(status = 503)]
    Unavailable(Json<MessageBody>),
}

impl From<StoreError> for StoreRefusal {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(unavailable(e))
    }
}

impl From<RevokeError> for StoreRefusal {
    fn from(e: RevokeError) -> Self {
        match e {
            // The token verified, but its session is not in the log: only a foreign key could
            // have signed it.
            RevokeError::UnknownSession => {
                let (body, header) = invalid_token(e);
                Self::Unauthorized(body, header)
            }
            other => Self::Unavailable(unavailable(other)),
        }
    }
}

impl From<SessionsError> for StoreRefusal {
    /// Revoking sessions in bulk fails only for the store's reasons, never the client's.
    fn from(e: SessionsError) -> Self {
        Self::Unavailable(unavailable(e))
    }
}

impl From<MeError> for StoreRefusal {
    fn from(e: MeError) -> Self {
        match e {
            MeError::UnknownUser => {
                let (body, header) = invalid_token(e);
                Self::Unauthorized(body, header)
            }
            MeError::Store(e) => e.into(),
        }
    }
}

/// The last line of defence: any error that reached the top of the stack is answered in the
/// `{"msg"}` shape with its status. Errors that know their answer (an operation's refusal, a
/// refused token, a bad body) give it themselves.
pub async fn json_error(err: poem::Error) -> Response {
    if err.has_source() {
        tracing::debug!(error = %err, "request failed");
    }
    // A refusal enum carries its finished answer; a refused token or body builds its own.
    if err.is_from_response() || err.is::<AuthFailure>() || err.is::<BodyError>() {
        return err.into_response();
    }
    let operation = err.data::<OperationId>().copied();
    let status = err.status();
    let (status, text) = match status {
        _ if err.is::<poem_openapi::error::ContentTypeError>() => (
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/json".to_owned(),
        ),
        StatusCode::NOT_FOUND => (status, "Not Found".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (status, "Method Not Allowed".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => (status, "Request body too large".to_owned()),
        StatusCode::REQUEST_TIMEOUT => (status, "Request body not received in time".to_owned()),
        s if s.is_server_error() => {
            tracing::error!(error = %err, "unhandled server error");
            (status, "Internal server error".to_owned())
        }
        _ => (status, err.to_string()),
    };
    let mut response = msg(text).with_status(status).into_response();
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(value) = challenge(None).parse() {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    // The metrics label the answer by the operation that refused it.
    if let Some(operation) = operation {
        response.set_data(operation);
    }
    response
}
