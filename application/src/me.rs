//! The authenticated user's own account.

use std::sync::Arc;

use authlog_domain::user::{User, UserState};

use crate::ports::{Claims, EventStore, StoreError};
use crate::streams::load_user_by_id;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeError {
    /// A validly signed token for a user the log does not know: only a foreign key could mint it.
    #[error("no such user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Me {
    store: Arc<dyn EventStore>,
}

impl Me {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self { store }
    }

    /// The user the token speaks for, as the log has them now (current roles included).
    ///
    /// # Errors
    /// [`MeError::UnknownUser`] when the token's user is not in the log; a store failure.
    pub async fn execute(&self, claims: &Claims) -> Result<User, MeError> {
        match load_user_by_id(self.store.as_ref(), claims.user_id)
            .await?
            .state
        {
            UserState::Registered(user) if user.id == claims.user_id => Ok(user),
            _ => Err(MeError::UnknownUser),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Account, MockEventStore, TokenKind};
    use crate::testing::{recorded, NOW};
    use authlog_domain::event::Registered;
    use authlog_domain::{Event, PasswordHash, SessionId, StreamId, TokenId, UserId, Username};
    use uuid::Uuid;

    fn claims_for(user_id: u128) -> Claims {
        Claims {
            user_id: UserId::from_uuid(Uuid::from_u128(user_id)),
            username: Username::parse("alice").unwrap(),
            roles: vec![],
            session_id: SessionId::from_uuid(Uuid::from_u128(2)),
            token_id: TokenId::from_uuid(Uuid::from_u128(3)),
            kind: TokenKind::Access,
            fresh: false,
            issued_at: NOW,
            expires_at: NOW,
            csrf: None,
        }
    }

    /// Alice, id 1, is the one account.
    fn store() -> MockEventStore {
        let mut store = MockEventStore::new();
        store.expect_account().returning(|user_id| {
            Ok(
                (user_id == UserId::from_uuid(Uuid::from_u128(1))).then(|| Account {
                    user_id,
                    stream: StreamId::user(user_id),
                    registered_at: 1,
                    legacy_subject: None,
                }),
            )
        });
        store.expect_read_stream().returning(|s| {
            Ok(recorded(
                &s,
                &[Event::Registered(Registered {
                    user_id: UserId::from_uuid(Uuid::from_u128(1)),
                    username: Username::parse("alice").unwrap().into(),
                    password_hash: PasswordHash::from_phc("h".into()).into(),
                })],
            ))
        });
        store
    }

    #[tokio::test]
    async fn answers_the_user_from_the_log() {
        let user = Me::new(Arc::new(store()))
            .execute(&claims_for(1))
            .await
            .unwrap();
        assert_eq!(user.username.as_str(), "alice");
        assert_eq!(user.created_at, NOW);
    }

    #[tokio::test]
    async fn a_token_whose_user_id_does_not_match_the_log_is_refused() {
        let result = Me::new(Arc::new(store())).execute(&claims_for(99)).await;
        assert_eq!(result.unwrap_err(), MeError::UnknownUser);
    }
}
