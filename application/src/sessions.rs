//! A user's sessions: listing the live ones, ending one, ending all.

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand, UserError};
use authlog_domain::{RevocationReason, Role, SessionId, UserId};

use crate::access::{Caller, Forbidden};
use crate::ports::{
    Appended, Clock, EventStore, Metadata, ReadModels, RevocationView, SessionView, StoreError,
};
use crate::revoke::{RevokeError, RevokeSession};
use crate::streams::{load_session, load_user_ref, settled, until_settled, UserRef};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionsError {
    /// No such session, or not the caller's: the two look the same from outside.
    #[error("Session not found")]
    NotFound,
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("account kept changing; try again")]
    Contended,
    #[error(transparent)]
    Revoke(#[from] RevokeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Sessions {
    store: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModels>,
    revoke: Arc<RevokeSession>,
    revocations: Arc<dyn RevocationView>,
    clock: Arc<dyn Clock>,
}

impl Sessions {
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: Arc<dyn ReadModels>,
        revoke: Arc<RevokeSession>,
        revocations: Arc<dyn RevocationView>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            read_models,
            revoke,
            revocations,
            clock,
        }
    }

    /// The user's sessions that are neither revoked nor expired, oldest first, from the
    /// sessions projection: the cost follows the live sessions, not the user's history.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn active(&self, user: UserId) -> Result<Vec<SessionView>, StoreError> {
        self.read_models.live_sessions(user, self.clock.now()).await
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

    /// Ends every session of `whom` for an admin `caller` (a forced logout: reason `admin`);
    /// answers how many live sessions it ended, all refused here before the answer.
    ///
    /// # Errors
    /// [`SessionsError::Forbidden`] for a caller who is not an admin, otherwise as
    /// [`Sessions::revoke_all`].
    pub async fn end_all_for(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
        metadata: &Metadata,
    ) -> Result<usize, SessionsError> {
        caller.require(&Role::admin())?;
        self.revoke_all(whom, RevocationReason::Admin, None, metadata)
            .await
    }

    /// Ends every session of `whom` opened so far except `keep`, with `reason`, as one fact
    /// (`SessionsRevoked`); answers how many live sessions it ended. A session whose login
    /// commits after it is not ended: it was opened after.
    ///
    /// # Errors
    /// [`SessionsError::UnknownUser`]; a store failure.
    pub async fn revoke_all(
        &self,
        whom: UserRef<'_>,
        reason: RevocationReason,
        keep: Option<SessionId>,
        metadata: &Metadata,
    ) -> Result<usize, SessionsError> {
        let appended = until_settled(SessionsError::Contended, move || async move {
            let loaded = load_user_ref(self.store.as_ref(), whom).await?;
            let command = UserCommand::RevokeSessions {
                reason,
                except: keep,
            };
            let events = user::decide(&loaded.state, command).map_err(|e| match e {
                UserError::UnknownUser | UserError::UsernameTaken => SessionsError::UnknownUser,
            })?;
            let write = loaded.write(events, metadata, self.clock.now())?;
            Ok(settled(self.store.append(vec![write]).await)?)
        })
        .await?;
        metrics::counter!("authlog_revocations_total", "reason" => reason.as_str()).increment(1);
        Ok(self.honour(appended).await?)
    }

    /// Makes the wholesale revocation in `appended` take effect in this process before the
    /// caller is answered: waits for the projection to expand it into sessions, records them in
    /// the revocation view, and answers how many there were.
    ///
    /// # Errors
    /// [`StoreError`] when the projections do not catch up or the store fails.
    pub async fn honour(&self, appended: Appended) -> Result<usize, StoreError> {
        self.read_models.wait_for(appended.position).await?;
        let revoked = self
            .read_models
            .revocations_after(appended.first.saturating_sub(1))
            .await?;
        let mut count = 0;
        for session in revoked.iter().filter(|r| r.position <= appended.position) {
            self.revocations
                .record(session.session_id, session.revoked_at);
            count += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation_view::RevocationSet;
    use crate::testing::{alice, alice_id, alice_registered, clock, uuid, InMemoryEventStore, NOW};
    use authlog_domain::event::{LoggedIn, SessionsRevoked};
    use authlog_domain::StreamId;
    use authlog_domain::{Event, TokenId};
    use time::Duration;

    fn sid(n: u128) -> SessionId {
        SessionId::from_uuid(uuid(n))
    }

    fn login(session: u128, user: UserId, days: i64) -> Event {
        Event::LoggedIn(LoggedIn {
            session_id: sid(session),
            user_id: user,
            refresh_token_id: TokenId::from_uuid(uuid(900 + session)),
            expires_at: NOW + Duration::days(days),
        })
    }

    /// Alice with three sessions (11, 12, and 13, which has expired), Bob with one (21).
    fn given_sessions() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        for (n, days) in [(11, 30), (12, 30), (13, -1)] {
            store.given(StreamId::session(sid(n)), [login(n, alice_id(), days)]);
        }
        let bob = UserId::from_uuid(uuid(2));
        store.given(StreamId::session(sid(21)), [login(21, bob, 30)]);
        store
    }

    fn service(store: &Arc<InMemoryEventStore>, view: &Arc<RevocationSet>) -> Sessions {
        let revoke = Arc::new(RevokeSession::new(store.clone(), view.clone(), clock()));
        Sessions::new(store.clone(), store.clone(), revoke, view.clone(), clock())
    }

    #[tokio::test]
    async fn active_lists_the_users_live_sessions_oldest_first() {
        let store = given_sessions();
        let live = service(&store, &Arc::new(RevocationSet::new()))
            .active(alice_id())
            .await
            .unwrap();
        let ids: Vec<SessionId> = live.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![sid(11), sid(12)]);
    }

    #[tokio::test]
    async fn revoke_all_is_one_fact_about_the_user_and_ends_every_live_session_but_the_kept_one() {
        let store = given_sessions();
        let view = Arc::new(RevocationSet::new());
        let before = store.position();

        let revoked = service(&store, &view)
            .revoke_all(
                UserRef::Name(&alice()),
                RevocationReason::LogoutAll,
                Some(sid(12)),
                &Metadata::default(),
            )
            .await
            .unwrap();

        assert_eq!(
            store.events_after(before),
            vec![Event::SessionsRevoked(SessionsRevoked {
                user_id: alice_id(),
                reason: RevocationReason::LogoutAll,
                except: Some(sid(12)),
            })]
        );
        assert_eq!(revoked, 1, "11; 13 had expired and 12 is kept");
        assert!(view.is_revoked(sid(11)));
        assert!(!view.is_revoked(sid(12)));
        assert!(!view.is_revoked(sid(21)), "bob's");
    }

    #[tokio::test]
    async fn a_session_opened_after_revoke_all_lives() {
        let store = given_sessions();
        let sessions = service(&store, &Arc::new(RevocationSet::new()));
        sessions
            .revoke_all(
                UserRef::Name(&alice()),
                RevocationReason::LogoutAll,
                None,
                &Metadata::default(),
            )
            .await
            .unwrap();
        store.given(StreamId::session(sid(14)), [login(14, alice_id(), 30)]);
        let live: Vec<SessionId> = sessions
            .active(alice_id())
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(live, vec![sid(14)]);
    }

    #[tokio::test]
    async fn revoke_all_of_an_unknown_user_is_refused() {
        let store = Arc::new(InMemoryEventStore::new());
        let result = service(&store, &Arc::new(RevocationSet::new()))
            .revoke_all(
                UserRef::Name(&alice()),
                RevocationReason::Admin,
                None,
                &Metadata::default(),
            )
            .await;
        assert_eq!(result, Err(SessionsError::UnknownUser));
    }

    #[tokio::test]
    async fn revoke_own_refuses_another_users_session_and_records_nothing() {
        let store = given_sessions();
        let before = store.position();
        let result = service(&store, &Arc::new(RevocationSet::new()))
            .revoke_own(alice_id(), sid(21), &Metadata::default())
            .await;
        assert_eq!(result, Err(SessionsError::NotFound));
        assert_eq!(store.events_after(before), vec![]);
    }

    #[tokio::test]
    async fn revoke_own_ends_the_callers_session() {
        let store = given_sessions();
        let view = Arc::new(RevocationSet::new());
        service(&store, &view)
            .revoke_own(alice_id(), sid(11), &Metadata::default())
            .await
            .unwrap();
        assert!(view.is_revoked(sid(11)));
    }
}
