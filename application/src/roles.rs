//! Granting and revoking roles, for an admin (the command line and the admin API). Tokens carry
//! roles: a grant shows in the user's tokens from their next login or refresh; a revoke reaches
//! the tokens already issued, through the revocation view ([`RevocationView::record_role`]) of
//! this instance before the answer, and of every other within a moment (the `revoked-roles`
//! subscriber, [`crate::instance::RevokedRoles`]).

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand, UserError};
use authlog_domain::{Event, Role};

use crate::access::{Caller, Forbidden};
use crate::ports::{Clock, EventStore, Metadata, ReadModels, RevocationView, StoreError};
use crate::streams::{load_user_ref, settled, until_settled, UserRef};

/// What a grant or revoke did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Changed,
    /// The user already had (or already lacked) the role: nothing was recorded.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("no such user")]
    UnknownUser,
    #[error("user kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct ChangeRoles {
    store: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModels>,
    revocations: Arc<dyn RevocationView>,
    clock: Arc<dyn Clock>,
}

impl ChangeRoles {
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: Arc<dyn ReadModels>,
        revocations: Arc<dyn RevocationView>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            read_models,
            revocations,
            clock,
        }
    }

    /// Grants `role` to `whom`, for an admin `caller`.
    ///
    /// # Errors
    /// [`RoleError::Forbidden`] for a caller who is not an admin; [`RoleError::UnknownUser`]
    /// when there is no such user; a store failure.
    pub async fn grant(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
        role: Role,
        metadata: &Metadata,
    ) -> Result<RoleChange, RoleError> {
        self.change(
            caller,
            whom,
            || UserCommand::GrantRole(role.clone()),
            metadata,
        )
        .await
    }

    /// Revokes `role` from `whom`, for an admin `caller`. Answered once this instance's
    /// tokens of the user issued before no longer carry the role.
    ///
    /// # Errors
    /// As [`ChangeRoles::grant`].
    pub async fn revoke(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
        role: Role,
        metadata: &Metadata,
    ) -> Result<RoleChange, RoleError> {
        self.change(
            caller,
            whom,
            || UserCommand::RevokeRole(role.clone()),
            metadata,
        )
        .await
    }

    /// Role changes commute, so a change that lost a race on the user stream is simply decided
    /// again on what the winner recorded. Answered once the read models hold it (the
    /// directory lists the user's roles as changed, on this instance).
    async fn change(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
        command: impl Fn() -> UserCommand,
        metadata: &Metadata,
    ) -> Result<RoleChange, RoleError> {
        caller.require(&Role::admin())?;
        let command = &command;
        let changed = until_settled(RoleError::Contended, move || async move {
            let loaded = load_user_ref(self.store.as_ref(), whom).await?;
            let events = user::decide(&loaded.state, command()).map_err(|e| match e {
                UserError::UnknownUser | UserError::UsernameTaken => RoleError::UnknownUser,
            })?;
            if events.is_empty() {
                return Ok(Some(None));
            }
            let revoked: Vec<_> = events
                .iter()
                .filter_map(|event| match event {
                    Event::RoleRevoked(e) => Some((e.user_id, e.role.clone())),
                    _ => None,
                })
                .collect();
            let now = self.clock.now();
            let write = loaded.write(events, metadata, now)?;
            Ok(settled(self.store.append(vec![write]).await)?
                .map(|appended| Some((appended, revoked, now))))
        })
        .await?;
        let Some((appended, revoked, at)) = changed else {
            return Ok(RoleChange::Unchanged);
        };
        // The tokens issued before no longer carry the role here, before the answer; the time
        // is the append's (the log's own may be a moment later: later is the safe side there).
        for (user, role) in revoked {
            self.revocations.record_role(user, role, at);
        }
        self.read_models.wait_for(appended.position).await?;
        Ok(RoleChange::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation_view::RevocationSet;
    use crate::testing::{
        alice, alice_id, alice_registered, claims_of, clock, InMemoryEventStore, NOW,
    };
    use authlog_domain::event::{RoleGranted, RoleRevoked};
    use authlog_domain::Event;
    use authlog_domain::StreamId;
    use std::sync::Arc;

    fn view() -> Arc<RevocationSet> {
        Arc::new(RevocationSet::new())
    }

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
        let change = ChangeRoles::new(store.clone(), store.clone(), view(), clock())
            .grant(
                &Caller::Operator,
                UserRef::Name(&alice()),
                Role::admin(),
                &Metadata::default(),
            )
            .await;
        assert_eq!(change, Ok(RoleChange::Changed));
        assert_eq!(store.events_after(before), vec![granted()]);
    }

    #[tokio::test]
    async fn granting_a_role_held_already_records_nothing() {
        let store = given_alice();
        store.given(StreamId::user(alice_id()), [granted()]);
        let before = store.position();
        let change = ChangeRoles::new(store.clone(), store.clone(), view(), clock())
            .grant(
                &Caller::Operator,
                UserRef::Name(&alice()),
                Role::admin(),
                &Metadata::default(),
            )
            .await;
        assert_eq!(change, Ok(RoleChange::Unchanged));
        assert_eq!(store.events_after(before), vec![]);
    }

    #[tokio::test]
    async fn revoking_a_held_role_records_it_and_takes_it_from_the_tokens_issued_before() {
        let store = given_alice();
        store.given(StreamId::user(alice_id()), [granted()]);
        let before = store.position();
        let view = view();
        let mut token = claims_of(&[Role::admin()]);
        token.user_id = alice_id();
        token.issued_at = NOW - time::Duration::minutes(1);
        assert_eq!(view.roles_in_effect(&token), None);
        let change = ChangeRoles::new(store.clone(), store.clone(), view.clone(), clock())
            .revoke(
                &Caller::Operator,
                UserRef::Name(&alice()),
                Role::admin(),
                &Metadata::default(),
            )
            .await;
        assert_eq!(change, Ok(RoleChange::Changed));
        assert_eq!(
            store.events_after(before),
            vec![Event::RoleRevoked(RoleRevoked {
                user_id: alice_id(),
                role: Role::admin(),
            })]
        );
        assert_eq!(view.roles_in_effect(&token), Some(vec![]));
    }

    #[tokio::test]
    async fn an_unknown_user_is_refused() {
        let store = Arc::new(InMemoryEventStore::new());
        let change = ChangeRoles::new(store.clone(), store, view(), clock())
            .grant(
                &Caller::Operator,
                UserRef::Name(&alice()),
                Role::admin(),
                &Metadata::default(),
            )
            .await;
        assert_eq!(change, Err(RoleError::UnknownUser));
    }

    #[tokio::test]
    async fn concurrent_grants_of_different_roles_all_land() {
        let store = given_alice();
        let roles = Arc::new(ChangeRoles::new(
            store.clone(),
            store.clone(),
            view(),
            clock(),
        ));
        let grants = (0..16).map(|n| {
            let roles = roles.clone();
            tokio::spawn(async move {
                let role = Role::parse(&format!("role-{n}")).unwrap();
                let alice = alice();
                roles
                    .grant(
                        &Caller::Operator,
                        UserRef::Name(&alice),
                        role,
                        &Metadata::default(),
                    )
                    .await
            })
        });
        for grant in futures_join(grants).await {
            assert_eq!(grant, Ok(RoleChange::Changed));
        }
        assert_eq!(store.events_after(1).len(), 16);
    }

    #[tokio::test]
    async fn only_an_admin_changes_roles_and_a_user_is_found_by_id_too() {
        let store = given_alice();
        let before = store.position();
        let roles = ChangeRoles::new(store.clone(), store.clone(), view(), clock());
        let user = Caller::User(Arc::new(claims_of(&[])));
        let refused = roles
            .grant(
                &user,
                UserRef::Id(alice_id()),
                Role::admin(),
                &Metadata::default(),
            )
            .await;
        assert_eq!(
            refused,
            Err(RoleError::Forbidden(Forbidden {
                role: Role::admin()
            }))
        );
        assert_eq!(store.events_after(before), vec![]);
        let admin = Caller::User(Arc::new(claims_of(&[Role::admin()])));
        let granted_by_id = roles
            .grant(
                &admin,
                UserRef::Id(alice_id()),
                Role::admin(),
                &Metadata::default(),
            )
            .await;
        assert_eq!(granted_by_id, Ok(RoleChange::Changed));
        assert_eq!(store.events_after(before), vec![granted()]);
    }

    async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}
