//! The audit trail over HTTP, for admins and auditors (a SIEM's token has role `auditor`), and
//! signed checkpoints of its hash chain.

use std::sync::Arc;

use authlog_application::audit::{AuditEntry, AuditError, AuditQuery};
use authlog_application::signed_checkpoints::{CheckpointError, SignedCheckpoint};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use time::OffsetDateTime;

use crate::api::Tag;
use crate::errors::{msg, unavailable, MessageBody};
use crate::fields::{EventTypeName, EventTypes, Limit, Position, UsernameText};
use crate::security::Access;
use crate::state::AppState;

/// Where a request came from.
#[derive(Object)]
pub struct EventMetadata {
    /// The client's address (behind a trusted proxy, from `X-Forwarded-For`). Absent for events
    /// that did not come through HTTP (the command line), as are the other two.
    #[oai(skip_serializing_if_is_none)]
    pub client_addr: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// The request id (`X-Request-Id`) of the request that caused the event.
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
}

/// One event of the log. Secrets (password hashes) are never included.
#[derive(Object)]
pub struct AuditEvent {
    /// Global, gap-free position in the log.
    pub position: u64,
    // Its description lists the registry's types (`EventTypeName`).
    #[oai(rename = "type")]
    pub event_type: EventTypeName,
    /// The stream (aggregate) it belongs to: `user:<user id>` (`user:<name>` for an account an
    /// older release registered), `session:<id>`, `login:<user id or concealed name>`, `keys`.
    pub stream: String,
    pub recorded_at: OffsetDateTime,
    /// The event's payload.
    pub data: serde_json::Value,
    pub metadata: EventMetadata,
}

impl From<AuditEntry> for AuditEvent {
    fn from(entry: AuditEntry) -> Self {
        Self {
            position: entry.position,
            event_type: EventTypeName(entry.event_type.to_owned()),
            stream: entry.stream,
            recorded_at: entry.recorded_at,
            data: entry.data,
            metadata: EventMetadata {
                client_addr: entry.metadata.client_addr,
                user_agent: entry.metadata.user_agent,
                request_id: entry.metadata.request_id,
            },
        }
    }
}

/// A page of events.
#[derive(Object)]
pub struct AuditEvents {
    /// In position order.
    pub events: Vec<AuditEvent>,
    /// Pass as `after` for the next page; `null` when this page is the last.
    #[oai(nullable)]
    pub next_after: Option<u64>,
}

#[derive(ApiResponse)]
pub enum AuditResponse {
    /// The matching events, oldest first.
    #[oai(status = 200)]
    Ok(Json<AuditEvents>),
}

/// Why an audit query was refused.
#[derive(ApiResponse)]
pub enum AuditRefusal {
    /// A filter is invalid: the message says which and why.
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
    /// An unexpected fault in the server.
    #[oai(status = 500)]
    Internal(Json<MessageBody>),
    /// The event store is unreachable or overloaded; retrying later may succeed.
    #[oai(status = 503)]
    Unavailable(Json<MessageBody>),
}

impl From<AuditError> for AuditRefusal {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Forbidden(e) => Self::Forbidden(msg(e.to_string())),
            AuditError::BadFilter(_) => Self::BadRequest(msg(e.to_string())),
            AuditError::Store(e) => Self::Unavailable(unavailable(e)),
        }
    }
}

/// The hash chain's head, signed with the checkpoint key. Keep it outside authlog's database:
/// `authlog verify --checkpoint FILE` then shows whether the log still holds it.
#[derive(Object)]
pub struct Checkpoint {
    /// The log's last position.
    pub position: u64,
    /// The chain's hash at `position` (SHA-256, lowercase hex).
    pub hash: String,
    /// When the event at `position` was recorded (RFC 3339), exactly as signed.
    pub recorded_at: String,
    /// The checkpoint key that signed it (`/.well-known/authlog-checkpoint-keys.json`).
    pub kid: String,
    /// The Ed25519 signature (base64url, no padding) of the UTF-8 text
    /// `authlog-checkpoint.v1\n{position}\n{hash}\n{recorded_at}`.
    pub signature: String,
}

impl From<SignedCheckpoint> for Checkpoint {
    fn from(signed: SignedCheckpoint) -> Self {
        Self {
            position: signed.position,
            hash: signed.hash,
            recorded_at: signed.recorded_at,
            kid: signed.kid,
            signature: URL_SAFE_NO_PAD.encode(signed.signature),
        }
    }
}

#[derive(ApiResponse)]
pub enum CheckpointResponse {
    /// The chain's head, signed.
    #[oai(status = 200)]
    Ok(Json<Checkpoint>),
}

impl From<CheckpointError> for AuditRefusal {
    fn from(e: CheckpointError) -> Self {
        match e {
            CheckpointError::Forbidden(e) => Self::Forbidden(msg(e.to_string())),
            CheckpointError::Store(e) => Self::Unavailable(unavailable(e)),
            // Taking one fails otherwise only on an empty log, which a server never has (its
            // first signing key is an event); the checks are the command line's.
            e => Self::Internal(crate::errors::internal(e)),
        }
    }
}

pub struct AuditApi;

#[OpenApi(tag = "Tag::Audit")]
impl AuditApi {
    /// Query the event log
    ///
    /// The audit trail: every recorded fact, filtered and paged by position. Admins and auditors (role `auditor`, which allows this and nothing else).
    /// Filter by `username` for everything about one user: registration, logins and failed
    /// logins, refreshes, revocations, password and role changes.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/audit/events", method = "get", operation_id = "auditEvents")]
    async fn events(
        &self,
        state: Data<&Arc<AppState>>,
        token: Access,
        /// Only events about this user (case does not matter).
        username: Query<Option<UsernameText>>,
        /// Only events of these types: comma-separated (`LoginFailed,Revoked`), or repeat the
        /// parameter.
        #[oai(name = "type")]
        types: Query<Option<Vec<EventTypes>>>,
        /// Only events recorded at or after this time (RFC 3339).
        since: Query<Option<OffsetDateTime>>,
        /// Only events recorded before this time (RFC 3339).
        until: Query<Option<OffsetDateTime>>,
        /// Only events after this position (`next_after` of the previous page).
        after: Query<Option<Position>>,
        /// How many events at most: 1 to 1000, default 100.
        limit: Query<Option<Limit>>,
    ) -> Result<AuditResponse, AuditRefusal> {
        let query = AuditQuery {
            username: username.0.map(UsernameText::into_inner),
            types: types
                .0
                .unwrap_or_default()
                .into_iter()
                .map(|list| list.0)
                .collect(),
            since: since.0,
            until: until.0,
            after: after.0.map(|position| position.0),
            limit: limit.0.map(|limit| limit.0),
        };
        let page = state.audit.query(&token.caller(), query).await?;
        Ok(AuditResponse::Ok(Json(AuditEvents {
            events: page.events.into_iter().map(AuditEvent::from).collect(),
            next_after: page.next_after,
        })))
    }

    /// A signed checkpoint of the log
    ///
    /// The hash chain's head, signed with an Ed25519 key the database does not hold (derived
    /// from the master key). Kept somewhere the database's writers cannot reach, it shows
    /// later whether the log still holds that position with that hash: `authlog verify
    /// --checkpoint FILE`, or any Ed25519 implementation with the key set. Admins and
    /// auditors.
    #[oai(
        path = "/audit/checkpoint",
        method = "get",
        operation_id = "auditCheckpoint"
    )]
    async fn checkpoint(
        &self,
        state: Data<&Arc<AppState>>,
        token: Access,
    ) -> Result<CheckpointResponse, AuditRefusal> {
        let signed = state.checkpoints.take(&token.caller()).await?;
        Ok(CheckpointResponse::Ok(Json(signed.into())))
    }
}
