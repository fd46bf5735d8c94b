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

use crate::api::auth::sessions_failure;
use crate::api::Tag;
use crate::errors::{msg, MessageBody, ServerError};
use crate::request::Caller;
use crate::security::{unauthorized, Access};
use crate::state::AppState;

/// One live session (one login and its refreshes).
#[derive(Object)]
pub struct SessionInfo {
    pub id: Uuid,
    /// When the password login opened it.
    pub created_at: OffsetDateTime,
    /// The login or the latest refresh.
    pub last_used_at: OffsetDateTime,
    /// When its current refresh token expires.
    pub expires_at: OffsetDateTime,
    /// How many refresh tokens it has had (1 after login).
    pub generation: u32,
    /// Whether the token of this request belongs to it.
    pub current: bool,
}

#[derive(Object)]
pub struct SessionList {
    /// Oldest first.
    pub sessions: Vec<SessionInfo>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "list_unauthorized")]
pub enum ListResponse {
    /// The caller's sessions that are neither revoked nor expired.
    #[oai(status = 200)]
    Ok(Json<SessionList>),
    /// No, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
}

fn list_unauthorized(err: poem::Error) -> ListResponse {
    let (body, header) = unauthorized(&err);
    ListResponse::Unauthorized(body, header)
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "revoke_unauthorized")]
pub enum RevokeResponse {
    /// The session is revoked (or already was).
    #[oai(status = 204)]
    NoContent,
    /// No, an invalid, expired or revoked access token.
    #[oai(status = 401)]
    Unauthorized(
        Json<MessageBody>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// `{"msg": "Session not found"}`: no such session among the caller's.
    #[oai(status = 404)]
    NotFound(Json<MessageBody>),
}

fn revoke_unauthorized(err: poem::Error) -> RevokeResponse {
    let (body, header) = unauthorized(&err);
    RevokeResponse::Unauthorized(body, header)
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
    ) -> Result<ListResponse, ServerError> {
        let claims = &token.0.claims;
        let sessions = state
            .sessions
            .active(&claims.username)
            .await
            .map_err(ServerError::unavailable)?;
        let sessions = sessions
            .into_iter()
            .filter(|s| s.user_id == claims.user_id)
            .map(|s| SessionInfo {
                id: s.id.as_uuid(),
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                generation: s.generation,
                current: s.id == claims.session_id,
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
        caller: Caller,
        token: Access,
        /// The session's id, from `GET /sessions`.
        id: Path<String>,
    ) -> Result<RevokeResponse, ServerError> {
        let not_found = || Ok(RevokeResponse::NotFound(msg("Session not found")));
        // An id that is not even a UUID is just another session the caller does not have.
        let Ok(id) = id.0.parse::<SessionId>() else {
            return not_found();
        };
        match state
            .sessions
            .revoke_own(token.0.claims.user_id, id, &caller.0)
            .await
        {
            Ok(()) => Ok(RevokeResponse::NoContent),
            Err(SessionsError::NotFound) => not_found(),
            Err(e) => Err(sessions_failure(e)),
        }
    }
}
