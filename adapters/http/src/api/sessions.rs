//! The caller's sessions.

use std::sync::Arc;

use authlog_application::sessions::SessionsError;
use authlog_domain::SessionId;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api::Tag;
use crate::errors::{msg, unavailable, MessageBody, StoreRefusal};
use crate::request::Origin;
use crate::security::Access;
use crate::state::AppState;

/// One live session (one login and its refreshes).
#[derive(Object)]
pub struct SessionInfo {
    pub id: Uuid,
    /// When the password login opened it.
    pub created_at: OffsetDateTime,
    /// The login or the latest refresh.
    pub last_used_at: OffsetDateTime,
    /// When its current refresh token expires (never later than the login plus the maximum
    /// session age, however often it is refreshed).
    pub expires_at: OffsetDateTime,
    /// How many refresh tokens it has had (1 after login).
    pub generation: u32,
    /// Whether the token of this request belongs to it.
    pub current: bool,
    /// The `User-Agent` of the login that opened it (absent if it sent none).
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// The client address of that login (behind a trusted proxy, from `X-Forwarded-For`).
    #[oai(skip_serializing_if_is_none)]
    pub client_addr: Option<String>,
}

#[derive(Object)]
pub struct SessionList {
    /// Oldest first.
    pub sessions: Vec<SessionInfo>,
}

#[derive(ApiResponse)]
pub enum ListResponse {
    /// The caller's sessions that are neither revoked nor expired.
    #[oai(status = 200)]
    Ok(Json<SessionList>),
}

#[derive(ApiResponse)]
pub enum RevokeResponse {
    /// The session is revoked (or already was).
    #[oai(status = 204)]
    NoContent,
}

/// Why a session could not be revoked.
#[derive(ApiResponse)]
pub enum RevokeRefusal {
    /// No, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// `{"msg": "Session not found"}`: no such session among the caller's.
    #[oai(status = 404)]
    NotFound(Json<MessageBody>),
    /// An unexpected fault in the server.
    #[oai(status = 500)]
    Internal(Json<MessageBody>),
    /// The event store is unreachable or overloaded; retrying later may succeed.
    #[oai(status = 503)]
    Unavailable(Json<MessageBody>),
}

impl From<SessionsError> for RevokeRefusal {
    fn from(e: SessionsError) -> Self {
        match e {
            SessionsError::NotFound => Self::NotFound(msg(e.to_string())),
            other => Self::Unavailable(unavailable(other)),
        }
    }
}

pub struct SessionsApi;

#[OpenApi(tag = "Tag::Sessions")]
impl SessionsApi {
    /// List my sessions
    ///
    /// The caller's live sessions, with the one this token belongs to marked `current`.
    #[oai(path = "/sessions", method = "get", operation_id = "listSessions")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        token: Access,
    ) -> Result<ListResponse, StoreRefusal> {
        let claims = &token.0.claims;
        let sessions = state
            .sessions
            .active(claims.user_id)
            .await?
            .into_iter()
            .map(|s| SessionInfo {
                id: s.id.as_uuid(),
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                generation: s.generation,
                current: s.id == claims.session_id,
                user_agent: s.user_agent,
                client_addr: s.client_addr,
            })
            .collect();
        Ok(ListResponse::Ok(Json(SessionList { sessions })))
    }

    /// Revoke one of my sessions
    ///
    /// Ends one of the caller's sessions (log out a lost device). Another user's session id
    /// answers 404 and changes nothing.
    #[oai(
        path = "/sessions/:id",
        method = "delete",
        operation_id = "revokeSession"
    )]
    async fn revoke(
        &self,
        state: Data<&Arc<AppState>>,
        origin: Origin,
        token: Access,
        /// The session's id, from `GET /sessions`.
        id: Path<String>,
    ) -> Result<RevokeResponse, RevokeRefusal> {
        // An id that is not even a UUID is just another session the caller does not have.
        let id =
            id.0.parse::<SessionId>()
                .map_err(|_| SessionsError::NotFound)?;
        state
            .sessions
            .revoke_own(token.0.claims.user_id, id, &origin.0)
            .await?;
        Ok(RevokeResponse::NoContent)
    }
}
