//! The security schemes: a bearer access token or a bearer refresh token. poem-openapi runs the
//! checker before the handler, so a handler only ever sees verified claims.

use std::sync::Arc;

use authlog_application::authenticate::AuthError;
use authlog_application::ports::{Claims, TokenKind};
use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::error::AuthorizationError;
use poem_openapi::payload::Json;
use poem_openapi::SecurityScheme;

use crate::errors::{msg, MessageBody};
use crate::state::AppState;

/// An access token from `/login` or `/refresh`: `Authorization: Bearer <access_token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_access")]
pub struct AccessToken(pub Claims);

/// A refresh token from `/login` or `/refresh`: `Authorization: Bearer <refresh_token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_refresh")]
pub struct RefreshToken(pub Claims);

async fn check_access(req: &Request, bearer: Bearer) -> poem::Result<Claims> {
    check(req, &bearer.token, TokenKind::Access)
}

async fn check_refresh(req: &Request, bearer: Bearer) -> poem::Result<Claims> {
    check(req, &bearer.token, TokenKind::Refresh)
}

fn check(req: &Request, token: &str, kind: TokenKind) -> poem::Result<Claims> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
    Ok(state
        .authenticate
        .execute(token, kind)
        .map_err(AuthFailure)?)
}

/// A token that was present but not accepted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthFailure(pub AuthError);

impl ResponseError for AuthFailure {
    fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
}

/// The `WWW-Authenticate` value of RFC 6750 §3: with an `invalid_token` error and its
/// description when a token was presented, bare when none was.
pub fn challenge(invalid_token: Option<&str>) -> String {
    match invalid_token {
        None => r#"Bearer realm="authlog""#.to_owned(),
        Some(description) => format!(
            r#"Bearer realm="authlog", error="invalid_token", error_description="{}""#,
            description.replace(['"', '\\'], "'")
        ),
    }
}

/// The 401 answer for an operation whose only fallible extractor is its security scheme: the
/// message and the challenge header.
pub fn unauthorized(err: &poem::Error) -> (Json<MessageBody>, String) {
    if let Some(failure) = err.downcast_ref::<AuthFailure>() {
        let text = failure.to_string();
        let header = challenge(Some(&text));
        return (msg(text), header);
    }
    if err.is::<AuthorizationError>() {
        return (msg("Missing Authorization Header"), challenge(None));
    }
    (msg(err.to_string()), challenge(None))
}
