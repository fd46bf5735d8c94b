//! Register, log in, refresh, log out, change password.

use std::sync::Arc;

use authlog_application::admission::Busy;
use authlog_application::login::LoginError;
use authlog_application::password::PasswordChangeError;
use authlog_application::refresh::RefreshError;
use authlog_application::register::RegisterError;
use authlog_application::streams::UserRef;
use authlog_application::TokenPair;
use authlog_domain::password::PasswordError;
use authlog_domain::{Email, Password, RevocationReason, Username};
use poem::web::cookie::CookieJar;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::body::{JsonBody, RequestBody};
use crate::cookies::{clear_token_cookies, set_token_cookies};
use crate::errors::{internal, invalid_token, msg, unavailable, MessageBody, StoreRefusal};
use crate::fields::{EmailText, PasswordText, SecretText, UsernameText};
use crate::request::Origin;
use crate::security::{challenge, Access, Refresh, Via};
use crate::state::AppState;

const MISSING_CREDENTIALS: &str = "Missing username or password";
const MISSING_PASSWORDS: &str = "Missing current_password or new_password";

/// A username and password, to register.
#[derive(Object)]
#[oai(example)]
pub struct Credentials {
    /// 1 to 64 letters (Unicode category L), digits (category N) or `._-@`. Unique without
    /// regard to case or compatibility forms: `Alice`, `alice` and `ａｌｉｃｅ` are one account.
    pub username: UsernameText,
    /// At least 8 characters and at most 1024 bytes of UTF-8.
    pub password: PasswordText,
    /// An email address, to verify by a code mailed to it (servers that send mail only: on
    /// one that does not, an address is refused with 400). `null` or absent: none.
    #[oai(nullable)]
    pub email: Option<EmailText>,
}

impl RequestBody for Credentials {
    const WRONG_SHAPE: &'static str = MISSING_CREDENTIALS;
}

impl Example for Credentials {
    fn example() -> Self {
        Self {
            username: UsernameText::new("alice"),
            password: PasswordText::new("correct horse battery staple"),
            email: None,
        }
    }
}

/// A username and password, to log in.
#[derive(Object)]
#[oai(example)]
pub struct LoginRequest {
    /// The username (case does not matter).
    pub username: UsernameText,
    /// The password: at most 1024 bytes of UTF-8. No minimum applies here (it is a rule for
    /// setting a password), so a password set under a lower minimum still logs in.
    pub password: SecretText,
    /// Also set the tokens as cookies (`access_token_cookie`, `refresh_token_cookie`, and the
    /// readable `csrf_access_token`, `csrf_refresh_token`). Absent or `null` means `false`.
    #[oai(nullable)]
    pub set_cookies: Option<bool>,
}

impl RequestBody for LoginRequest {
    const WRONG_SHAPE: &'static str = MISSING_CREDENTIALS;
}

impl Example for LoginRequest {
    fn example() -> Self {
        Self {
            username: UsernameText::new("alice"),
            password: SecretText::new("correct horse battery staple"),
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

impl RequestBody for PasswordChange {
    const WRONG_SHAPE: &'static str = MISSING_PASSWORDS;
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

/// A request the domain refuses to parse: 400 with the reason.
pub struct BadInput(Json<MessageBody>);

/// Parses what the client sent into the domain's types, or says what is wrong with it; the
/// password with `parse_password`: [`Password::parse`] for one being set (its minimum applies),
/// [`Password::offered`] for one to be checked.
fn parse_credentials(
    username: String,
    password: String,
    parse_password: fn(String) -> Result<Password, PasswordError>,
) -> Result<(Username, Password), BadInput> {
    if username.is_empty() || password.is_empty() {
        return Err(BadInput(msg(MISSING_CREDENTIALS)));
    }
    let bad = |e: &dyn std::fmt::Display| BadInput(msg(e.to_string()));
    let username = Username::parse(&username).map_err(|e| bad(&e))?;
    let password = parse_password(password).map_err(|e| bad(&e))?;
    Ok((username, password))
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// The account exists now: `{"msg": "User registered successfully"}`.
    #[oai(status = 201)]
    Created(Json<MessageBody>),
}

/// Why a registration was refused.
#[derive(ApiResponse)]
pub enum RegisterRefusal {
    /// The body is not JSON, lacks a field, or the username or password has the wrong shape.
    #[oai(status = 400)]
    BadRequest(Json<MessageBody>),
    /// `{"msg": "Username already exists"}` (ignoring case).
    #[oai(status = 409)]
    Conflict(Json<MessageBody>),
    /// An unexpected fault in the server.
    #[oai(status = 500)]
    Internal(Json<MessageBody>),
    /// The password-hashing queue is full, for this client address or in total (with
    /// `Retry-After`: answered at once rather than after a long wait), or the event store is
    /// unreachable or overloaded. Retrying later may succeed.
    #[oai(status = 503)]
    Unavailable(
        Json<MessageBody>,
        #[oai(header = "Retry-After")] Option<i64>,
    ),
}

impl From<BadInput> for RegisterRefusal {
    fn from(BadInput(body): BadInput) -> Self {
        Self::BadRequest(body)
    }
}

impl From<RegisterError> for RegisterRefusal {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::UsernameTaken => Self::Conflict(msg("Username already exists")),
            RegisterError::MailDisabled => Self::BadRequest(msg(
                "This server sends no mail: register without an email address",
            )),
            RegisterError::Hashing(e) => Self::Internal(internal(e)),
            RegisterError::Busy(busy) => {
                Self::Unavailable(msg(busy.to_string()), busy_retry(&busy))
            }
            RegisterError::Store(e) => Self::Unavailable(unavailable(e), None),
        }
    }
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    /// A fresh access token and the session's first refresh token (also as cookies when
    /// `set_cookies` is true).
    #[oai(status = 200)]
    Ok(Json<TokenResponse>),
}

/// Why a login was refused.
#[derive(ApiResponse)]
pub enum LoginRefusal {
    /// `{"msg": "Missing username or password"}`, or the body is not JSON.
    #[oai(status = 400)]
    BadRequest(Json<MessageBody>),
    /// `{"msg": "Bad username or password"}`: unknown user and wrong password look alike.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// `{"msg": "Account disabled"}`: the right password of an account an admin disabled (a
    /// wrong one answers 401 as for any account).
    #[oai(status = 403)]
    Forbidden(Json<MessageBody>),
    /// Too many failed logins for this username recently; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<MessageBody>, #[oai(header = "Retry-After")] i64),
    /// An unexpected fault in the server.
    #[oai(status = 500)]
    Internal(Json<MessageBody>),
    /// The password-hashing queue is full, for this client address or in total (with
    /// `Retry-After`: answered at once rather than after a long wait), or the event store is
    /// unreachable or overloaded. Retrying later may succeed.
    #[oai(status = 503)]
    Unavailable(
        Json<MessageBody>,
        #[oai(header = "Retry-After")] Option<i64>,
    ),
}

impl From<BadInput> for LoginRefusal {
    fn from(BadInput(body): BadInput) -> Self {
        Self::BadRequest(body)
    }
}

impl From<LoginError> for LoginRefusal {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::BadCredentials => Self::Unauthorized(msg(e.to_string()), challenge(None)),
            LoginError::Disabled => Self::Forbidden(msg(e.to_string())),
            LoginError::Throttled { retry_after } => {
                Self::TooManyRequests(msg(e.to_string()), retry_after_seconds(retry_after))
            }
            LoginError::Hashing(e) => Self::Internal(internal(e)),
            LoginError::Token(e) => Self::Internal(internal(e)),
            LoginError::Busy(busy) => Self::Unavailable(msg(busy.to_string()), busy_retry(&busy)),
            LoginError::Store(e) => Self::Unavailable(unavailable(e), None),
        }
    }
}

/// The `Retry-After` of a full hashing queue.
fn busy_retry(busy: &Busy) -> Option<i64> {
    Some(retry_after_seconds(busy.retry_after))
}

/// `Retry-After` in whole seconds, rounded up: retrying at the advertised second must not be a
/// second too early.
fn retry_after_seconds(wait: time::Duration) -> i64 {
    let seconds = wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0);
    seconds.max(1)
}

#[derive(ApiResponse)]
pub enum RefreshResponse {
    /// A new access token (not fresh) and a new refresh token; the presented one is retired.
    /// A refresh by cookie answers with new cookies too.
    #[oai(status = 200)]
    Ok(Json<TokenResponse>),
}

/// Why a refresh was refused.
#[derive(ApiResponse)]
pub enum RefreshRefusal {
    /// No, an invalid, expired, revoked or already-used refresh token, or an access token
    /// (`Only refresh tokens are allowed`). Reusing a retired refresh token revokes the session.
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

impl From<RefreshError> for RefreshRefusal {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Revoked
            | RefreshError::ReuseDetected
            | RefreshError::Expired
            | RefreshError::UnknownSession => {
                let (body, header) = invalid_token(e);
                Self::Unauthorized(body, header)
            }
            RefreshError::Contended => Self::Unavailable(unavailable(e)),
            RefreshError::Store(e) => Self::Unavailable(unavailable(e)),
            RefreshError::Token(e) => Self::Internal(internal(e)),
        }
    }
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// `{"msg": "Successfully logged out"}`: the session's access and refresh tokens are
    /// revoked and the token cookies cleared.
    #[oai(status = 200)]
    Ok(Json<MessageBody>),
}

#[derive(ApiResponse)]
pub enum LogoutAllResponse {
    /// Every session of the caller is revoked, this one included.
    #[oai(status = 200)]
    Ok(Json<Revoked>),
}

#[derive(ApiResponse)]
pub enum PasswordResponse {
    /// The password is changed; every other session of the user is revoked.
    #[oai(status = 200)]
    Ok(Json<Revoked>),
}

/// Why a password change was refused.
#[derive(ApiResponse)]
pub enum PasswordRefusal {
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
    /// Too many wrong passwords for this user recently (here or at login: they count
    /// together); retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<MessageBody>, #[oai(header = "Retry-After")] i64),
    /// An unexpected fault in the server.
    #[oai(status = 500)]
    Internal(Json<MessageBody>),
    /// The password-hashing queue is full, for this client address or in total (with
    /// `Retry-After`: answered at once rather than after a long wait), or the event store is
    /// unreachable or overloaded. Retrying later may succeed.
    #[oai(status = 503)]
    Unavailable(
        Json<MessageBody>,
        #[oai(header = "Retry-After")] Option<i64>,
    ),
}

impl From<PasswordChangeError> for PasswordRefusal {
    fn from(e: PasswordChangeError) -> Self {
        match e {
            PasswordChangeError::NotFresh
            | PasswordChangeError::WrongPassword
            | PasswordChangeError::UnknownUser => {
                let (body, header) = invalid_token(e);
                Self::Unauthorized(body, header)
            }
            PasswordChangeError::Throttled { retry_after } => {
                Self::TooManyRequests(msg(e.to_string()), retry_after_seconds(retry_after))
            }
            PasswordChangeError::Contended => Self::Unavailable(unavailable(e), None),
            PasswordChangeError::Hashing(e) => Self::Internal(internal(e)),
            PasswordChangeError::Busy(busy) => {
                Self::Unavailable(msg(busy.to_string()), busy_retry(&busy))
            }
            PasswordChangeError::Store(e) => Self::Unavailable(unavailable(e), None),
        }
    }
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
        origin: Origin,
        body: JsonBody<Credentials>,
    ) -> Result<RegisterResponse, RegisterRefusal> {
        let Credentials {
            username,
            password,
            email,
        } = body.0;
        let (username, password) = parse_credentials(
            username.into_inner(),
            password.into_inner(),
            Password::parse,
        )?;
        let email = email
            .map(|text| Email::parse(&text.into_inner()))
            .transpose()
            .map_err(|e| RegisterRefusal::BadRequest(msg(e.to_string())))?;
        state
            .register
            .execute(username, password, email, &origin.0)
            .await?;
        Ok(RegisterResponse::Created(msg(
            "User registered successfully",
        )))
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
        origin: Origin,
        jar: &CookieJar,
        body: JsonBody<LoginRequest>,
    ) -> Result<LoginResponse, LoginRefusal> {
        let LoginRequest {
            username,
            password,
            set_cookies,
        } = body.0;
        let (username, password) = parse_credentials(
            username.into_inner(),
            password.into_inner(),
            Password::offered,
        )?;
        let cookies = set_cookies.unwrap_or(false);
        let pair = state
            .login
            .execute(username, password, cookies, &origin.0)
            .await?;
        if cookies {
            set_token_cookies(jar, &pair, state.cookies);
        }
        Ok(LoginResponse::Ok(Json((&pair).into())))
    }

    /// Refresh tokens
    ///
    /// Exchanges a refresh token for a new pair. Each refresh token works once: presenting
    /// one that was already exchanged revokes the whole session (RFC 9700 §4.14.2). A server
    /// started with a reuse grace answers the token its last exchange retired, presented again
    /// within the grace, with that exchange's pair again.
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        jar: &CookieJar,
        token: Refresh,
    ) -> Result<RefreshResponse, RefreshRefusal> {
        let cookies = token.0.via == Via::Cookie;
        let pair = state
            .refresh
            .execute(&token.0.claims, cookies, &origin.0)
            .await?;
        if cookies {
            set_token_cookies(jar, &pair, state.cookies);
        }
        Ok(RefreshResponse::Ok(Json((&pair).into())))
    }

    /// Log out
    ///
    /// Revokes the caller's session: its access token and its refresh token both stop
    /// working, on every instance, and across restarts. Clears the token cookies.
    #[oai(path = "/logout", method = "delete", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        jar: &CookieJar,
        token: Access,
    ) -> Result<LogoutResponse, StoreRefusal> {
        log_out(&state, &origin, jar, &token).await
    }

    /// Log out (POST)
    ///
    /// The same as `DELETE /logout`, for clients that cannot send DELETE.
    #[oai(path = "/logout", method = "post", operation_id = "logoutPost")]
    async fn logout_post(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        jar: &CookieJar,
        token: Access,
    ) -> Result<LogoutResponse, StoreRefusal> {
        log_out(&state, &origin, jar, &token).await
    }

    /// Log out everywhere
    ///
    /// Revokes every session of the caller, this one included, and clears the token cookies.
    #[oai(path = "/logout/all", method = "post", operation_id = "logoutAll")]
    async fn logout_all(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        jar: &CookieJar,
        token: Access,
    ) -> Result<LogoutAllResponse, StoreRefusal> {
        let claims = &token.0.claims;
        let revoked = state
            .sessions
            .revoke_all(
                UserRef::Id(claims.user_id),
                RevocationReason::LogoutAll,
                None,
                &origin.0,
            )
            .await?;
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
        origin: Origin,
        token: Access,
        body: JsonBody<PasswordChange>,
    ) -> Result<PasswordResponse, PasswordRefusal> {
        let PasswordChange {
            current_password,
            new_password,
        } = body.0;
        if current_password.is_empty() || new_password.is_empty() {
            return Err(PasswordRefusal::BadRequest(msg(MISSING_PASSWORDS)));
        }
        let new = Password::parse(new_password.into_inner())
            .map_err(|e| PasswordRefusal::BadRequest(msg(format!("new {e}"))))?;
        // A current password past the maximum cannot be the current one.
        let current = Password::offered(current_password.into_inner())
            .map_err(|_| PasswordChangeError::WrongPassword)?;
        let revoked = state
            .password
            .execute(&token.0.claims, current, new, &origin.0)
            .await?;
        Ok(PasswordResponse::Ok(Json(Revoked {
            msg: "Password changed".into(),
            revoked: revoked as u64,
        })))
    }
}

async fn log_out(
    state: &AppState,
    origin: &Origin,
    jar: &CookieJar,
    token: &Access,
) -> Result<LogoutResponse, StoreRefusal> {
    state
        .revoke
        .execute(
            token.0.claims.session_id,
            RevocationReason::Logout,
            &origin.0,
        )
        .await?;
    clear_token_cookies(jar, state.cookies);
    Ok(LogoutResponse::Ok(msg("Successfully logged out")))
}
