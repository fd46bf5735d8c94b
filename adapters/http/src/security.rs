//! Authentication: an access or refresh token, from the `Authorization: Bearer` header or from
//! its cookie. A cookie-borne token on POST, PUT, PATCH or DELETE also needs the CSRF double
//! submit: header `X-CSRF-TOKEN` equal to the token's `csrf` claim.
//!
//! The extractors are written by hand rather than derived as an enum of schemes, because a
//! derived enum reports only the last alternative's failure: a bearer token that has expired
//! would come back as "missing cookie". Here the first credential present decides, and its
//! failure is the one reported. Both schemes are still registered, so the spec documents
//! bearer-or-cookie on every authenticated operation.

use std::sync::Arc;

use authlog_application::access::Caller;
use authlog_application::authenticate::AuthError;
use authlog_application::ports::{Claims, TokenKind};
use poem::error::ResponseError;
use poem::http::{header, HeaderName, Method, StatusCode};
use poem::{IntoResponse, Request, RequestBody, Response};
use poem_openapi::auth::{ApiKey, Bearer};
use poem_openapi::registry::Registry;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme};

use crate::errors::{internal, msg};
use crate::state::AppState;

/// The header of the CSRF double submit.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// Where the token came from; a refresh by cookie answers with cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Header,
    Cookie,
}

/// Verified claims and where they came from.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: Arc<Claims>,
    pub via: Via,
}

/// A valid access token of a live session.
pub struct Access(pub Authenticated);

impl Access {
    /// The token's holder, as the use cases that check roles take it.
    pub fn caller(&self) -> Caller {
        Caller::User(self.0.claims.clone())
    }
}

/// A valid refresh token (its session is checked against the log by the refresh itself).
pub struct Refresh(pub Authenticated);

// The four `*Scheme` structs below only register their scheme in the OpenAPI document (their
// fields are never read, hence the `dead_code` allowances); `Access` and `Refresh` do the
// extracting.

/// An access token from `/login` or `/refresh`: `Authorization: Bearer <access_token>`.
#[derive(SecurityScheme)]
#[oai(rename = "AccessToken", ty = "bearer", bearer_format = "JWT")]
#[allow(dead_code)]
struct AccessTokenScheme(Bearer);

/// The access token in the `access_token_cookie` cookie (`/login` with `set_cookies`).
/// POST, PUT, PATCH and DELETE also need header `X-CSRF-TOKEN` equal to the
/// `csrf_access_token` cookie.
#[derive(SecurityScheme)]
#[oai(
    rename = "AccessTokenCookie",
    ty = "api_key",
    key_in = "cookie",
    key_name = "access_token_cookie"
)]
#[allow(dead_code)]
struct AccessCookieScheme(ApiKey);

/// A refresh token from `/login` or `/refresh`: `Authorization: Bearer <refresh_token>`.
#[derive(SecurityScheme)]
#[oai(rename = "RefreshToken", ty = "bearer", bearer_format = "JWT")]
#[allow(dead_code)]
struct RefreshTokenScheme(Bearer);

/// The refresh token in the `refresh_token_cookie` cookie, with header `X-CSRF-TOKEN` equal to
/// the `csrf_refresh_token` cookie.
#[derive(SecurityScheme)]
#[oai(
    rename = "RefreshTokenCookie",
    ty = "api_key",
    key_in = "cookie",
    key_name = "refresh_token_cookie"
)]
#[allow(dead_code)]
struct RefreshCookieScheme(ApiKey);

impl<'a> ApiExtractor<'a> for Access {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        AccessTokenScheme::register(registry);
        AccessCookieScheme::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec!["AccessToken", "AccessTokenCookie"]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        Ok(Self(authenticate(req, TokenKind::Access)?))
    }
}

impl<'a> ApiExtractor<'a> for Refresh {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        RefreshTokenScheme::register(registry);
        RefreshCookieScheme::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec!["RefreshToken", "RefreshTokenCookie"]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _options: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        Ok(Self(authenticate(req, TokenKind::Refresh)?))
    }
}

/// Why a request is not authenticated. The texts are Flask-JWT-Extended's.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("Missing Authorization Header")]
    Missing,
    #[error(
        "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'"
    )]
    NotBearer,
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error("Missing CSRF token")]
    MissingCsrf,
    #[error("CSRF double submit tokens do not match")]
    CsrfMismatch,
    #[error("the service is misconfigured: no application state")]
    NoState,
}

/// A refused credential answers itself: 401 with the message and an RFC 6750 challenge (bare
/// when no credential was presented, `invalid_token` with the message when one was). Every
/// authenticated operation documents this 401 in its refusal enum; none handles it.
impl ResponseError for AuthFailure {
    fn status(&self) -> StatusCode {
        match self {
            Self::NoState => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn as_response(&self) -> Response {
        if let Self::NoState = self {
            return internal(self).with_status(self.status()).into_response();
        }
        let text = self.to_string();
        let header = match self {
            Self::Missing => challenge(None),
            _ => challenge(Some(&text)),
        };
        msg(text)
            .with_status(self.status())
            .with_header(header::WWW_AUTHENTICATE, header)
            .into_response()
    }
}

fn authenticate(req: &Request, kind: TokenKind) -> Result<Authenticated, AuthFailure> {
    let state = req.data::<Arc<AppState>>().ok_or(AuthFailure::NoState)?;
    // Read as bytes: `Request::header` would check the whole value as text char by char (a
    // token is some 300 of them) before `bearer_token` checks it again.
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let token = bearer_token(value.as_bytes()).ok_or(AuthFailure::NotBearer)?;
        let claims = state.authenticate.execute(token, kind)?;
        return Ok(Authenticated {
            claims,
            via: Via::Header,
        });
    }
    let cookie_name = match kind {
        TokenKind::Access => state.cookies.access_name(),
        TokenKind::Refresh => state.cookies.refresh_name(),
    };
    // Without a `Cookie` header there is nothing to look up, and no cookie jar either: the
    // frame skips that layer for such reads.
    if !req.headers().contains_key(header::COOKIE) {
        return Err(AuthFailure::Missing);
    }
    let Some(cookie) = req.cookie().get(cookie_name) else {
        return Err(AuthFailure::Missing);
    };
    let claims = state.authenticate.execute(cookie.value_str(), kind)?;
    if changes_state(req.method()) {
        let sent = req.header(CSRF_HEADER).ok_or(AuthFailure::MissingCsrf)?;
        let matches = claims
            .csrf
            .as_deref()
            .is_some_and(|expected| constant_time_eq(sent.as_bytes(), expected.as_bytes()));
        if !matches {
            return Err(AuthFailure::CsrfMismatch);
        }
    }
    Ok(Authenticated {
        claims,
        via: Via::Cookie,
    })
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &[u8]) -> Option<&str> {
    let (scheme, token) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    std::str::from_utf8(token).ok().map(str::trim)
}

fn changes_state(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was
/// right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `WWW-Authenticate` value of RFC 6750 §3: with an `invalid_token` error and its
/// description when a credential was presented, bare when none was.
pub fn challenge(invalid_token: Option<&str>) -> String {
    match invalid_token {
        None => r#"Bearer realm="authlog""#.to_owned(),
        Some(description) => format!(
            r#"Bearer realm="authlog", error="invalid_token", error_description="{}""#,
            description.replace(['"', '\\'], "'")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_whatever_the_scheme_case() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Bearer  abc "), Some("abc"));
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bearer \xff\xfe"), None);
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
