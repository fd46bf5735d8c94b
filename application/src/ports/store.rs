//! The event log, as the use cases see it: the write side ([`EventStore`]: append, load a
//! stream) and the read side ([`EventLog`]: follow from a position, audit queries). What is
//! derived from the log and kept (sessions, users, revocations) is [`super::ReadModels`].

use async_trait::async_trait;
use authlog_domain::{Event, EventType, Stamp, StreamId, UserId, Username};

use super::SigningKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the appender expects the stream to look like: the optimistic-concurrency check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist: "this username is free".
    NoStream,
    /// The stream's last event must have this version (versions start at 1).
    Exactly(u64),
    /// No check, for facts that hold whatever else was recorded (a revocation).
    Any,
}

impl ExpectedVersion {
    /// The expectation that a stream is still as it was when read at `version` (0: empty).
    pub fn after(version: u64) -> Self {
        if version == 0 {
            Self::NoStream
        } else {
            Self::Exactly(version)
        }
    }

    /// Whether the expectation holds for a stream now at `current` (0: no stream).
    pub fn holds_at(self, current: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => current == 0,
            Self::Exactly(version) => current == version,
        }
    }
}

/// Where a request came from, recorded with every event it causes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event: Event,
    /// Whom it concerns, for audit queries: the user's id for the events of an account and its
    /// sessions, the canonical name typed for a password check (which may name no account).
    pub subject: Option<String>,
    pub metadata: Metadata,
    /// When it happened (the application's clock); stored as `recorded_at`.
    pub occurred_at: OffsetDateTime,
}

/// One stream's part of an atomic append: its events, appended only if the stream is at
/// `expected`. A part without events is a pure condition: "this stream has not moved since I
/// read it" (a login checks the user's stream is still at the version whose password it
/// verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamWrite {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl StreamWrite {
    pub fn new(stream: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self {
            stream,
            expected,
            events,
        }
    }

    /// A condition only: `stream` must still be at `expected`.
    pub fn unchanged(stream: StreamId, expected: ExpectedVersion) -> Self {
        Self::new(stream, expected, Vec::new())
    }
}

/// A username that a registration claims, in the same transaction as its events: the store
/// refuses the registration ([`AppendError::NameTaken`]) when another account holds the
/// canonical name or the confusable skeleton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameClaim {
    pub user_id: UserId,
    /// [`Username::canonical`].
    pub canonical: String,
    /// [`Username::skeleton`].
    pub skeleton: String,
    /// The account's stream.
    pub stream: StreamId,
}

impl NameClaim {
    /// The claim of `username` for the account `user_id` whose stream is `stream`.
    pub fn of(username: &Username, user_id: UserId, stream: StreamId) -> Self {
        Self {
            user_id,
            canonical: username.canonical().to_owned(),
            skeleton: username.skeleton(),
            stream,
        }
    }
}

/// What an append writes besides its events, in the same transaction ([`EventStore::append_with`]):
/// data, one variant a kind, which each store writes in one place for both databases. A new kind
/// (a mail code, a webhook's secret) is a variant here and its statements in the stores, not a
/// new port method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beside {
    /// A registration's claim of its name: refuses the append ([`AppendError::NameTaken`]) when
    /// another account holds the canonical name or the confusable skeleton.
    ClaimName(NameClaim),
    /// Erasure: the data key that seals the user's personal data is destroyed (their secrets
    /// with it) and their name freed. From the commit on their personal fields read as erased
    /// everywhere, and the name may be registered again.
    EraseUser(UserId),
    /// A new signing key.
    AddSigningKey(SigningKey),
    /// Key `kid` revoked at `at` (its private key erased, its public key replaced by
    /// `tombstone`), and `replacement` stored.
    RevokeSigningKey {
        kid: String,
        at: OffsetDateTime,
        tombstone: Vec<u8>,
        replacement: SigningKey,
    },
    /// A secret of the user's own, stored sealed under their data key (so that erasing them
    /// destroys it), replacing one of the same kind and id.
    PutSecret(UserSecret),
    /// A secret of the user's own removed.
    DeleteSecret {
        user_id: UserId,
        kind: SecretKind,
        id: String,
    },
}

/// The kinds of secret a user owns. Stored as [`SecretKind::as_str`]; a kind is forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// A TOTP shared secret (RFC 6238).
    Totp,
    /// A hash of a one-time recovery code.
    RecoveryCode,
    /// A WebAuthn credential (a passkey).
    Passkey,
    /// A hash of a code mailed to the user (an address to verify, a password to reset).
    MailCode,
}

impl SecretKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
            Self::MailCode => "mail_code",
        }
    }
}

/// A secret a user owns: what it is, which one, and its bytes (open: the store seals them).
#[derive(Clone, PartialEq, Eq)]
pub struct UserSecret {
    pub user_id: UserId,
    pub kind: SecretKind,
    pub id: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for UserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSecret")
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The secrets users own, read back open: written only beside events ([`Beside::PutSecret`]),
/// so that a secret and the fact that it was set commit together.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserSecrets: Send + Sync {
    /// `user`'s secrets of `kind`, by id; none once the user is erased.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or a secret does not open.
    async fn secrets(&self, user: UserId, kind: SecretKind) -> Result<Vec<UserSecret>, StoreError>;
}

/// An account as the name index knows it: its id, and the stream its facts are in (named
/// after the id since names stopped naming streams; after the name's earlier canonical form
/// for an account registered before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: UserId,
    pub stream: StreamId,
    /// The log position of its `Registered`: by-name facts before it (failed logins typed
    /// while the name was free) are not the account's.
    pub registered_at: u64,
    /// The canonical name under the rule before full case folding, for an account registered
    /// before: the `subject` its older events carry.
    pub legacy_subject: Option<String>,
}

/// An event as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Global, gap-free, strictly increasing in commit order.
    pub position: u64,
    pub stream_id: StreamId,
    /// Position within the stream, from 1.
    pub stream_version: u64,
    pub event: Event,
    pub subject: Option<String>,
    pub metadata: Metadata,
    pub recorded_at: OffsetDateTime,
}

impl RecordedEvent {
    /// Where and when it was recorded, as the aggregates' `apply` takes it.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            position: self.position,
            at: self.recorded_at,
        }
    }
}

/// A stream's first `version` events folded into `state`, kept beside the stream so that a
/// read of a long stream starts from it: a cache, which the use case that folds the stream
/// writes and reads ([`crate::checks`]). Losing one costs a longer read, never a wrong answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub version: u64,
    /// The fold, as its use case serialises it (it passes over a state it cannot read).
    pub state: String,
}

/// Where a successful append landed: its events hold the positions `first..=position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The global position of the first event appended.
    pub first: u64,
    /// The global position of the last event appended (the log's head after the append).
    pub position: u64,
}

/// The store could not be used; the text is for operators, not clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("event store holds a row this version cannot read: {0}")]
    Corrupt(String),
    /// A read model is halted: the log no longer bears out what it applied, and nothing more
    /// is applied to it until an operator rebuilds it. The text says which and how.
    #[error("{0}")]
    Halted(String),
}

/// Why an append did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Someone else appended to the stream since it was read. Nothing was written.
    #[error("stream {stream} is at version {actual}, expected {expected:?}")]
    Conflict {
        stream: StreamId,
        expected: ExpectedVersion,
        actual: u64,
    },
    /// The name a registration claimed, or one that looks like it, belongs to an account.
    /// Nothing was written.
    #[error("the username, or one confusable with it, is taken")]
    NameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whose events an audit query asks for: those whose `subject` is one of `ids`, and those
/// whose subject is one of `names` at or after position `names_from` (the account's
/// registration, so that names typed while it was free are not its history).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectFilter {
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub names_from: u64,
}

/// Which events an audit query asks for; every filter narrows, `None`/empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Whom the events concern.
    pub subject: Option<SubjectFilter>,
    /// Event type names; any of them.
    pub types: Vec<String>,
    /// Recorded at or after.
    pub since: Option<OffsetDateTime>,
    /// Recorded before.
    pub until: Option<OffsetDateTime>,
    /// Only events after this position (paging).
    pub after: u64,
    pub limit: u32,
}

/// The write side of the log: appending, and loading the streams that decisions are made on.
///
/// No decision depends on where a request came from, and that is personal data: a store that
/// seals it may leave the metadata's `client_addr` and `user_agent` out of what the `read_stream`
/// methods answer. [`EventLog`], the read side, always has them (or has them erased).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends every part of `writes` atomically and durably, if each stream is at its
    /// expected version; otherwise nothing. Parts are applied in order.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] for the first part whose stream is not at its expectation
    /// (nothing is written); [`AppendError::Store`] when the store fails.
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<Appended, AppendError>;

    /// Every event of `stream`, in order (empty when the stream does not exist).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds an unreadable row.
    async fn read_stream(&self, stream: StreamId) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The last `count` events of `stream`, oldest first: a bounded look at a long stream.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds an unreadable row.
    async fn read_stream_tail(
        &self,
        stream: StreamId,
        count: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The first event of `stream` and its last `tail` events, oldest first, each once: all an
    /// aggregate needs whose `apply` takes every field from the event (a session: its
    /// `LoggedIn`, then its latest rotation and revocation), however long the stream grew.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds an unreadable row.
    async fn read_stream_edges(
        &self,
        stream: StreamId,
        tail: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events of `stream` after its version `version`, oldest first: what
    /// brings a [`Snapshot`] taken at `version` up to date.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds an unreadable row.
    async fn read_stream_after(
        &self,
        stream: StreamId,
        version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The snapshot kept of `stream`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn snapshot(&self, stream: StreamId) -> Result<Option<Snapshot>, StoreError>;

    /// Keeps `snapshot` of `stream`, unless one of a later version is kept already.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn keep_snapshot(&self, stream: StreamId, snapshot: Snapshot) -> Result<(), StoreError>;

    /// Appends `writes` as [`EventStore::append`] does, and writes everything of `beside` in
    /// the same transaction: all of it and the events, or nothing.
    ///
    /// # Errors
    /// [`AppendError::NameTaken`] when a [`Beside::ClaimName`] meets a claimed name or
    /// skeleton; [`StoreError::Unavailable`] when a [`Beside::PutSecret`] names a user who was
    /// erased (no key seals it); otherwise as [`EventStore::append`]. Nothing is written then.
    async fn append_with(
        &self,
        writes: Vec<StreamWrite>,
        beside: Vec<Beside>,
    ) -> Result<Appended, AppendError>;

    /// The account whose canonical name is `canonical`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn find_account(&self, canonical: &str) -> Result<Option<Account>, StoreError>;

    /// The account with id `user_id`, if any.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn account(&self, user_id: UserId) -> Result<Option<Account>, StoreError>;
}

/// The read side of the log: following it by position, and the audit query.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Up to `limit` events after global `position` whose type is one of `types` (all types
    /// when empty), in order: how consumers follow the log, each reading only what it needs.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn read_after(
        &self,
        after: u64,
        limit: u32,
        types: &'static [EventType],
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events matching `filter`, in position order, at most `filter.limit`.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds an unreadable row.
    async fn query(&self, filter: AuditFilter) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the newest event (0 for an empty log).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn head(&self) -> Result<u64, StoreError>;
}
