use async_trait::async_trait;
use authlog_domain::{Event, StreamId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the appender expects the stream to look like: the optimistic-concurrency check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must not exist: "this username is free".
    NoStream,
    /// The stream's last event must have this version (versions start at 1).
    Exactly(u64),
    /// No check, for streams whose order carries no invariant (failed logins).
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
    /// The canonical username it concerns, for audit queries.
    pub subject: Option<String>,
    pub metadata: Metadata,
    /// When it happened (the application's clock); stored as `recorded_at`.
    pub occurred_at: OffsetDateTime,
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

/// Where a successful append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// The global position of the last appended event.
    pub position: u64,
}

/// The store could not be used; the text is for operators, not clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    #[error("event store holds a row this version cannot read: {0}")]
    Corrupt(String),
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which events an audit query asks for; every filter narrows, `None`/empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The canonical username the events concern.
    pub subject: Option<String>,
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

/// The append-only event log.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` to `stream` atomically and durably, if the stream is at `expected`.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when the stream is not at `expected` (nothing is written);
    /// [`AppendError::Store`] when the store fails.
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, AppendError>;

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

    /// Every event whose subject is `subject` (a canonical username), in order: the user's
    /// own stream, their sessions and their failed logins.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds an unreadable row.
    async fn read_subject(&self, subject: String) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events after global `position`, in order: how consumers follow the log.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds an unreadable row.
    async fn read_all(&self, after: u64, limit: u32) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events of one type recorded at or after `since`, in order.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails or holds an unreadable row.
    async fn read_type_since(
        &self,
        event_type: &'static str,
        since: OffsetDateTime,
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
