//! Register, log in, refresh, log out, change password.

use std::sync::Arc;

use authlog_application::login::LoginError;
use authlog_application::password::PasswordChangeError;
use authlog_application::refresh::RefreshError;
use authlog_application::register::RegisterError;
use authlog_application::revoke::RevokeError;
use authlog_application::sessions::SessionsError;
use authlog_application::TokenPair;
use authlog_domain::{Password, RevocationReason, Username};
use poem::web::cookie::CookieJar;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::body::{BodyError, JsonBody};
use crate::cookies::{clear_token_cookies, set_token_cookies};
use crate::errors::{msg, MessageBody, ServerError};
use crate::fields::{PasswordText, SecretText, UsernameText};
use crate::request::Caller;
use crate::security::{challenge, unauthorized, Access, Refresh, Via};
use crate::state::AppState;

const MISSING_CREDENTIALS: &str = "Missing username or password";

/// A username and password, to register.
#[derive(Object)]
#[oai(example)]
pub struct Credentials {
    /// 1 to 64 letters (Unicode category L), digits (category N) or `._-@`. Unique without
    /// regard to case or compatibility forms: `Alice`, `alice` and `ａｌｉｃｅ` are one account.
    pub username: UsernameText,
    /// At least 8 characters and at most 1024 bytes of UTF-8.
    pub password: PasswordText,
}

impl Example for Credentials {
    fn example() -> Self {
        Self {
            username: UsernameText::new("alice"),
            password: PasswordText::new("correct horse battery staple"),
        }
    }
}

/// A username and password, to log in.
#[derive(Object)]
#[oai(example)]
pub struct LoginRequest {
    /// The username (case does not matter).
    pub username: UsernameText,
    /// The password.
    pub password: PasswordText,
    /// Also set the tokens as cookies (`access_token_cookie`, `refresh_token_cookie`, and the
    /// readable `csrf_access_token`, `csrf_refresh_token`). Absent or `null` means `false`.
    #[oai(nullable)]
    pub set_cookies: Option<bool>,
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            username: UsernameText::new("alice"),
            password: PasswordText::new("correct horse battery staple"),
            set_cookies: Some(false),
        }
    }
}

/// The current password and its replacement.
#[derive(Object)]
#[oai(example)]
pub struct PasswordChange {
    pub current_password: SecretText,
    /// At least 8 characters and at most 1024 bytes of UTF-8.
    pub new_password: PasswordText,
}

impl Example for PasswordChange {
    fn example() -> Self {
        Self {
            current_password: SecretText::new("correct horse battery staple"),
            new_password: PasswordText::new("a longer and better passphrase"),
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

impl From<&TokenPair> for TokenResponse {
    fn from(pair: &TokenPair) -> Self {
        Self {
            access_token: pair.access_token.clone(),
            refresh_token: pair.refresh_token.clone(),
            token_type: "Bearer".into(),
            expires_in: pair.expires_in,
        }
    }
}

/// How many sessions were ended.
#[derive(Object)]
pub struct Revoked {
    pub msg: String,
    /// The number of sessions revoked.
    pub revoked: u64,
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
    RegisterResponse::BadRequest(body_error(&err, MISSING_CREDENTIALS))
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "login_bad_request")]
pub enum LoginResponse {
    /// A fresh access token and the session's first refresh token (also as cookies when
    /// `set_cookies` is true).
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
    /// Too many failed logins for this username recently; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<MessageBody>, #[oai(header = "Retry-After")] i64),
}

fn login_bad_request(err: poem::Error) -> LoginResponse {
    LoginResponse::BadRequest(body_error(&err, MISSING_CREDENTIALS))
}

/// The 400 message for a body that could not be read: not JSON (or not declared as JSON) says
/// so; JSON of the wrong shape gets `wrong_shape`.
fn body_error(err: &poem::Error, wrong_shape: &str) -> Json<MessageBody> {
    match err.downcast_ref::<BodyError>() {
        Some(BodyError::WrongShape(_)) => msg(wrong_shape),
        Some(not_json @ BodyError::NotJson(_)) => msg(not_json.to_string()),
        None if err.is::<poem_openapi::error::ContentTypeError>() => {
            msg("Content-Type must be application/json")
        }
        None => msg(err.to_string()),
    }
}

fn is_body_error(err: &poem::Error) -> bool {
    err.is::<BodyError>() || err.is::<poem_openapi::error::ContentTypeError>()
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "refresh_unauthorized")]
pub enum RefreshResponse {
    /// A new access token (not fresh) and a new refresh token; the presented one is retired.
    /// A refresh by cookie answers with new cookies too.
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
    /// `{"msg": "Successfully logged out"}`: the session's access and refresh tokens are
    /// revoked and the token cookies cleared.
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

#[derive(ApiResponse)]
#[oai(bad_request_handler = "logout_all_unauthorized")]
pub enum LogoutAllResponse {
    /// Every session of the caller is revoked, this one included.
    #[oai(status = 200)]
    Ok(Json<Revoked>),
    /// No, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
}

fn logout_all_unauthorized(err: poem::Error) -> LogoutAllResponse {
    let (body, header) = unauthorized(&err);
    LogoutAllResponse::Unauthorized(body, header)
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "password_bad_request")]
pub enum PasswordResponse {
    /// The password is changed; every other session of the user is revoked.
    #[oai(status = 200)]
    Ok(Json<Revoked>),
    /// The body is not JSON, lacks a field, or the new password has the wrong shape.
    #[oai(status = 400)]
    BadRequest(Json<MessageBody>),
    /// `Fresh token required` (log in again with the password), `Current password is
    /// incorrect`, or no, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
}

fn password_bad_request(err: poem::Error) -> PasswordResponse {
    if is_body_error(&err) {
        return PasswordResponse::BadRequest(body_error(
            &err,
            "Missing current_password or new_password",
        ));
    }
    let (body, header) = unauthorized(&err);
    PasswordResponse::Unauthorized(body, header)
}

/// Parses what the client sent into the domain's types, or says what is wrong with it.
fn parse_credentials(
    username: UsernameText,
    password: PasswordText,
) -> Result<(Username, Password), Json<MessageBody>> {
    if username.is_empty() || password.is_empty() {
        return Err(msg(MISSING_CREDENTIALS));
    }
    let username = Username::parse(&username.into_inner()).map_err(|e| msg(e.to_string()))?;
    let password = Password::parse(password.into_inner()).map_err(|e| msg(e.to_string()))?;
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
        let Credentials { username, password } = body.0;
        let (username, password) = match parse_credentials(username, password) {
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
    /// Checks the password and opens a session: a fresh access token and a refresh token,
    /// also as cookies with `set_cookies`. An unknown username takes as long to refuse as a
    /// wrong password. After 5 failures for one username within 15 minutes, logins for it
    /// answer 429 until the window passes.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        jar: &CookieJar,
        body: JsonBody<LoginRequest>,
    ) -> Result<LoginResponse, ServerError> {
        let LoginRequest {
            username,
            password,
            set_cookies,
        } = body.0;
        let (username, password) = match parse_credentials(username, password) {
            Ok(parsed) => parsed,
            Err(message) => return Ok(LoginResponse::BadRequest(message)),
        };
        let cookies = set_cookies.unwrap_or(false);
        match state
            .login
            .execute(username, password, cookies, &caller.0)
            .await
        {
            Ok(pair) => {
                if cookies {
                    set_token_cookies(jar, &pair, state.cookies);
                }
                Ok(LoginResponse::Ok(Json((&pair).into())))
            }
            Err(e @ LoginError::BadCredentials) => Ok(LoginResponse::Unauthorized(
                msg(e.to_string()),
                challenge(None),
            )),
            Err(e @ LoginError::Throttled { retry_after }) => {
                // Round up: retrying at the advertised second must not be a second too early.
                let seconds =
                    retry_after.whole_seconds() + i64::from(retry_after.subsec_nanoseconds() > 0);
                Ok(LoginResponse::TooManyRequests(
                    msg(e.to_string()),
                    seconds.max(1),
                ))
            }
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
        jar: &CookieJar,
        token: Refresh,
    ) -> Result<RefreshResponse, ServerError> {
        let cookies = token.0.via == Via::Cookie;
        match state
            .refresh
            .execute(&token.0.claims, cookies, &caller.0)
            .await
        {
            Ok(pair) => {
                if cookies {
                    set_token_cookies(jar, &pair, state.cookies);
                }
                Ok(RefreshResponse::Ok(Json((&pair).into())))
            }
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
    /// working, on every instance, and across restarts. Clears the token cookies.
    #[oai(path = "/logout", method = "delete", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        jar: &CookieJar,
        token: Access,
    ) -> Result<LogoutResponse, ServerError> {
        log_out(&state, &caller, jar, &token).await
    }

    /// Log out (POST)
    ///
    /// The same as `DELETE /logout`, for clients that cannot send DELETE.
    #[oai(path = "/logout", method = "post", operation_id = "logoutPost")]
    async fn logout_post(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        jar: &CookieJar,
        token: Access,
    ) -> Result<LogoutResponse, ServerError> {
        log_out(&state, &caller, jar, &token).await
    }

    /// Log out everywhere
    ///
    /// Revokes every session of the caller, this one included, and clears the token cookies.
    #[oai(path = "/logout/all", method = "post", operation_id = "logoutAll")]
    async fn logout_all(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        jar: &CookieJar,
        token: Access,
    ) -> Result<LogoutAllResponse, ServerError> {
        let claims = &token.0.claims;
        let revoked = state
            .sessions
            .revoke_all(
                &claims.username,
                RevocationReason::LogoutAll,
                None,
                &caller.0,
            )
            .await
            .map_err(sessions_failure)?;
        clear_token_cookies(jar, state.cookies);
        Ok(LogoutAllResponse::Ok(Json(Revoked {
            msg: "Successfully logged out of all sessions".into(),
            revoked: revoked as u64,
        })))
    }

    /// Change password
    ///
    /// Needs a fresh access token (straight from `/login`, not from `/refresh`) and the
    /// current password. Every other session of the user is revoked; this one goes on.
    #[oai(path = "/password", method = "post", operation_id = "changePassword")]
    async fn change_password(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        token: Access,
        body: JsonBody<PasswordChange>,
    ) -> Result<PasswordResponse, ServerError> {
        let PasswordChange {
            current_password,
            new_password,
        } = body.0;
        if current_password.is_empty() || new_password.is_empty() {
            return Ok(PasswordResponse::BadRequest(msg(
                "Missing current_password or new_password",
            )));
        }
        let new = match Password::parse(new_password.into_inner()) {
            Ok(new) => new,
            Err(e) => return Ok(PasswordResponse::BadRequest(msg(format!("new {e}")))),
        };
        // A current password of the wrong shape cannot be the current one.
        let Ok(current) = Password::parse(current_password.into_inner()) else {
            let text = PasswordChangeError::WrongPassword.to_string();
            let header = challenge(Some(&text));
            return Ok(PasswordResponse::Unauthorized(msg(text), header));
        };
        match state
            .password
            .execute(&token.0.claims, current, new, &caller.0)
            .await
        {
            Ok(revoked) => Ok(PasswordResponse::Ok(Json(Revoked {
                msg: "Password changed".into(),
                revoked: revoked as u64,
            }))),
            Err(
                e @ (PasswordChangeError::NotFresh
                | PasswordChangeError::WrongPassword
                | PasswordChangeError::UnknownUser),
            ) => {
                let text = e.to_string();
                let header = challenge(Some(&text));
                Ok(PasswordResponse::Unauthorized(msg(text), header))
            }
            Err(e @ PasswordChangeError::Contended) => Err(ServerError::unavailable(e)),
            Err(PasswordChangeError::Hashing(e)) => Err(ServerError::internal(e)),
            Err(PasswordChangeError::Store(e)) => Err(ServerError::unavailable(e)),
            Err(PasswordChangeError::Sessions(e)) => Err(sessions_failure(e)),
        }
    }
}

async fn log_out(
    state: &AppState,
    caller: &Caller,
    jar: &CookieJar,
    token: &Access,
) -> Result<LogoutResponse, ServerError> {
    let outcome = state
        .revoke
        .execute(
            token.0.claims.session_id,
            RevocationReason::Logout,
            &caller.0,
        )
        .await;
    match outcome {
        Ok(()) => {
            clear_token_cookies(jar, state.cookies);
            Ok(LogoutResponse::Ok(msg("Successfully logged out")))
        }
        Err(e @ RevokeError::UnknownSession) => {
            let text = e.to_string();
            let header = challenge(Some(&text));
            Ok(LogoutResponse::Unauthorized(msg(text), header))
        }
        Err(e) => Err(ServerError::unavailable(e)),
    }
}

/// A failure to revoke sessions in bulk is the store's, never the client's.
pub(crate) fn sessions_failure(e: SessionsError) -> ServerError {
    ServerError::unavailable(e)
}
