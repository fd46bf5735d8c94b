//! Email: the caller's address and its verification, and a forgotten password reset by a code
//! mailed to the account's verified address. On a server that sends no mail (no
//! `--smtp-url`) every operation here answers 404 `Email is not enabled on this server`.

use std::sync::Arc;

use authlog_application::email::{EmailError, Emails, Forgotten};
use authlog_domain::{Email, Password, Username};
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Union};

use crate::api::Tag;
use crate::body::{JsonBody, RequestBody};
use crate::errors::{internal, msg, unavailable, MessageBody};
use crate::fields::{CodeText, EmailText, PasswordText, UsernameText};
use crate::request::Origin;
use crate::security::Access;
use crate::state::AppState;

const NOT_ENABLED: &str = "Email is not enabled on this server";
const FORGOT: &str = "If the account exists, a reset code has been sent";
/// How long after its answer a forgotten password is looked up: long enough for the answer to
/// be on its way, short enough that nobody waits for the mail because of it.
const FORGOT_DELAY: std::time::Duration = std::time::Duration::from_millis(5);

/// `PUT /me/email`.
#[derive(Object)]
pub struct EmailRequest {
    pub email: EmailText,
}

impl RequestBody for EmailRequest {
    const WRONG_SHAPE: &'static str = "Expected {\"email\": \"name@example.com\"}";
}

/// `POST /me/email/verify`.
#[derive(Object)]
pub struct CodeRequest {
    /// The code from the mail.
    pub code: CodeText,
}

impl RequestBody for CodeRequest {
    const WRONG_SHAPE: &'static str = "Expected {\"code\": \"123456\"}";
}

/// `POST /password/forgot` by username.
#[derive(Object)]
pub struct ForgotByUsername {
    pub username: UsernameText,
}

/// `POST /password/forgot` by the account's verified address.
#[derive(Object)]
pub struct ForgotByEmail {
    pub email: EmailText,
}

/// `POST /password/forgot`: the account's username, or its verified address (one of them).
#[derive(Union)]
#[oai(one_of)]
pub enum ForgotRequest {
    Username(ForgotByUsername),
    Email(ForgotByEmail),
}

impl RequestBody for ForgotRequest {
    const WRONG_SHAPE: &'static str = "Expected {\"username\": \"...\"} or {\"email\": \"...\"}";
}

/// `POST /password/reset`.
#[derive(Object)]
pub struct ResetRequest {
    pub username: UsernameText,
    /// The code from the mail.
    pub code: CodeText,
    /// At least 8 characters and at most 1024 bytes of UTF-8.
    pub new_password: PasswordText,
}

impl RequestBody for ResetRequest {
    const WRONG_SHAPE: &'static str =
        "Expected {\"username\": \"...\", \"code\": \"...\", \"new_password\": \"...\"}";
}

#[derive(ApiResponse)]
pub enum AcceptedResponse {
    /// `{"msg": ...}`: accepted; a mail is on its way (when there is someone to send it to).
    #[oai(status = 202)]
    Accepted(Json<MessageBody>),
}

#[derive(ApiResponse)]
pub enum DoneResponse {
    /// `{"msg": ...}`
    #[oai(status = 200)]
    Ok(Json<MessageBody>),
}

/// Why an email operation was refused.
#[derive(ApiResponse)]
pub enum EmailRefusal {
    /// The body is malformed, or `{"msg": "Invalid or expired code"}`.
    #[oai(status = 400)]
    BadRequest(Json<MessageBody>),
    /// No, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// `{"msg": "Email is not enabled on this server"}`: it was started without `--smtp-url`.
    #[oai(status = 404)]
    NotFound(Json<MessageBody>),
    /// An unexpected fault in the server.
    #[oai(status = 500)]
    Internal(Json<MessageBody>),
    /// The hashing queue is full or the event store is unreachable; retrying later may
    /// succeed.
    #[oai(status = 503)]
    Unavailable(Json<MessageBody>),
}

impl From<EmailError> for EmailRefusal {
    fn from(e: EmailError) -> Self {
        match e {
            EmailError::InvalidCode(_) => Self::BadRequest(msg(e.to_string())),
            // The caller's own account, gone since the token was issued.
            EmailError::UnknownUser => Self::BadRequest(msg("Invalid or expired code")),
            EmailError::Hashing(e) => Self::Internal(internal(e)),
            EmailError::Busy(e) => Self::Unavailable(msg(e.to_string())),
            other => Self::Unavailable(unavailable(other)),
        }
    }
}

fn emails(state: &AppState) -> Result<&Arc<Emails>, EmailRefusal> {
    state
        .emails
        .as_ref()
        .ok_or_else(|| EmailRefusal::NotFound(msg(NOT_ENABLED)))
}

fn bad(text: impl Into<String>) -> EmailRefusal {
    EmailRefusal::BadRequest(msg(text))
}

pub struct EmailApi;

#[OpenApi(tag = "Tag::Email")]
impl EmailApi {
    /// Set my email address
    ///
    /// Sets the caller's address, unverified, and mails a code to it (valid 15 minutes, 5
    /// tries, once) to verify it with `POST /me/email/verify`.
    #[oai(path = "/me/email", method = "put", operation_id = "setEmail")]
    async fn set(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        body: JsonBody<EmailRequest>,
    ) -> Result<AcceptedResponse, EmailRefusal> {
        let emails = emails(&state)?;
        let email = Email::parse(&body.0.email.into_inner()).map_err(|e| bad(e.to_string()))?;
        emails
            .change(token.0.claims.user_id, email, &origin.0)
            .await?;
        Ok(AcceptedResponse::Accepted(msg(
            "A verification code has been sent to the address",
        )))
    }

    /// Verify my email address
    ///
    /// With the code mailed to the caller's address.
    #[oai(
        path = "/me/email/verify",
        method = "post",
        operation_id = "verifyEmail"
    )]
    async fn verify(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        body: JsonBody<CodeRequest>,
    ) -> Result<DoneResponse, EmailRefusal> {
        let emails = emails(&state)?;
        emails
            .verify(token.0.claims.user_id, &body.0.code.into_inner(), &origin.0)
            .await?;
        Ok(DoneResponse::Ok(msg("Email address verified")))
    }

    /// Forgot my password
    ///
    /// Mails a reset code to the account's verified address, by its username or that address.
    /// Always answers 202 with the same body, in the same time, whether or not the account
    /// exists (the work happens after the answer). At most one code a minute per account.
    #[oai(
        path = "/password/forgot",
        method = "post",
        operation_id = "forgotPassword"
    )]
    async fn forgot(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        body: JsonBody<ForgotRequest>,
    ) -> Result<AcceptedResponse, EmailRefusal> {
        let emails = emails(&state)?.clone();
        let whom = match body.0 {
            ForgotRequest::Username(by) => Forgotten::Username(
                Username::parse(&by.username.into_inner()).map_err(|e| bad(e.to_string()))?,
            ),
            ForgotRequest::Email(by) => Forgotten::Email(
                Email::parse(&by.email.into_inner()).map_err(|e| bad(e.to_string()))?,
            ),
        };
        // Answered before anything is looked up, so that neither the body nor the time of the
        // answer says whether the account exists; a failure goes to the server's log.
        let metadata = origin.0.clone();
        tokio::spawn(async move {
            // Behind the answer: the spawned task would otherwise run first on this worker,
            // and what it finds out (an account or none) would delay the answer by its own
            // cost.
            tokio::time::sleep(FORGOT_DELAY).await;
            if let Err(e) = emails.forgot(&whom, &metadata).await {
                tracing::warn!(error = %e, "cannot issue a password reset code");
            }
        });
        Ok(AcceptedResponse::Accepted(msg(FORGOT)))
    }

    /// Reset my password
    ///
    /// With the code mailed by `POST /password/forgot`: sets the new password and ends every
    /// session of the account. A wrong, expired or used code, and an unknown username, answer
    /// alike.
    #[oai(
        path = "/password/reset",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        body: JsonBody<ResetRequest>,
    ) -> Result<DoneResponse, EmailRefusal> {
        let emails = emails(&state)?;
        let ResetRequest {
            username,
            code,
            new_password,
        } = body.0;
        let new_password =
            Password::parse(new_password.into_inner()).map_err(|e| bad(e.to_string()))?;
        let Ok(username) = Username::parse(&username.into_inner()) else {
            return Err(bad("Invalid or expired code"));
        };
        let revoked = emails
            .reset(&username, &code.into_inner(), new_password, &origin.0)
            .await?;
        Ok(DoneResponse::Ok(msg(format!(
            "Password reset; {revoked} session(s) revoked"
        ))))
    }
}
