//! Register, log in, refresh, log out.

use std::sync::Arc;

use authlog_application::login::LoginError;
use authlog_application::refresh::RefreshError;
use authlog_application::register::RegisterError;
use authlog_application::revoke::RevokeError;
use authlog_application::TokenPair;
use authlog_domain::{Password, RevocationReason, Username};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::body::{BodyError, JsonBody};
use crate::errors::{msg, MessageBody, ServerError};
use crate::request::Caller;
use crate::security::{challenge, unauthorized, AccessToken, RefreshToken};
use crate::state::AppState;

const MISSING_CREDENTIALS: &str = "Missing username or password";

/// A username and password.
#[derive(Object)]
#[oai(example)]
pub struct Credentials {
    /// 1 to 64 letters, digits or `._-@` after Unicode NFKC normalisation. Unique without
    /// regard to case: `Alice` and `alice` are one account.
    pub username: String,
    /// 8 to 1024 bytes of UTF-8.
    pub password: String,
}

impl Example for Credentials {
    fn example() -> Self {
        Self {
            username: "alice".into(),
            password: "correct horse battery staple".into(),
        }
    }
}

/// A token pair, as OAuth 2.0 token responses spell it.
#[derive(Object)]
pub struct TokenResponse {
    /// Short-lived token for `Authorization: Bearer` on protected operations.
    pub access_token: String,
    /// Long-lived, single-use token for `POST /refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer".into(),
            expires_in: pair.expires_in,
        }
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "register_bad_request")]
pub enum RegisterResponse {
    /// The account exists now: `{"msg": "User registered successfully"}`.
    #[oai(status = 201)]
    Created(Json<MessageBody>),
    /// The body is not JSON, lacks a field, or the username or password has the wrong shape.
    #[oai(status = 400)]
    BadRequest(Json<MessageBody>),
    /// `{"msg": "Username already exists"}` (ignoring case).
    #[oai(status = 409)]
    Conflict(Json<MessageBody>),
}

fn register_bad_request(err: poem::Error) -> RegisterResponse {
    RegisterResponse::BadRequest(body_error(&err))
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "login_bad_request")]
pub enum LoginResponse {
    /// A fresh access token and the session's first refresh token.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>),
    /// `{"msg": "Missing username or password"}`, or the body is not JSON.
    #[oai(status = 400)]
    BadRequest(Json<MessageBody>),
    /// `{"msg": "Bad username or password"}`: unknown user and wrong password look alike.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
}

fn login_bad_request(err: poem::Error) -> LoginResponse {
    LoginResponse::BadRequest(body_error(&err))
}

/// The 400 message for a body that could not be read: not JSON (or not declared as JSON) says
/// so; JSON of the wrong shape is a missing username or password, as the contract words it.
fn body_error(err: &poem::Error) -> Json<MessageBody> {
    match err.downcast_ref::<BodyError>() {
        Some(BodyError::WrongShape(_)) => msg(MISSING_CREDENTIALS),
        Some(not_json @ BodyError::NotJson(_)) => msg(not_json.to_string()),
        None if err.is::<poem_openapi::error::ContentTypeError>() => {
            msg("Content-Type must be application/json")
        }
        None => msg(err.to_string()),
    }
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "refresh_unauthorized")]
pub enum RefreshResponse {
    /// A new access token (not fresh) and a new refresh token; the presented one is retired.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>),
    /// No, an invalid, expired, revoked or already-used refresh token, or an access token
    /// (`Only refresh tokens are allowed`). Reusing a retired refresh token revokes the session.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
}

fn refresh_unauthorized(err: poem::Error) -> RefreshResponse {
    let (body, header) = unauthorized(&err);
    RefreshResponse::Unauthorized(body, header)
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "logout_unauthorized")]
pub enum LogoutResponse {
    /// `{"msg": "Successfully logged out"}`: the session's access and refresh tokens are revoked.
    #[oai(status = 200)]
    Ok(Json<MessageBody>),
    /// No, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
}

fn logout_unauthorized(err: poem::Error) -> LogoutResponse {
    let (body, header) = unauthorized(&err);
    LogoutResponse::Unauthorized(body, header)
}

/// Parses what the client sent into the domain's types, or says what is wrong with it.
fn parse_credentials(body: Credentials) -> Result<(Username, Password), Json<MessageBody>> {
    if body.username.is_empty() || body.password.is_empty() {
        return Err(msg(MISSING_CREDENTIALS));
    }
    let username = Username::parse(&body.username).map_err(|e| msg(e.to_string()))?;
    let password = Password::parse(body.password).map_err(|e| msg(e.to_string()))?;
    Ok((username, password))
}

pub struct AuthApi;

#[OpenApi(tag = "Tag::Auth")]
impl AuthApi {
    /// Register a user
    ///
    /// Creates an account, recorded as a `Registered` event. The password is stored only as
    /// an Argon2id hash.
    #[oai(path = "/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: JsonBody<Credentials>,
    ) -> Result<RegisterResponse, ServerError> {
        let (username, password) = match parse_credentials(body.0) {
            Ok(parsed) => parsed,
            Err(message) => return Ok(RegisterResponse::BadRequest(message)),
        };
        match state.register.execute(username, password, &caller.0).await {
            Ok(_) => Ok(RegisterResponse::Created(msg(
                "User registered successfully",
            ))),
            Err(RegisterError::UsernameTaken) => {
                Ok(RegisterResponse::Conflict(msg("Username already exists")))
            }
            Err(RegisterError::Hashing(e)) => Err(ServerError::internal(e)),
            Err(RegisterError::Store(e)) => Err(ServerError::unavailable(e)),
        }
    }

    /// Log in
    ///
    /// Checks the password and opens a session: a fresh access token and a refresh token.
    /// An unknown username takes as long to refuse as a wrong password.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        body: JsonBody<Credentials>,
    ) -> Result<LoginResponse, ServerError> {
        let (username, password) = match parse_credentials(body.0) {
            Ok(parsed) => parsed,
            Err(message) => return Ok(LoginResponse::BadRequest(message)),
        };
        match state.login.execute(username, password, &caller.0).await {
            Ok(pair) => Ok(LoginResponse::Ok(Json(pair.into()))),
            Err(e @ LoginError::BadCredentials) => Ok(LoginResponse::Unauthorized(
                msg(e.to_string()),
                challenge(None),
            )),
            Err(LoginError::Hashing(e)) => Err(ServerError::internal(e)),
            Err(LoginError::Token(e)) => Err(ServerError::internal(e)),
            Err(LoginError::Store(e)) => Err(ServerError::unavailable(e)),
        }
    }

    /// Refresh tokens
    ///
    /// Exchanges a refresh token for a new pair. Each refresh token works once: presenting
    /// one that was already exchanged revokes the whole session (RFC 9700 §4.14.2).
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        token: RefreshToken,
    ) -> Result<RefreshResponse, ServerError> {
        match state.refresh.execute(&token.0, &caller.0).await {
            Ok(pair) => Ok(RefreshResponse::Ok(Json(pair.into()))),
            Err(
                e @ (RefreshError::Revoked
                | RefreshError::ReuseDetected
                | RefreshError::Expired
                | RefreshError::UnknownSession),
            ) => {
                let text = e.to_string();
                let header = challenge(Some(&text));
                Ok(RefreshResponse::Unauthorized(msg(text), header))
            }
            Err(e @ RefreshError::Contended) => Err(ServerError::unavailable(e)),
            Err(RefreshError::Store(e)) => Err(ServerError::unavailable(e)),
            Err(RefreshError::Token(e)) => Err(ServerError::internal(e)),
        }
    }

    /// Log out
    ///
    /// Revokes the caller's session: its access token and its refresh token both stop
    /// working, on every instance, and across restarts.
    #[oai(path = "/logout", method = "delete", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        token: AccessToken,
    ) -> Result<LogoutResponse, ServerError> {
        log_out(&state, &caller, &token).await
    }

    /// Log out (POST)
    ///
    /// The same as `DELETE /logout`, for clients that cannot send DELETE.
    #[oai(path = "/logout", method = "post", operation_id = "logoutPost")]
    async fn logout_post(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        token: AccessToken,
    ) -> Result<LogoutResponse, ServerError> {
        log_out(&state, &caller, &token).await
    }
}

async fn log_out(
    state: &AppState,
    caller: &Caller,
    token: &AccessToken,
) -> Result<LogoutResponse, ServerError> {
    let outcome = state
        .revoke
        .execute(token.0.session_id, RevocationReason::Logout, &caller.0)
        .await;
    match outcome {
        Ok(()) => Ok(LogoutResponse::Ok(msg("Successfully logged out"))),
        Err(e @ RevokeError::UnknownSession) => {
            let text = e.to_string();
            let header = challenge(Some(&text));
            Ok(LogoutResponse::Unauthorized(msg(text), header))
        }
        Err(e @ RevokeError::Contended) => Err(ServerError::unavailable(e)),
        Err(RevokeError::Store(e)) => Err(ServerError::unavailable(e)),
    }
}
