//! Erasing a user (GDPR Art. 17): every session ends, and the user's personal data in the log
//! (username, password hashes, client addresses, user agents) can no longer be read by anyone.
//!
//! The log is append-only and hash-chained, so nothing in it is changed: the store seals each
//! user's personal data under a key of their own ([`crate::ports::PersonalData`]), and erasure
//! appends `SessionsRevoked` and `UserErased` in the same transaction that destroys that key
//! and frees the name ([`Beside::EraseUser`]). The use case owns the whole effect: this
//! instance refuses the user's tokens before it answers, and every read model (the analysts'
//! table too) has applied the erasure. `authlog user erase` calls it, and so will the admin
//! API's `DELETE /admin/users/{user_id}`.

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand};
use authlog_domain::{Role, UserId};

use crate::access::{Caller, Forbidden};
use crate::ports::{Beside, Clock, EventStore, Metadata, ReadModels, StoreError};
use crate::sessions::Sessions;
use crate::streams::{load_user_ref, settled, until_settled, UserRef};

/// Why a user was not erased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// No account has that name or id (or it was erased already).
    #[error("no such user")]
    UnknownUser,
    #[error("user kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user erased: who, and the log position of their `UserErased`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub user_id: UserId,
    pub position: u64,
}

pub struct EraseUser {
    store: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModels>,
    sessions: Arc<Sessions>,
    clock: Arc<dyn Clock>,
}

impl EraseUser {
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: Arc<dyn ReadModels>,
        sessions: Arc<Sessions>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            read_models,
            sessions,
            clock,
        }
    }

    /// Erases the account `whom` names, for an admin `caller`. Answered once this instance
    /// refuses the user's tokens and every read model has applied the erasure (other
    /// instances follow within a second).
    ///
    /// # Errors
    /// [`EraseError::Forbidden`] for a caller who is not an admin; [`EraseError::UnknownUser`]
    /// when no account is `whom`, or it was erased already; a store failure (the erasure may
    /// then be recorded, and its read models not yet up to date: the text says which).
    pub async fn execute(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
        metadata: &Metadata,
    ) -> Result<Erased, EraseError> {
        caller.require(&Role::admin())?;
        let erased = until_settled(EraseError::Contended, move || async move {
            let loaded = load_user_ref(self.store.as_ref(), whom).await?;
            let events = user::decide(&loaded.state, UserCommand::Erase)
                .map_err(|_| EraseError::UnknownUser)?;
            let Some(account) = loaded.account.as_ref().filter(|_| !events.is_empty()) else {
                return Err(EraseError::UnknownUser);
            };
            let write = loaded.write(events, metadata, self.clock.now())?;
            let appended = self
                .store
                .append_with(vec![write], vec![Beside::EraseUser(account.user_id)])
                .await;
            Ok(settled(appended)?.map(|appended| (account.user_id, appended)))
        })
        .await;
        let (user_id, appended) = erased?;
        let recorded = |e: StoreError| {
            StoreError::Unavailable(format!(
                "the erasure of {user_id} is recorded, but not yet in effect here: {e}"
            ))
        };
        self.sessions.honour(appended).await.map_err(recorded)?;
        self.read_models
            .wait_for_all(appended.position)
            .await
            .map_err(recorded)?;
        Ok(Erased {
            user_id,
            position: appended.position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ExpectedVersion, MockEventStore, NewEvent, RevocationView};
    use crate::revocation_view::RevocationSet;
    use crate::revoke::RevokeSession;
    use crate::streams::load_user_by_id;
    use crate::testing::{
        alice, alice_id, alice_registered, claims_of, clock, uuid, InMemoryEventStore, NOW,
    };
    use authlog_domain::event::{LoggedIn, SessionsRevoked, UserErased};
    use authlog_domain::user::UserState;
    use authlog_domain::{Event, Personal, RevocationReason, SessionId, StreamId, TokenId};

    fn given_alice() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        store
    }

    /// The use case on `store`, its read models and revocation view `view` from `models`.
    fn service(
        store: Arc<dyn EventStore>,
        models: &Arc<InMemoryEventStore>,
        view: &Arc<RevocationSet>,
    ) -> EraseUser {
        let revoke = Arc::new(RevokeSession::new(models.clone(), view.clone(), clock()));
        let sessions = Arc::new(Sessions::new(
            models.clone(),
            models.clone(),
            revoke,
            view.clone(),
            clock(),
        ));
        EraseUser::new(store, models.clone(), sessions, clock())
    }

    fn erase_of(store: &Arc<InMemoryEventStore>) -> EraseUser {
        service(store.clone(), store, &Arc::new(RevocationSet::new()))
    }

    async fn erase(erase: &EraseUser, whom: UserRef<'_>) -> Result<Erased, EraseError> {
        erase
            .execute(&Caller::Operator, whom, &Metadata::default())
            .await
    }

    #[tokio::test]
    async fn erasing_a_user_ends_their_sessions_and_records_the_erasure() {
        let store = given_alice();
        let before = store.position();
        let erased = erase(&erase_of(&store), UserRef::Name(&alice()))
            .await
            .unwrap();
        assert_eq!(erased.user_id, alice_id());
        assert_eq!(
            store.events_after(before),
            [
                Event::SessionsRevoked(SessionsRevoked {
                    user_id: alice_id(),
                    reason: RevocationReason::Admin,
                    except: None,
                }),
                Event::UserErased(UserErased {
                    user_id: alice_id(),
                }),
            ]
        );
        // The name is free, the account reads as erased, and its registration has no name.
        assert_eq!(store.find_account(alice().canonical()).await.unwrap(), None);
        let loaded = load_user_by_id(store.as_ref(), alice_id()).await.unwrap();
        assert_eq!(loaded.state, UserState::Erased(alice_id()));
        let Event::Registered(registered) = &store.recorded()[0].event else {
            panic!("not a registration");
        };
        assert_eq!(registered.username, Personal::Erased);
        // Nobody is left to erase, by name or by id.
        let again = erase_of(&store);
        assert_eq!(
            erase(&again, UserRef::Name(&alice())).await,
            Err(EraseError::UnknownUser)
        );
        assert_eq!(
            erase(&again, UserRef::Id(alice_id())).await,
            Err(EraseError::UnknownUser)
        );
    }

    #[tokio::test]
    async fn erasure_goes_through_the_store_call_that_destroys_the_key() {
        // `Beside::EraseUser` (not a plain append) is what destroys the key: the erasure must
        // reach it, for the right user, with the user's stream at the version read.
        let mut store = MockEventStore::new();
        store
            .expect_find_account()
            .returning(|_| Ok(Some(crate::testing::alice_account())));
        store
            .expect_read_stream()
            .returning(|stream| Ok(crate::testing::recorded(&stream, &[alice_registered()])));
        store
            .expect_append_with()
            .withf(|writes, beside| {
                beside == &[Beside::EraseUser(alice_id())]
                    && writes.len() == 1
                    && writes[0].expected == ExpectedVersion::Exactly(1)
                    && matches!(
                        writes[0].events.as_slice(),
                        [
                            _,
                            NewEvent {
                                event: Event::UserErased(_),
                                ..
                            }
                        ]
                    )
            })
            .times(1)
            .returning(|_, _| {
                Ok(crate::ports::Appended {
                    first: 2,
                    position: 3,
                })
            });
        store.expect_append().never();
        let models = Arc::new(InMemoryEventStore::new());
        let view = Arc::new(RevocationSet::new());
        let erased = erase(
            &service(Arc::new(store), &models, &view),
            UserRef::Name(&alice()),
        )
        .await
        .unwrap();
        assert_eq!(erased.position, 3);
    }

    #[tokio::test]
    async fn an_unknown_user_is_not_erased() {
        let store = Arc::new(InMemoryEventStore::new());
        assert_eq!(
            erase(&erase_of(&store), UserRef::Name(&alice())).await,
            Err(EraseError::UnknownUser)
        );
        assert!(store.recorded().is_empty());
    }

    #[tokio::test]
    async fn only_an_admin_erases_and_the_erasure_is_in_effect_here_when_answered() {
        let store = given_alice();
        let session = SessionId::from_uuid(uuid(11));
        store.given(
            StreamId::session(session),
            [Event::LoggedIn(LoggedIn {
                session_id: session,
                user_id: alice_id(),
                refresh_token_id: TokenId::from_uuid(uuid(12)),
                expires_at: NOW + time::Duration::days(30),
            })],
        );
        let view = Arc::new(RevocationSet::new());
        let erase = service(store.clone(), &store, &view);
        let before = store.position();
        let user = Caller::User(Arc::new(claims_of(&[])));
        let refused = erase
            .execute(&user, UserRef::Id(alice_id()), &Metadata::default())
            .await;
        assert!(matches!(refused, Err(EraseError::Forbidden(_))));
        assert_eq!(store.events_after(before), vec![]);
        assert!(!view.is_revoked(session));

        let admin = Caller::User(Arc::new(claims_of(&[Role::admin()])));
        erase
            .execute(&admin, UserRef::Id(alice_id()), &Metadata::default())
            .await
            .unwrap();
        // This instance refuses the session's tokens before the erasure is answered.
        assert!(view.is_revoked(session));
    }
}
