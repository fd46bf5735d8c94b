//! Granting and revoking roles (from the CLI). Tokens carry roles, so a change shows in the
//! user's tokens from their next login or refresh.

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand, UserError};
use authlog_domain::{Role, StreamId, Username};

use crate::ports::{AppendError, Clock, EventStore, ExpectedVersion, Metadata, StoreError};
use crate::streams::{load_user, to_append};

/// How often a role change re-reads and retries after losing a race on the user stream. Each
/// round has a winner, so N concurrent changes need at most N rounds; role changes commute, so
/// retrying is always right, and the reads are cheap.
const ATTEMPTS: usize = 32;

/// What a grant or revoke did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Changed,
    /// The user already had (or already lacked) the role: nothing was recorded.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("no such user")]
    UnknownUser,
    #[error("user kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct ChangeRoles {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
}

impl ChangeRoles {
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// # Errors
    /// [`RoleError::UnknownUser`] when there is no such user; a store failure.
    pub async fn grant(
        &self,
        username: &Username,
        role: Role,
        metadata: &Metadata,
    ) -> Result<RoleChange, RoleError> {
        self.change(username, || UserCommand::GrantRole(role.clone()), metadata)
            .await
    }

    /// # Errors
    /// [`RoleError::UnknownUser`] when there is no such user; a store failure.
    pub async fn revoke(
        &self,
        username: &Username,
        role: Role,
        metadata: &Metadata,
    ) -> Result<RoleChange, RoleError> {
        self.change(username, || UserCommand::RevokeRole(role.clone()), metadata)
            .await
    }

    async fn change(
        &self,
        username: &Username,
        command: impl Fn() -> UserCommand,
        metadata: &Metadata,
    ) -> Result<RoleChange, RoleError> {
        for _ in 0..ATTEMPTS {
            let loaded = load_user(self.store.as_ref(), username).await?;
            let events = user::decide(&loaded.state, command()).map_err(|e| match e {
                UserError::UnknownUser | UserError::UsernameTaken => RoleError::UnknownUser,
            })?;
            if events.is_empty() {
                return Ok(RoleChange::Unchanged);
            }
            let events = to_append(events, username, metadata, self.clock.now());
            let expected = ExpectedVersion::after(loaded.version);
            match self
                .store
                .append(StreamId::user(username), expected, events)
                .await
            {
                Ok(_) => return Ok(RoleChange::Changed),
                Err(AppendError::Conflict { .. }) => continue,
                Err(AppendError::Store(e)) => return Err(e.into()),
            }
        }
        Err(RoleError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Appended, MockEventStore};
    use crate::testing::{clock, recorded};
    use authlog_domain::event::{Registered, RoleGranted};
    use authlog_domain::{Event, PasswordHash, UserId};
    use uuid::Uuid;

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    fn registered() -> Event {
        Event::Registered(Registered {
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            username: alice(),
            password_hash: PasswordHash::from_phc("h".into()),
        })
    }

    fn store_with(history: Vec<Event>) -> MockEventStore {
        let mut store = MockEventStore::new();
        store
            .expect_read_stream()
            .returning(move |s| Ok(recorded(&s, &history)));
        store
    }

    #[tokio::test]
    async fn granting_appends_role_granted_at_the_read_version() {
        let mut store = store_with(vec![registered()]);
        store
            .expect_append()
            .withf(|_, expected, events| {
                *expected == ExpectedVersion::Exactly(1)
                    && matches!(&events[0].event, Event::RoleGranted(_))
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 2,
                    position: 2,
                })
            });
        let service = ChangeRoles::new(Arc::new(store), clock());

        let change = service
            .grant(&alice(), Role::admin(), &Metadata::default())
            .await;

        assert_eq!(change, Ok(RoleChange::Changed));
    }

    #[tokio::test]
    async fn granting_a_held_role_records_nothing() {
        let granted = Event::RoleGranted(RoleGranted {
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            role: Role::admin(),
        });
        let mut store = store_with(vec![registered(), granted]);
        store.expect_append().never();
        let service = ChangeRoles::new(Arc::new(store), clock());

        let change = service
            .grant(&alice(), Role::admin(), &Metadata::default())
            .await;

        assert_eq!(change, Ok(RoleChange::Unchanged));
    }

    #[tokio::test]
    async fn a_concurrent_grant_is_retried_not_lost() {
        let mut store = store_with(vec![registered()]);
        let mut calls = 0;
        store
            .expect_append()
            .times(2)
            .returning(move |stream, expected, _| {
                calls += 1;
                if calls == 1 {
                    Err(AppendError::Conflict {
                        stream,
                        expected,
                        actual: 2,
                    })
                } else {
                    Ok(Appended {
                        stream_version: 3,
                        position: 3,
                    })
                }
            });
        let service = ChangeRoles::new(Arc::new(store), clock());

        let change = service
            .grant(&alice(), Role::parse("ops").unwrap(), &Metadata::default())
            .await;

        assert_eq!(change, Ok(RoleChange::Changed));
    }

    #[tokio::test]
    async fn an_unknown_user_is_reported() {
        let mut store = store_with(vec![]);
        store.expect_append().never();
        let service = ChangeRoles::new(Arc::new(store), clock());

        let change = service
            .revoke(&alice(), Role::admin(), &Metadata::default())
            .await;

        assert_eq!(change, Err(RoleError::UnknownUser));
    }
}
