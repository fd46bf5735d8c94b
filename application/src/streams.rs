//! Loading aggregates from their streams, wrapping decided events for the store, and the one
//! loop every use case that appends to an existing stream runs: load, decide, append expecting
//! the version that was read, and on a conflict do it again on what the other writer recorded
//! (esrs's `manager.rs` and cqrs-es's command handler have the same shape).

use authlog_domain::session::{self, SessionState};
use authlog_domain::user::{self, UserState};
use authlog_domain::{Event, SessionId, StreamId, UserId, Username};
use time::OffsetDateTime;

use crate::ports::{
    Account, AppendError, Appended, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent,
    StoreError, StreamWrite,
};

/// How often a decision is made again after losing a race on its stream. Each round has a
/// winner, so N concurrent writers need at most N rounds.
const ROUNDS: usize = 32;

/// A state and the stream version it was read at (0: no stream).
pub struct Loaded<S> {
    pub state: S,
    pub version: u64,
}

/// A user's state, the version of its stream it was read at, and the account (`None`, with
/// `UserState::None`: the name or id is no account's).
pub struct LoadedUser {
    pub state: UserState,
    pub version: u64,
    pub account: Option<Account>,
}

impl LoadedUser {
    /// The account's stream and the subject of its events, for appending what was decided on
    /// it (a decision other than registering succeeds only on an account, so this is there).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when there is no account after all.
    pub fn target(&self) -> Result<(StreamId, String), StoreError> {
        match &self.account {
            Some(account) => Ok((account.stream.clone(), subject_of(account.user_id))),
            None => Err(StoreError::Corrupt(
                "a decision on a user that has no account".into(),
            )),
        }
    }

    /// The write of `events`, decided on this state at `now`, to the account's stream, expecting
    /// the version it was read at (so a concurrent writer makes it a conflict, and the use case
    /// decides again).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when there is no account after all.
    pub fn write(
        &self,
        events: Vec<Event>,
        metadata: &Metadata,
        now: OffsetDateTime,
    ) -> Result<StreamWrite, StoreError> {
        let (stream, subject) = self.target()?;
        Ok(StreamWrite::new(
            stream,
            ExpectedVersion::after(self.version),
            to_append(events, &subject, metadata, now),
        ))
    }
}

/// Which account a use case acts on: by name (the command line names users) or by id (the
/// admin API does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRef<'a> {
    Name(&'a Username),
    Id(UserId),
}

impl std::fmt::Display for UserRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(username) => username.fmt(f),
            Self::Id(user_id) => user_id.fmt(f),
        }
    }
}

/// Reads the account `whom` names.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn load_user_ref(
    store: &dyn EventStore,
    whom: UserRef<'_>,
) -> Result<LoadedUser, StoreError> {
    match whom {
        UserRef::Name(username) => load_user(store, username).await,
        UserRef::Id(user_id) => load_user_by_id(store, user_id).await,
    }
}

/// Reads the account whose name is `username` (under the identity rule: its canonical form).
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn load_user(
    store: &dyn EventStore,
    username: &Username,
) -> Result<LoadedUser, StoreError> {
    let account = store.find_account(username.canonical()).await?;
    load_account(store, account).await
}

/// Reads the account with id `user_id`.
///
/// # Errors
/// [`StoreError`] when the store fails.
pub async fn load_user_by_id(
    store: &dyn EventStore,
    user_id: UserId,
) -> Result<LoadedUser, StoreError> {
    // The stream of an account registered since streams are keyed by id is named by the id:
    // one read, no lookup (a refresh does this on every call). Only an account of an older
    // release, whose stream is named after its name, needs the index.
    let stream = StreamId::user(user_id);
    let events = store.read_stream(stream.clone()).await?;
    if let Some(first) = events.first() {
        let account = Account {
            user_id,
            stream,
            registered_at: first.position,
            legacy_subject: None,
        };
        return Ok(fold_user(account, &events));
    }
    let account = store.account(user_id).await?;
    load_account(store, account).await
}

async fn load_account(
    store: &dyn EventStore,
    account: Option<Account>,
) -> Result<LoadedUser, StoreError> {
    let Some(account) = account else {
        return Ok(LoadedUser {
            state: UserState::None,
            version: 0,
            account: None,
        });
    };
    let events = store.read_stream(account.stream.clone()).await?;
    Ok(fold_user(account, &events))
}

/// The state `events` (the whole stream of `account`) fold to.
fn fold_user(account: Account, events: &[RecordedEvent]) -> LoadedUser {
    let version = events.last().map_or(0, |e| e.stream_version);
    let state = events.iter().fold(UserState::None, |state, recorded| {
        user::apply(state, &recorded.event, recorded.stamp())
    });
    LoadedUser {
        state,
        version,
        account: Some(account),
    }
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

/// Whom an event concerns, as its `subject` holds it: an account's events (and its sessions')
/// name the user's id, never the name, which may be erased and registered again.
pub fn subject_of(user_id: UserId) -> String {
    user_id.to_string()
}

/// Wraps decided events with whom they concern ([`subject_of`], or for a password check the
/// canonical name typed), where the request came from, and when.
pub fn to_append(
    events: Vec<Event>,
    subject: &str,
    metadata: &Metadata,
    now: OffsetDateTime,
) -> Vec<NewEvent> {
    events
        .into_iter()
        .map(|event| NewEvent {
            event,
            subject: Some(subject.to_owned()),
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
        // Only an append that claims a name can meet a claimed one; those handle it themselves.
        Err(AppendError::NameTaken) => Err(StoreError::Unavailable(
            "an append that claims no name met a claimed one".into(),
        )),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{alice, alice_id, alice_registered, InMemoryEventStore};

    #[tokio::test]
    async fn an_account_is_loaded_by_id_from_its_id_stream_or_through_the_index() {
        for (stream, legacy) in [
            (StreamId::user(alice_id()), None),
            // An account an older release registered, in a stream named after its name.
            (StreamId::legacy_user(&alice()), Some("alice".to_owned())),
        ] {
            let store = InMemoryEventStore::new();
            store.given(stream.clone(), [alice_registered()]);
            let by_id = load_user_by_id(&store, alice_id()).await.unwrap();
            let by_name = load_user(&store, &alice()).await.unwrap();
            for loaded in [&by_id, &by_name] {
                assert!(matches!(loaded.state, UserState::Registered(_)));
                assert_eq!(loaded.version, 1);
                assert_eq!(
                    loaded.target().unwrap(),
                    (stream.clone(), alice_id().to_string())
                );
            }
            assert_eq!(by_name.account.as_ref().unwrap().legacy_subject, legacy);
            assert_eq!(by_id.account.as_ref().unwrap().registered_at, 1);
        }
        let nobody = load_user_by_id(&InMemoryEventStore::new(), alice_id())
            .await
            .unwrap();
        assert!(matches!(nobody.state, UserState::None));
        assert!(nobody.target().is_err());
    }
}
