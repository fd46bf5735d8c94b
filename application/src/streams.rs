//! Loading aggregates from their streams and wrapping decided events for the store.

use authlog_domain::session::{self, SessionState};
use authlog_domain::user::{self, UserState};
use authlog_domain::{Event, SessionId, StreamId, Username};
use time::OffsetDateTime;

use crate::ports::{EventStore, Metadata, NewEvent, StoreError};

/// A state and the stream version it was read at (0: no stream).
pub struct Loaded<S> {
    pub state: S,
    pub version: u64,
}

/// Reads the user stream of `username`.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn load_user(
    store: &dyn EventStore,
    username: &Username,
) -> Result<Loaded<UserState>, StoreError> {
    let events = store.read_stream(StreamId::user(username)).await?;
    let version = events.last().map_or(0, |e| e.stream_version);
    let state = events.iter().fold(UserState::None, |state, recorded| {
        user::apply(state, &recorded.event, recorded.recorded_at)
    });
    Ok(Loaded { state, version })
}

/// Reads the stream of session `id`: its first event and its last two, which give the same state
/// as the whole stream (see [`session::apply`]), so a refresh costs the same at the thousandth
/// rotation as at the first.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn load_session(
    store: &dyn EventStore,
    id: SessionId,
) -> Result<Loaded<SessionState>, StoreError> {
    let events = store
        .read_stream_edges(StreamId::session(id), session::STATE_TAIL)
        .await?;
    let version = events.last().map_or(0, |e| e.stream_version);
    let state = events.iter().fold(SessionState::None, |state, recorded| {
        session::apply(state, &recorded.event, recorded.recorded_at)
    });
    Ok(Loaded { state, version })
}

/// Wraps decided events with who they concern, where the request came from, and when.
pub fn to_append(
    events: Vec<Event>,
    subject: &Username,
    metadata: &Metadata,
    now: OffsetDateTime,
) -> Vec<NewEvent> {
    events
        .into_iter()
        .map(|event| NewEvent {
            event,
            subject: Some(subject.canonical().to_owned()),
            metadata: metadata.clone(),
            occurred_at: now,
        })
        .collect()
}
