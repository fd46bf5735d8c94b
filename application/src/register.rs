//! Registering an account.

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand, UserError, UserState};
use authlog_domain::{Password, StreamId, UserId, Username};

use crate::ports::{
    AppendError, Clock, EventStore, ExpectedVersion, HashError, IdGenerator, Metadata,
    PasswordHasher, StoreError,
};
use crate::streams::{load_user, to_append};

/// Why a registration did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("username already exists")]
    UsernameTaken,
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct RegisterUser {
    store: Arc<dyn EventStore>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl RegisterUser {
    pub fn new(
        store: Arc<dyn EventStore>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self {
            store,
            hasher,
            clock,
            ids,
        }
    }

    /// Creates the account `username` with `password`.
    ///
    /// # Errors
    /// [`RegisterError::UsernameTaken`] when the name (ignoring case) exists, including when a
    /// concurrent registration of it wins the race; otherwise a hasher or store failure.
    pub async fn execute(
        &self,
        username: Username,
        password: Password,
        metadata: &Metadata,
    ) -> Result<UserId, RegisterError> {
        let loaded = load_user(self.store.as_ref(), &username).await?;
        // Refusing a taken name before hashing saves an Argon2 run. It is not what makes names
        // unique: two registrations can both pass this line, and the append below decides.
        if !matches!(loaded.state, UserState::None) {
            return Err(RegisterError::UsernameTaken);
        }
        let password_hash = self.hasher.hash(password).await?;
        let user_id = UserId::from_uuid(self.ids.new_id());
        let command = UserCommand::Register {
            user_id,
            username: username.clone(),
            password_hash,
        };
        let events = user::decide(&loaded.state, command).map_err(|e| match e {
            UserError::UsernameTaken | UserError::UnknownUser => RegisterError::UsernameTaken,
        })?;
        let events = to_append(events, &username, metadata, self.clock.now());
        match self
            .store
            .append(StreamId::user(&username), ExpectedVersion::NoStream, events)
            .await
        {
            Ok(_) => Ok(user_id),
            Err(AppendError::Conflict { .. }) => Err(RegisterError::UsernameTaken),
            Err(AppendError::Store(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Appended, MockEventStore, MockPasswordHasher};
    use crate::testing::{clock, ids, recorded};
    use authlog_domain::event::Registered;
    use authlog_domain::{Event, PasswordHash};
    use uuid::Uuid;

    fn alice() -> Username {
        Username::parse("Alice").unwrap()
    }

    fn password() -> Password {
        Password::parse("correct horse".into()).unwrap()
    }

    fn hasher_returning(result: Result<PasswordHash, HashError>) -> MockPasswordHasher {
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_hash().return_once(move |_| result);
        hasher
    }

    fn service(store: MockEventStore, hasher: MockPasswordHasher) -> RegisterUser {
        RegisterUser::new(Arc::new(store), Arc::new(hasher), clock(), ids())
    }

    fn empty_stream(store: &mut MockEventStore) {
        store.expect_read_stream().returning(|_| Ok(vec![]));
    }

    #[tokio::test]
    async fn registers_a_new_name_with_the_hashed_password_on_a_fresh_stream() {
        let mut store = MockEventStore::new();
        empty_stream(&mut store);
        store
            .expect_append()
            .withf(|stream, expected, events| {
                let Event::Registered(e) = &events[0].event else {
                    return false;
                };
                stream.as_str() == "user:alice"
                    && *expected == ExpectedVersion::NoStream
                    && e.password_hash.as_phc() == "$argon2id$hash"
                    && e.username.as_str() == "Alice"
                    && events[0].subject.as_deref() == Some("alice")
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 1,
                    position: 1,
                })
            });
        let hasher = hasher_returning(Ok(PasswordHash::from_phc("$argon2id$hash".into())));

        let id = service(store, hasher)
            .execute(alice(), password(), &Metadata::default())
            .await;

        assert_eq!(id, Ok(UserId::from_uuid(Uuid::from_u128(1))));
    }

    #[tokio::test]
    async fn refuses_a_taken_name_without_hashing() {
        let mut store = MockEventStore::new();
        store.expect_read_stream().returning(|stream| {
            Ok(recorded(
                &stream,
                &[Event::Registered(Registered {
                    user_id: UserId::from_uuid(Uuid::from_u128(9)),
                    username: Username::parse("alice").unwrap(),
                    password_hash: PasswordHash::from_phc("h".into()),
                })],
            ))
        });
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_hash().never();

        let result = service(store, hasher)
            .execute(alice(), password(), &Metadata::default())
            .await;

        assert_eq!(result, Err(RegisterError::UsernameTaken));
    }

    #[tokio::test]
    async fn losing_the_append_race_is_username_taken() {
        let mut store = MockEventStore::new();
        empty_stream(&mut store);
        store.expect_append().return_once(|stream, expected, _| {
            Err(AppendError::Conflict {
                stream,
                expected,
                actual: 1,
            })
        });
        let hasher = hasher_returning(Ok(PasswordHash::from_phc("h".into())));

        let result = service(store, hasher)
            .execute(alice(), password(), &Metadata::default())
            .await;

        assert_eq!(result, Err(RegisterError::UsernameTaken));
    }

    #[tokio::test]
    async fn a_hasher_failure_writes_nothing() {
        let mut store = MockEventStore::new();
        empty_stream(&mut store);
        store.expect_append().never();
        let hasher = hasher_returning(Err(HashError("out of memory".into())));

        let result = service(store, hasher)
            .execute(alice(), password(), &Metadata::default())
            .await;

        assert_eq!(
            result,
            Err(RegisterError::Hashing(HashError("out of memory".into())))
        );
    }

    #[tokio::test]
    async fn a_store_failure_is_reported_as_such() {
        let mut store = MockEventStore::new();
        store
            .expect_read_stream()
            .returning(|_| Err(StoreError::Unavailable("disk gone".into())));

        let result = service(store, MockPasswordHasher::new())
            .execute(alice(), password(), &Metadata::default())
            .await;

        assert_eq!(
            result,
            Err(RegisterError::Store(StoreError::Unavailable(
                "disk gone".into()
            )))
        );
    }
}
