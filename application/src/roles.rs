//! Granting and revoking roles (from the CLI). Tokens carry roles, so a change shows in the
//! user's tokens from their next login or refresh.

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand, UserError};
use authlog_domain::{Role, Username};

use crate::ports::{Clock, EventStore, ExpectedVersion, Metadata, StoreError, StreamWrite};
use crate::streams::{load_user, settled, to_append, until_settled};

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

    /// Role changes commute, so a change that lost a race on the user stream is simply decided
    /// again on what the winner recorded.
    async fn change(
        &self,
        username: &Username,
        command: impl Fn() -> UserCommand,
        metadata: &Metadata,
    ) -> Result<RoleChange, RoleError> {
        let command = &command;
        until_settled(RoleError::Contended, move || async move {
            let loaded = load_user(self.store.as_ref(), username).await?;
            let events = user::decide(&loaded.state, command()).map_err(|e| match e {
                UserError::UnknownUser | UserError::UsernameTaken => RoleError::UnknownUser,
            })?;
            if events.is_empty() {
                return Ok(Some(RoleChange::Unchanged));
            }
            let (stream, subject) = loaded.target()?;
            let write = StreamWrite::new(
                stream,
                ExpectedVersion::after(loaded.version),
                to_append(events, &subject, metadata, self.clock.now()),
            );
            Ok(settled(self.store.append(vec![write]).await)?.map(|_| RoleChange::Changed))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{alice, alice_id, alice_registered, clock, InMemoryEventStore};
    use authlog_domain::event::{RoleGranted, RoleRevoked};
    use authlog_domain::Event;
    use authlog_domain::StreamId;
    use std::sync::Arc;

    fn given_alice() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        store
    }

    fn granted() -> Event {
        Event::RoleGranted(RoleGranted {
            user_id: alice_id(),
            role: Role::admin(),
        })
    }

    #[tokio::test]
    async fn granting_a_role_records_it() {
        let store = given_alice();
        let before = store.position();
        let change = ChangeRoles::new(store.clone(), clock())
            .grant(&alice(), Role::admin(), &Metadata::default())
            .await;
        assert_eq!(change, Ok(RoleChange::Changed));
        assert_eq!(store.events_after(before), vec![granted()]);
    }

    #[tokio::test]
    async fn granting_a_role_held_already_records_nothing() {
        let store = given_alice();
        store.given(StreamId::user(alice_id()), [granted()]);
        let before = store.position();
        let change = ChangeRoles::new(store.clone(), clock())
            .grant(&alice(), Role::admin(), &Metadata::default())
            .await;
        assert_eq!(change, Ok(RoleChange::Unchanged));
        assert_eq!(store.events_after(before), vec![]);
    }

    #[tokio::test]
    async fn revoking_a_held_role_records_it() {
        let store = given_alice();
        store.given(StreamId::user(alice_id()), [granted()]);
        let before = store.position();
        let change = ChangeRoles::new(store.clone(), clock())
            .revoke(&alice(), Role::admin(), &Metadata::default())
            .await;
        assert_eq!(change, Ok(RoleChange::Changed));
        assert_eq!(
            store.events_after(before),
            vec![Event::RoleRevoked(RoleRevoked {
                user_id: alice_id(),
                role: Role::admin(),
            })]
        );
    }

    #[tokio::test]
    async fn an_unknown_user_is_refused() {
        let store = Arc::new(InMemoryEventStore::new());
        let change = ChangeRoles::new(store, clock())
            .grant(&alice(), Role::admin(), &Metadata::default())
            .await;
        assert_eq!(change, Err(RoleError::UnknownUser));
    }

    #[tokio::test]
    async fn concurrent_grants_of_different_roles_all_land() {
        let store = given_alice();
        let roles = Arc::new(ChangeRoles::new(store.clone(), clock()));
        let grants = (0..16).map(|n| {
            let roles = roles.clone();
            tokio::spawn(async move {
                let role = Role::parse(&format!("role-{n}")).unwrap();
                roles.grant(&alice(), role, &Metadata::default()).await
            })
        });
        for grant in futures_join(grants).await {
            assert_eq!(grant, Ok(RoleChange::Changed));
        }
        assert_eq!(store.events_after(1).len(), 16);
    }

    async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}
