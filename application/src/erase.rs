//! Erasing a user (GDPR Art. 17): every session ends, and the user's personal data in the log
//! (username, password hashes, client addresses, user agents) can no longer be read by anyone.
//!
//! The log is append-only and hash-chained, so nothing in it is changed: the store seals each
//! user's personal data under a key of their own ([`crate::ports::PersonalData`]), and erasure
//! appends `SessionsRevoked` and `UserErased` in the same transaction that destroys that key
//! and frees the name ([`EventStore::append_erasing`]). `authlog user erase` calls this, and so
//! will the admin API's `DELETE /admin/users/{user_id}`.

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand};
use authlog_domain::{UserId, Username};

use crate::ports::{Clock, EventStore, ExpectedVersion, Metadata, StoreError, StreamWrite};
use crate::streams::{load_user, load_user_by_id, settled, to_append, until_settled, LoadedUser};

/// Why a user was not erased.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EraseError {
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
    clock: Arc<dyn Clock>,
}

/// Whom to erase.
#[derive(Debug, Clone, Copy)]
enum Whom<'a> {
    Named(&'a Username),
    Id(UserId),
}

impl EraseUser {
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Erases the account named `username`.
    ///
    /// # Errors
    /// [`EraseError::UnknownUser`] when no account has the name; a store failure.
    pub async fn by_name(
        &self,
        username: &Username,
        metadata: &Metadata,
    ) -> Result<Erased, EraseError> {
        self.erase(Whom::Named(username), metadata).await
    }

    /// Erases the account `user_id` (the admin API names users by id).
    ///
    /// # Errors
    /// [`EraseError::UnknownUser`] when there is no such account, or it was erased already; a
    /// store failure.
    pub async fn by_id(&self, user_id: UserId, metadata: &Metadata) -> Result<Erased, EraseError> {
        self.erase(Whom::Id(user_id), metadata).await
    }

    async fn erase(&self, whom: Whom<'_>, metadata: &Metadata) -> Result<Erased, EraseError> {
        until_settled(EraseError::Contended, move || async move {
            let loaded: LoadedUser = match whom {
                Whom::Named(username) => load_user(self.store.as_ref(), username).await?,
                Whom::Id(user_id) => load_user_by_id(self.store.as_ref(), user_id).await?,
            };
            let events = user::decide(&loaded.state, UserCommand::Erase)
                .map_err(|_| EraseError::UnknownUser)?;
            let Some(account) = loaded.account.as_ref().filter(|_| !events.is_empty()) else {
                return Err(EraseError::UnknownUser);
            };
            let (stream, subject) = loaded.target()?;
            let write = StreamWrite::new(
                stream,
                ExpectedVersion::after(loaded.version),
                to_append(events, &subject, metadata, self.clock.now()),
            );
            let appended = self
                .store
                .append_erasing(account.user_id, vec![write])
                .await;
            Ok(settled(appended)?.map(|appended| Erased {
                user_id: account.user_id,
                position: appended.position,
            }))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockEventStore, NewEvent};
    use crate::testing::{alice, alice_id, alice_registered, clock, InMemoryEventStore};
    use authlog_domain::event::{SessionsRevoked, UserErased};
    use authlog_domain::user::UserState;
    use authlog_domain::{Event, Personal, RevocationReason, StreamId};

    fn given_alice() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        store
    }

    #[tokio::test]
    async fn erasing_a_user_ends_their_sessions_and_records_the_erasure() {
        let store = given_alice();
        let before = store.position();
        let erased = EraseUser::new(store.clone(), clock())
            .by_name(&alice(), &Metadata::default())
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
        let erase = EraseUser::new(store.clone(), clock());
        assert_eq!(
            erase.by_name(&alice(), &Metadata::default()).await,
            Err(EraseError::UnknownUser)
        );
        assert_eq!(
            erase.by_id(alice_id(), &Metadata::default()).await,
            Err(EraseError::UnknownUser)
        );
    }

    #[tokio::test]
    async fn erasure_goes_through_the_store_call_that_destroys_the_key() {
        // `append_erasing` (not a plain append) is what destroys the key: the erasure must
        // reach it, for the right user, with the user's stream at the version read.
        let mut store = MockEventStore::new();
        store
            .expect_find_account()
            .returning(|_| Ok(Some(crate::testing::alice_account())));
        store
            .expect_read_stream()
            .returning(|stream| Ok(crate::testing::recorded(&stream, &[alice_registered()])));
        store
            .expect_append_erasing()
            .withf(|user, writes| {
                *user == alice_id()
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
        let erased = EraseUser::new(Arc::new(store), clock())
            .by_name(&alice(), &Metadata::default())
            .await
            .unwrap();
        assert_eq!(erased.position, 3);
    }

    #[tokio::test]
    async fn an_unknown_user_is_not_erased() {
        let store = Arc::new(InMemoryEventStore::new());
        assert_eq!(
            EraseUser::new(store.clone(), clock())
                .by_name(&alice(), &Metadata::default())
                .await,
            Err(EraseError::UnknownUser)
        );
        assert!(store.recorded().is_empty());
    }
}
