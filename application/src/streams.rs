//! Loading aggregates from their streams, wrapping decided events for the store, and the one
//! loop every use case that appends to an existing stream runs: load, decide, append expecting
//! the version that was read, and on a conflict do it again on what the other writer recorded
//! (esrs's `manager.rs` and cqrs-es's command handler have the same shape).

use authlog_domain::session::{self, SessionState};
use authlog_domain::user::{self, UserState};
use authlog_domain::{Event, SessionId, StreamId, Username};
use time::OffsetDateTime;

use crate::ports::{AppendError, Appended, EventStore, Metadata, NewEvent, StoreError};

/// How often a decision is made again after losing a race on its stream. Each round has a
/// winner, so N concurrent writers need at most N rounds.
const ROUNDS: usize = 32;

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
        user::apply(state, &recorded.event, recorded.stamp())
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
        session::apply(state, &recorded.event, recorded.stamp())
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

/// An append's outcome for [`until_settled`]: `None` when it lost a race (someone else wrote
/// to one of its streams since it read them), which calls for another round.
///
/// # Errors
/// [`StoreError`] when the store failed.
pub fn settled(append: Result<Appended, AppendError>) -> Result<Option<Appended>, StoreError> {
    match append {
        Ok(appended) => Ok(Some(appended)),
        Err(AppendError::Conflict { .. }) => Ok(None),
        Err(AppendError::Store(e)) => Err(e),
    }
}

/// Runs `round` (load, decide, append expecting what was loaded) until one does not lose its
/// race, and answers what it answered. A round answers `Ok(None)` when it lost ([`settled`]).
///
/// (`round` is a closure returning a future rather than an async closure: the futures of
/// async closures are not `Send` for every lifetime, which the HTTP handlers need.)
///
/// # Errors
/// The first error a round returns; `contended` when every round lost.
pub async fn until_settled<T, E, Round>(
    contended: E,
    mut round: impl FnMut() -> Round,
) -> Result<T, E>
where
    Round: std::future::Future<Output = Result<Option<T>, E>>,
{
    for _ in 0..ROUNDS {
        if let Some(done) = round().await? {
            return Ok(done);
        }
    }
    Err(contended)
}
