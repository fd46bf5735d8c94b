//! Changing one's password: needs a fresh token and the current password, and ends every other
//! session of the user.

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand, UserState};
use authlog_domain::{Password, RevocationReason, StreamId};

use crate::ports::{
    AppendError, Claims, Clock, EventStore, ExpectedVersion, HashError, Metadata, PasswordHasher,
    StoreError,
};
use crate::sessions::{Sessions, SessionsError};
use crate::streams::{load_user, to_append};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordChangeError {
    /// The access token did not come straight from a password login.
    #[error("Fresh token required")]
    NotFresh,
    #[error("Current password is incorrect")]
    WrongPassword,
    #[error("no such user")]
    UnknownUser,
    /// The user changed concurrently (another password change, a role grant): nothing was
    /// written; the client may retry.
    #[error("account changed concurrently; try again")]
    Contended,
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sessions(#[from] SessionsError),
}

pub struct ChangePassword {
    store: Arc<dyn EventStore>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    sessions: Arc<Sessions>,
}

impl ChangePassword {
    pub fn new(
        store: Arc<dyn EventStore>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        sessions: Arc<Sessions>,
    ) -> Self {
        Self {
            store,
            hasher,
            clock,
            sessions,
        }
    }

    /// Replaces the password of the token's user and revokes their other sessions (reason
    /// `password_changed`); the caller's own session goes on. Answers how many were revoked.
    ///
    /// # Errors
    /// [`PasswordChangeError::NotFresh`] for a token from a refresh;
    /// [`PasswordChangeError::WrongPassword`] when `current` does not match; a concurrent
    /// change, hasher or store failure.
    pub async fn execute(
        &self,
        caller: &Claims,
        current: Password,
        new: Password,
        metadata: &Metadata,
    ) -> Result<usize, PasswordChangeError> {
        if !caller.fresh {
            return Err(PasswordChangeError::NotFresh);
        }
        let loaded = load_user(self.store.as_ref(), &caller.username).await?;
        let UserState::Registered(user) = &loaded.state else {
            return Err(PasswordChangeError::UnknownUser);
        };
        if user.id != caller.user_id {
            return Err(PasswordChangeError::UnknownUser);
        }
        if !self
            .hasher
            .verify(current, Some(user.password_hash.clone()))
            .await?
        {
            return Err(PasswordChangeError::WrongPassword);
        }
        let password_hash = self.hasher.hash(new).await?;
        let events = user::decide(&loaded.state, UserCommand::ChangePassword { password_hash })
            .map_err(|_| PasswordChangeError::UnknownUser)?;
        let events = to_append(events, &caller.username, metadata, self.clock.now());
        match self
            .store
            .append(
                StreamId::user(&caller.username),
                ExpectedVersion::after(loaded.version),
                events,
            )
            .await
        {
            Ok(_) => {}
            // Re-deciding would check `current` against a hash that may have just changed.
            Err(AppendError::Conflict { .. }) => return Err(PasswordChangeError::Contended),
            Err(AppendError::Store(e)) => return Err(e.into()),
        }
        let revoked = self
            .sessions
            .revoke_all(
                &caller.username,
                RevocationReason::PasswordChanged,
                Some(caller.session_id),
                metadata,
            )
            .await?;
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        Appended, MockEventStore, MockPasswordHasher, MockRevocationView, TokenKind,
    };
    use crate::revoke::RevokeSession;
    use crate::testing::{clock, recorded, NOW};
    use authlog_domain::event::Registered;
    use authlog_domain::{Event, PasswordHash, SessionId, TokenId, UserId, Username};
    use uuid::Uuid;

    fn caller(fresh: bool) -> Claims {
        Claims {
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            username: Username::parse("alice").unwrap(),
            roles: vec![],
            session_id: SessionId::from_uuid(Uuid::from_u128(2)),
            token_id: TokenId::from_uuid(Uuid::from_u128(3)),
            kind: TokenKind::Access,
            fresh,
            issued_at: NOW,
            expires_at: NOW,
            csrf: None,
        }
    }

    fn password(raw: &str) -> Password {
        Password::parse(raw.into()).unwrap()
    }

    fn store() -> MockEventStore {
        let mut store = MockEventStore::new();
        store.expect_read_stream().returning(|s| {
            Ok(recorded(
                &s,
                &[Event::Registered(Registered {
                    user_id: UserId::from_uuid(Uuid::from_u128(1)),
                    username: Username::parse("alice").unwrap(),
                    password_hash: PasswordHash::from_phc("old".into()),
                })],
            ))
        });
        store.expect_read_subject().returning(|_| Ok(vec![]));
        store
    }

    fn service(store: MockEventStore, hasher: MockPasswordHasher) -> ChangePassword {
        let store: Arc<dyn EventStore> = Arc::new(store);
        let revoke = Arc::new(RevokeSession::new(
            store.clone(),
            Arc::new(MockRevocationView::new()),
            clock(),
        ));
        let sessions = Arc::new(Sessions::new(store.clone(), revoke, clock()));
        ChangePassword::new(store, Arc::new(hasher), clock(), sessions)
    }

    #[tokio::test]
    async fn a_token_from_a_refresh_is_not_fresh_enough() {
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().never();
        let result = service(MockEventStore::new(), hasher)
            .execute(
                &caller(false),
                password("current pw"),
                password("new password"),
                &Metadata::default(),
            )
            .await;
        assert_eq!(result, Err(PasswordChangeError::NotFresh));
    }

    #[tokio::test]
    async fn a_wrong_current_password_changes_nothing() {
        let mut store = store();
        store.expect_append().never();
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_verify()
            .withf(|_, hash| hash.as_ref().map(PasswordHash::as_phc) == Some("old"))
            .return_once(|_, _| Ok(false));
        let result = service(store, hasher)
            .execute(
                &caller(true),
                password("wrong pw!"),
                password("new password"),
                &Metadata::default(),
            )
            .await;
        assert_eq!(result, Err(PasswordChangeError::WrongPassword));
    }

    #[tokio::test]
    async fn the_right_current_password_records_the_new_hash() {
        let mut store = store();
        store
            .expect_append()
            .withf(|_, expected, events| {
                *expected == ExpectedVersion::Exactly(1)
                    && matches!(&events[0].event, Event::PasswordChanged(e) if e.password_hash.as_phc() == "new")
            })
            .return_once(|_, _, _| Ok(Appended { stream_version: 2, position: 2 }));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().return_once(|_, _| Ok(true));
        hasher
            .expect_hash()
            .return_once(|_| Ok(PasswordHash::from_phc("new".into())));
        let result = service(store, hasher)
            .execute(
                &caller(true),
                password("current pw"),
                password("new password"),
                &Metadata::default(),
            )
            .await;
        assert_eq!(result, Ok(0));
    }

    #[tokio::test]
    async fn a_concurrent_change_is_reported_not_overwritten() {
        let mut store = store();
        store.expect_append().return_once(|stream, expected, _| {
            Err(AppendError::Conflict {
                stream,
                expected,
                actual: 2,
            })
        });
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().return_once(|_, _| Ok(true));
        hasher
            .expect_hash()
            .return_once(|_| Ok(PasswordHash::from_phc("new".into())));
        let result = service(store, hasher)
            .execute(
                &caller(true),
                password("current pw"),
                password("new password"),
                &Metadata::default(),
            )
            .await;
        assert_eq!(result, Err(PasswordChangeError::Contended));
    }
}
