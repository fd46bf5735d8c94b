//! The read side that is derived from the log and kept: projections. A read that would fold a
//! user's whole history (their sessions), or the whole log (the user directory, the recent
//! revocations), reads a table instead, which the store keeps current from the log.

use async_trait::async_trait;
use authlog_domain::{RevocationReason, Role, SessionId, UserId};
use time::OffsetDateTime;

use super::StoreError;

/// A live session as the sessions projection holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: SessionId,
    pub user_id: UserId,
    /// When the password login opened it.
    pub created_at: OffsetDateTime,
    /// The login or the latest refresh.
    pub last_used_at: OffsetDateTime,
    /// When its current refresh token expires.
    pub expires_at: OffsetDateTime,
    /// How many refresh tokens it has had (1 after login).
    pub generation: u32,
    /// As recorded at login.
    pub user_agent: Option<String>,
    pub client_addr: Option<String>,
}

/// A session that was revoked, and by which fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSession {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub reason: RevocationReason,
    pub revoked_at: OffsetDateTime,
    /// The position of the event that revoked it (a `Revoked`, or a `SessionsRevoked` that
    /// ended many sessions at once).
    pub position: u64,
}

/// A session revoked recently: what the in-memory revocation view holds of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentRevocation {
    pub session_id: SessionId,
    pub revoked_at: OffsetDateTime,
}

/// Whether an account may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// A user as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub user_id: UserId,
    /// As the user chose it.
    pub username: String,
    pub roles: Vec<Role>,
    pub status: UserStatus,
    pub created_at: OffsetDateTime,
    pub last_login_at: Option<OffsetDateTime>,
    /// The address the user gave, if any, and whether a code mailed to it came back.
    pub email: Option<String>,
    pub email_verified: bool,
}

/// Which users a directory listing asks for, in order of registration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// A prefix of the canonical username (already case-folded).
    pub prefix: Option<String>,
    /// Only users of this status.
    pub status: Option<UserStatus>,
    /// Only the user with this id.
    pub user_id: Option<UserId>,
    /// Only the user with this canonical username (exactly).
    pub canonical: Option<String>,
    /// Only the users with this address, case folded (exactly).
    pub email: Option<String>,
    /// Only users registered after this one (paging: ids sort by registration).
    pub after: Option<UserId>,
    pub limit: u32,
}

/// One projection's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    /// The last log position it has applied.
    pub position: u64,
    /// The log's head when asked.
    pub head: u64,
    /// Why nothing more is applied to it, when its checkpoint names a position the log no
    /// longer holds as it was (it waits for a rebuild).
    pub halted: Option<String>,
}

/// The projections. Every read first waits until the projections have applied whatever this
/// process appended (so a client reads its own writes from any instance it wrote through).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReadModels: Send + Sync {
    /// Applies what the log gained to every read model this process can run (on PostgreSQL
    /// another instance may hold one: it is left to it), in their own transaction, so that
    /// each event applies exactly once. The subscriber runner calls it first in every pass.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails, or [`StoreError::Halted`] for a read model the log
    /// no longer bears out.
    async fn catch_up(&self) -> Result<(), StoreError>;

    /// Waits until every projection has applied the log up to `position`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when they do not get there in reasonable time.
    async fn wait_for(&self, position: u64) -> Result<(), StoreError>;

    /// Waits until every projection, those a read does not wait for too (the analysts' table
    /// may lag by a moment), has applied the log up to `position`: what an erasure waits for
    /// before it says that nothing shows the user any more.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when they do not get there in reasonable time.
    async fn wait_for_all(&self, position: u64) -> Result<(), StoreError>;

    /// The user's sessions that are neither revoked nor expired at `now`, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn live_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionView>, StoreError>;

    /// The sessions revoked at or after `since` (what can still matter to an access token),
    /// oldest first. A start-up reads all of them at once, so this is the lean form.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn revocations_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<RecentRevocation>, StoreError>;

    /// The sessions revoked by events after log position `after`, in position order.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn revocations_after(&self, after: u64) -> Result<Vec<RevokedSession>, StoreError>;

    /// The directory, by canonical username.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn users(&self, query: UserQuery) -> Result<Vec<UserView>, StoreError>;

    /// Where each projection stands.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn status(&self) -> Result<Vec<ProjectionStatus>, StoreError>;
}
