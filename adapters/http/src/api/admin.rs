//! Account administration, for admins: the user directory and the user lifecycle (disable,
//! enable, roles, forced logout, erasure). Each handler calls the use case the command line
//! calls (`authlog user ...`), which checks the caller's role itself; every change is an event
//! in the log, shown by audit.

use std::sync::Arc;

use authlog_application::access::Caller;
use authlog_application::directory::{DirectoryError, DirectoryQuery, UserDetail};
use authlog_application::erase::EraseError;
use authlog_application::ports::{SessionView, UserStatus, UserView};
use authlog_application::roles::RoleError;
use authlog_application::sessions::SessionsError;
use authlog_application::status::StatusError;
use authlog_application::streams::UserRef;
use authlog_domain::{Role, UserId};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::Tag;
use crate::body::{OptionalJsonBody, RequestBody};
use crate::errors::{msg, unavailable, MessageBody};
use crate::fields::{Limit, PrefixText, ReasonText, RoleText, MAX_REASON_CHARS};
use crate::request::Origin;
use crate::security::Access;
use crate::state::AppState;

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Disabled,
}

impl From<UserStatus> for AccountStatus {
    fn from(status: UserStatus) -> Self {
        match status {
            UserStatus::Active => Self::Active,
            UserStatus::Disabled => Self::Disabled,
        }
    }
}

impl From<AccountStatus> for UserStatus {
    fn from(status: AccountStatus) -> Self {
        match status {
            AccountStatus::Active => Self::Active,
            AccountStatus::Disabled => Self::Disabled,
        }
    }
}

/// A user as the directory holds it.
#[derive(Object)]
pub struct AdminUser {
    pub user_id: Uuid,
    pub username: String,
    pub roles: Vec<String>,
    pub status: AccountStatus,
    pub created_at: OffsetDateTime,
    /// The latest password login; `null` before the first.
    #[oai(nullable)]
    pub last_login_at: Option<OffsetDateTime>,
    /// The account's email address; `null` when it has none.
    #[oai(nullable)]
    pub email: Option<String>,
    /// Whether `email` was verified by a code mailed to it.
    pub email_verified: bool,
    /// The second factors the account has enrolled (`totp`, `passkey`); none can be enrolled
    /// yet.
    pub mfa: Vec<String>,
}

impl From<UserView> for AdminUser {
    fn from(user: UserView) -> Self {
        Self {
            user_id: user.user_id.as_uuid(),
            username: user.username,
            roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            status: user.status.into(),
            created_at: user.created_at,
            last_login_at: user.last_login_at,
            email: user.email,
            email_verified: user.email_verified,
            mfa: Vec::new(),
        }
    }
}

/// A page of users.
#[derive(Object)]
pub struct AdminUsers {
    /// In order of registration.
    pub users: Vec<AdminUser>,
    /// Pass as `after` for the next page; `null` when this page is the last.
    #[oai(nullable)]
    pub next_after: Option<String>,
}

/// A live session of a user, with the device that opened it.
#[derive(Object)]
pub struct AdminSession {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub generation: u32,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub client_addr: Option<String>,
}

impl From<SessionView> for AdminSession {
    fn from(s: SessionView) -> Self {
        Self {
            id: s.id.as_uuid(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            generation: s.generation,
            user_agent: s.user_agent,
            client_addr: s.client_addr,
        }
    }
}

/// One user with their live sessions.
#[derive(Object)]
pub struct AdminUserDetail {
    #[oai(flatten)]
    pub user: AdminUser,
    /// Oldest first.
    pub sessions: Vec<AdminSession>,
}

impl From<UserDetail> for AdminUserDetail {
    fn from(detail: UserDetail) -> Self {
        Self {
            user: detail.user.into(),
            sessions: detail.sessions.into_iter().map(Into::into).collect(),
        }
    }
}

/// `POST /admin/users/{user_id}/disable`: why, for the audit trail (optional; sealed with the
/// user's personal data, so erasure takes it too).
#[derive(Object)]
pub struct DisableRequest {
    /// `null` or absent: no reason given.
    #[oai(nullable)]
    pub reason: Option<ReasonText>,
}

impl RequestBody for DisableRequest {
    const WRONG_SHAPE: &'static str = "Expected {\"reason\": \"...\"} or no body";
}

/// `{"msg", "revoked"}` of a forced logout.
#[derive(Object)]
pub struct SessionsEnded {
    pub msg: String,
    /// How many live sessions were ended.
    pub revoked: u64,
}

#[derive(ApiResponse)]
pub enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<AdminUsers>),
}

#[derive(ApiResponse)]
pub enum ShowResponse {
    #[oai(status = 200)]
    Ok(Json<AdminUserDetail>),
}

#[derive(ApiResponse)]
pub enum DoneResponse {
    /// `{"msg": ...}`
    #[oai(status = 200)]
    Ok(Json<MessageBody>),
}

#[derive(ApiResponse)]
pub enum NoContentResponse {
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum SessionsEndedResponse {
    #[oai(status = 200)]
    Ok(Json<SessionsEnded>),
}

/// Why an admin operation was refused.
#[derive(ApiResponse)]
pub enum AdminRefusal {
    /// A parameter or body is invalid: the message says which and why.
    #[oai(status = 400)]
    BadRequest(Json<MessageBody>),
    /// No, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// `{"msg": "Admin access required"}`
    #[oai(status = 403)]
    Forbidden(Json<MessageBody>),
    /// `{"msg": "User not found"}`: no account has that id (or it was erased).
    #[oai(status = 404)]
    NotFound(Json<MessageBody>),
    /// The account kept changing under concurrent requests; retrying may succeed.
    #[oai(status = 409)]
    Conflict(Json<MessageBody>),
    /// The event store is unreachable or overloaded; retrying later may succeed.
    #[oai(status = 503)]
    Unavailable(Json<MessageBody>),
}

const NOT_FOUND: &str = "User not found";

impl AdminRefusal {
    fn not_found() -> Self {
        Self::NotFound(msg(NOT_FOUND))
    }
}

impl From<DirectoryError> for AdminRefusal {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Forbidden(e) => Self::Forbidden(msg(e.to_string())),
            DirectoryError::BadQuery(_) => Self::BadRequest(msg(e.to_string())),
            DirectoryError::NotFound => Self::not_found(),
            DirectoryError::Store(e) => Self::Unavailable(unavailable(e)),
        }
    }
}

impl From<StatusError> for AdminRefusal {
    fn from(e: StatusError) -> Self {
        match e {
            StatusError::Forbidden(e) => Self::Forbidden(msg(e.to_string())),
            StatusError::UnknownUser => Self::not_found(),
            StatusError::Contended => Self::Conflict(msg(e.to_string())),
            StatusError::Store(e) => Self::Unavailable(unavailable(e)),
        }
    }
}

impl From<RoleError> for AdminRefusal {
    fn from(e: RoleError) -> Self {
        match e {
            RoleError::Forbidden(e) => Self::Forbidden(msg(e.to_string())),
            RoleError::UnknownUser => Self::not_found(),
            RoleError::Contended => Self::Conflict(msg(e.to_string())),
            RoleError::Store(e) => Self::Unavailable(unavailable(e)),
        }
    }
}

impl From<SessionsError> for AdminRefusal {
    fn from(e: SessionsError) -> Self {
        match e {
            SessionsError::Forbidden(e) => Self::Forbidden(msg(e.to_string())),
            SessionsError::UnknownUser | SessionsError::NotFound => Self::not_found(),
            SessionsError::Contended => Self::Conflict(msg(e.to_string())),
            other => Self::Unavailable(unavailable(other)),
        }
    }
}

impl From<EraseError> for AdminRefusal {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::Forbidden(e) => Self::Forbidden(msg(e.to_string())),
            EraseError::UnknownUser => Self::not_found(),
            EraseError::Contended => Self::Conflict(msg(e.to_string())),
            EraseError::Store(e) => Self::Unavailable(unavailable(e)),
        }
    }
}

/// The caller, if an admin. The use cases check the role themselves; asking first here makes a
/// non-admin's answer 403 whatever the path holds (a malformed id would otherwise say 404).
fn admin(token: &Access) -> Result<Caller, AdminRefusal> {
    let caller = token.caller();
    caller
        .require(&Role::admin())
        .map_err(|e| AdminRefusal::Forbidden(msg(e.to_string())))?;
    Ok(caller)
}

/// The user a path names: an id that is not even a UUID is just another user that does not
/// exist.
fn user_id(raw: &str) -> Result<UserId, AdminRefusal> {
    raw.parse().map_err(|_| AdminRefusal::not_found())
}

/// A role a path names; one that cannot be spelt is a 400 (its schema says the pattern).
fn role_of(text: RoleText) -> Result<Role, AdminRefusal> {
    Role::parse(&text.into_inner())
        .map_err(|e| AdminRefusal::BadRequest(msg(format!("invalid role: {e}"))))
}

pub struct AdminApi;

#[OpenApi(tag = "Tag::Admin")]
impl AdminApi {
    /// List and search users
    ///
    /// The user directory, in order of registration, paged: pass `next_after` as `after` for
    /// the next page. `q` is a username prefix (case does not matter).
    #[oai(path = "/admin/users", method = "get", operation_id = "adminListUsers")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        token: Access,
        /// A username prefix; case and compatibility forms do not matter.
        q: Query<Option<PrefixText>>,
        /// Only accounts of this status.
        status: Query<Option<AccountStatus>>,
        /// How many users at most: 1 to 1000, default 100.
        limit: Query<Option<Limit>>,
        /// The `next_after` of the previous page.
        after: Query<Option<Uuid>>,
    ) -> Result<ListResponse, AdminRefusal> {
        let query = DirectoryQuery {
            prefix: q.0.map(PrefixText::into_inner),
            after: after.0.map(UserId::from_uuid),
            status: status.0.map(Into::into),
            limit: limit.0.map(|limit| limit.0),
        };
        let page = state.directory.list(&token.caller(), query).await?;
        Ok(ListResponse::Ok(Json(AdminUsers {
            users: page.users.into_iter().map(Into::into).collect(),
            next_after: page.next_after.map(|id| id.to_string()),
        })))
    }

    /// Show a user
    ///
    /// One user as the directory holds them, with their live sessions and the devices that
    /// opened them.
    #[oai(
        path = "/admin/users/:user_id",
        method = "get",
        operation_id = "adminGetUser"
    )]
    async fn show(
        &self,
        state: Data<&Arc<AppState>>,
        token: Access,
        user_id: Path<String>,
    ) -> Result<ShowResponse, AdminRefusal> {
        let caller = admin(&token)?;
        let id = self::user_id(&user_id.0)?;
        let detail = state.directory.show(&caller, UserRef::Id(id)).await?;
        Ok(ShowResponse::Ok(Json(detail.into())))
    }

    /// Disable a user
    ///
    /// Every session of the user ends at once (reason `admin`), refresh is refused, and login
    /// answers 403 `Account disabled` to the right password (401 to a wrong one) until the
    /// account is enabled. Disabling a disabled account changes nothing.
    #[oai(
        path = "/admin/users/:user_id/disable",
        method = "post",
        operation_id = "adminDisableUser"
    )]
    async fn disable(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        user_id: Path<String>,
        body: OptionalJsonBody<DisableRequest>,
    ) -> Result<DoneResponse, AdminRefusal> {
        let caller = admin(&token)?;
        let id = self::user_id(&user_id.0)?;
        let reason = body
            .0
            .and_then(|body| body.reason)
            .map(ReasonText::into_inner);
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
        {
            return Err(AdminRefusal::BadRequest(msg(format!(
                "reason must be at most {MAX_REASON_CHARS} characters"
            ))));
        }
        let done = state
            .status
            .disable(&caller, UserRef::Id(id), reason, &origin.0)
            .await?;
        Ok(DoneResponse::Ok(msg(if done.changed {
            format!(
                "User disabled; {} session(s) revoked",
                done.sessions_revoked
            )
        } else {
            "User was already disabled".to_owned()
        })))
    }

    /// Enable a user
    ///
    /// A disabled account may log in again. Enabling an active account changes nothing.
    #[oai(
        path = "/admin/users/:user_id/enable",
        method = "post",
        operation_id = "adminEnableUser"
    )]
    async fn enable(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        user_id: Path<String>,
    ) -> Result<DoneResponse, AdminRefusal> {
        let caller = admin(&token)?;
        let id = self::user_id(&user_id.0)?;
        let done = state
            .status
            .enable(&caller, UserRef::Id(id), &origin.0)
            .await?;
        Ok(DoneResponse::Ok(msg(if done.changed {
            "User enabled"
        } else {
            "User was not disabled"
        })))
    }

    /// Grant a role
    ///
    /// Idempotent. The user's tokens carry it from their next login or refresh.
    #[oai(
        path = "/admin/users/:user_id/roles/:role",
        method = "put",
        operation_id = "adminGrantRole"
    )]
    async fn grant(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        user_id: Path<String>,
        /// A role name: lowercase letters, digits, `_`, `:` and `-`.
        role: Path<RoleText>,
    ) -> Result<NoContentResponse, AdminRefusal> {
        let caller = admin(&token)?;
        let id = self::user_id(&user_id.0)?;
        let role = role_of(role.0)?;
        state
            .roles
            .grant(&caller, UserRef::Id(id), role, &origin.0)
            .await?;
        Ok(NoContentResponse::NoContent)
    }

    /// Revoke a role
    ///
    /// Idempotent. Tokens issued before no longer pass that role's checks, on every instance
    /// within a second; the next refresh issues tokens without it.
    #[oai(
        path = "/admin/users/:user_id/roles/:role",
        method = "delete",
        operation_id = "adminRevokeRole"
    )]
    async fn revoke(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        user_id: Path<String>,
        /// A role name: lowercase letters, digits, `_`, `:` and `-`.
        role: Path<RoleText>,
    ) -> Result<NoContentResponse, AdminRefusal> {
        let caller = admin(&token)?;
        let id = self::user_id(&user_id.0)?;
        let role = role_of(role.0)?;
        state
            .roles
            .revoke(&caller, UserRef::Id(id), role, &origin.0)
            .await?;
        Ok(NoContentResponse::NoContent)
    }

    /// Log a user out everywhere
    ///
    /// Ends every session of the user (reason `admin`); their tokens are refused at once here
    /// and within a second on every other instance.
    #[oai(
        path = "/admin/users/:user_id/sessions",
        method = "delete",
        operation_id = "adminRevokeSessions"
    )]
    async fn end_sessions(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        user_id: Path<String>,
    ) -> Result<SessionsEndedResponse, AdminRefusal> {
        let caller = admin(&token)?;
        let id = self::user_id(&user_id.0)?;
        let revoked = state
            .sessions
            .end_all_for(&caller, UserRef::Id(id), &origin.0)
            .await?;
        Ok(SessionsEndedResponse::Ok(Json(SessionsEnded {
            msg: format!("{revoked} session(s) revoked"),
            revoked: revoked as u64,
        })))
    }

    /// Erase a user
    ///
    /// Every session ends, and the user's personal data in the log (username, password
    /// hashes, client addresses, user agents) can no longer be read by anyone; the name may be
    /// registered again. The events stay, and `authlog verify` still passes.
    #[oai(
        path = "/admin/users/:user_id",
        method = "delete",
        operation_id = "adminEraseUser"
    )]
    async fn erase(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        user_id: Path<String>,
    ) -> Result<NoContentResponse, AdminRefusal> {
        let caller = admin(&token)?;
        let id = self::user_id(&user_id.0)?;
        state
            .erase
            .execute(&caller, UserRef::Id(id), &origin.0)
            .await?;
        Ok(NoContentResponse::NoContent)
    }
}
