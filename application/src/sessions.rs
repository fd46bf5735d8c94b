//! A user's sessions: listing the live ones, ending one, ending all.

use std::collections::BTreeMap;
use std::sync::Arc;

use authlog_domain::session::{self, Session, SessionState};
use authlog_domain::{Event, RevocationReason, SessionId, UserId, Username};
use time::OffsetDateTime;

use crate::ports::{Clock, EventStore, Metadata, StoreError};
use crate::revoke::{RevokeError, RevokeSession};
use crate::streams::load_session;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionsError {
    /// No such session, or not the caller's: the two look the same from outside.
    #[error("Session not found")]
    NotFound,
    #[error(transparent)]
    Revoke(#[from] RevokeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Sessions {
    store: Arc<dyn EventStore>,
    revoke: Arc<RevokeSession>,
    clock: Arc<dyn Clock>,
}

impl Sessions {
    pub fn new(
        store: Arc<dyn EventStore>,
        revoke: Arc<RevokeSession>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            revoke,
            clock,
        }
    }

    /// The user's sessions that are neither revoked nor expired, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn active(&self, username: &Username) -> Result<Vec<Session>, StoreError> {
        active_sessions(self.store.as_ref(), username, self.clock.now()).await
    }

    /// Ends session `id` if it belongs to `owner`; anyone else's, or an unknown id, is
    /// [`SessionsError::NotFound`] and changes nothing.
    ///
    /// # Errors
    /// [`SessionsError::NotFound`]; a revocation or store failure.
    pub async fn revoke_own(
        &self,
        owner: UserId,
        id: SessionId,
        metadata: &Metadata,
    ) -> Result<(), SessionsError> {
        let loaded = load_session(self.store.as_ref(), id).await?;
        match loaded.state.session() {
            Some(session) if session.user_id == owner => {}
            _ => return Err(SessionsError::NotFound),
        }
        self.revoke
            .execute(id, RevocationReason::SessionRevoked, metadata)
            .await?;
        Ok(())
    }

    /// Ends every live session of `username` except `keep`, each with `reason`; answers how
    /// many it ended.
    ///
    /// # Errors
    /// A revocation or store failure; sessions ended before it stay ended.
    pub async fn revoke_all(
        &self,
        username: &Username,
        reason: RevocationReason,
        keep: Option<SessionId>,
        metadata: &Metadata,
    ) -> Result<usize, SessionsError> {
        let mut revoked = 0;
        for session in self.active(username).await? {
            if Some(session.id) == keep {
                continue;
            }
            self.revoke.execute(session.id, reason, metadata).await?;
            revoked += 1;
        }
        Ok(revoked)
    }
}

/// Folds every session event about `username` into per-session states and keeps the live ones.
async fn active_sessions(
    store: &dyn EventStore,
    username: &Username,
    now: OffsetDateTime,
) -> Result<Vec<Session>, StoreError> {
    let events = store.read_subject(username.canonical().to_owned()).await?;
    let mut states: BTreeMap<SessionId, SessionState> = BTreeMap::new();
    for recorded in &events {
        let id = match &recorded.event {
            Event::LoggedIn(e) => e.session_id,
            Event::Refreshed(e) => e.session_id,
            Event::Revoked(e) => e.session_id,
            _ => continue,
        };
        let state = states.remove(&id).unwrap_or_default();
        states.insert(
            id,
            session::apply(state, &recorded.event, recorded.recorded_at),
        );
    }
    let mut live: Vec<Session> = states
        .into_values()
        .filter_map(|state| match state {
            SessionState::Active(session) if session.expires_at > now => Some(session),
            _ => None,
        })
        .collect();
    live.sort_by_key(|s| (s.created_at, s.id));
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Appended, MockEventStore, MockRevocationView};
    use crate::testing::{clock, recorded, NOW};
    use authlog_domain::event::{LoggedIn, Revoked};
    use authlog_domain::{StreamId, TokenId};
    use uuid::Uuid;

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }
    fn sid(n: u128) -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(n))
    }
    fn uid(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(1000 + n))
    }

    fn login(session: u128, user: u128, expires_at: OffsetDateTime) -> Event {
        Event::LoggedIn(LoggedIn {
            session_id: sid(session),
            user_id: uid(user),
            username: alice(),
            refresh_token_id: TokenId::from_uuid(Uuid::from_u128(500 + session)),
            expires_at,
        })
    }

    fn revoked(session: u128) -> Event {
        Event::Revoked(Revoked {
            session_id: sid(session),
            user_id: uid(1),
            reason: RevocationReason::Logout,
        })
    }

    fn history() -> Vec<Event> {
        let later = NOW + time::Duration::days(1);
        vec![
            login(1, 1, later),
            login(2, 1, later),
            revoked(2),
            login(3, 1, NOW - time::Duration::seconds(1)),
            login(4, 1, later),
        ]
    }

    fn store() -> MockEventStore {
        let mut store = MockEventStore::new();
        store
            .expect_read_subject()
            .withf(|s| s == "alice")
            .returning(|_| Ok(recorded(&StreamId::from_stored("x".into()), &history())));
        store.expect_read_stream_edges().returning(|stream, _| {
            let all = history();
            let wanted: Vec<Event> = all
                .into_iter()
                .filter(|e| match e {
                    Event::LoggedIn(l) => StreamId::session(l.session_id) == stream,
                    Event::Revoked(r) => StreamId::session(r.session_id) == stream,
                    _ => false,
                })
                .collect();
            Ok(recorded(&stream, &wanted))
        });
        store
    }

    fn service(store: MockEventStore, records: usize) -> Sessions {
        let store: Arc<dyn EventStore> = Arc::new(store);
        let mut view = MockRevocationView::new();
        view.expect_record().times(records).return_const(());
        let revoke = Arc::new(RevokeSession::new(store.clone(), Arc::new(view), clock()));
        Sessions::new(store, revoke, clock())
    }

    #[tokio::test]
    async fn only_sessions_neither_revoked_nor_expired_are_active() {
        let active = service(store(), 0).active(&alice()).await.unwrap();
        let ids: Vec<SessionId> = active.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![sid(1), sid(4)]);
    }

    #[tokio::test]
    async fn revoke_all_ends_every_live_session_but_the_one_kept() {
        let mut store = store();
        store
            .expect_append()
            .times(1)
            .withf(|stream, _, _| *stream == StreamId::session(sid(4)))
            .returning(|_, _, _| {
                Ok(Appended {
                    stream_version: 2,
                    position: 9,
                })
            });
        let revoked = service(store, 1)
            .revoke_all(
                &alice(),
                RevocationReason::PasswordChanged,
                Some(sid(1)),
                &Metadata::default(),
            )
            .await;
        assert_eq!(revoked, Ok(1));
    }

    #[tokio::test]
    async fn revoking_someone_elses_session_is_not_found_and_writes_nothing() {
        let mut store = store();
        store.expect_append().never();
        let result = service(store, 0)
            .revoke_own(uid(2), sid(1), &Metadata::default())
            .await;
        assert_eq!(result, Err(SessionsError::NotFound));
    }

    #[tokio::test]
    async fn revoking_an_unknown_session_is_not_found() {
        let result = service(store(), 0)
            .revoke_own(uid(1), sid(99), &Metadata::default())
            .await;
        assert_eq!(result, Err(SessionsError::NotFound));
    }

    #[tokio::test]
    async fn revoking_ones_own_session_records_session_revoked() {
        let mut store = store();
        store
            .expect_append()
            .withf(|_, _, events| {
                matches!(
                    &events[0].event,
                    Event::Revoked(Revoked {
                        reason: RevocationReason::SessionRevoked,
                        ..
                    })
                )
            })
            .returning(|_, _, _| {
                Ok(Appended {
                    stream_version: 2,
                    position: 9,
                })
            });
        let result = service(store, 1)
            .revoke_own(uid(1), sid(1), &Metadata::default())
            .await;
        assert_eq!(result, Ok(()));
    }
}
