//! Disabling and enabling an account, for an admin (the admin API and `authlog user
//! disable|enable`). A disabled account holds no session: disabling records `UserDisabled` and a
//! `SessionsRevoked` (reason `admin`) in one append, and the use case owns the whole effect:
//! this instance refuses the user's tokens before it answers, and the directory shows the new
//! status. Login ([`crate::login`]) and refresh ask the domain's one rule,
//! [`authlog_domain::user::UserState::may_hold_session`].

use std::sync::Arc;

use authlog_domain::user::{self, UserCommand};
use authlog_domain::{Role, UserId};

use crate::access::{Caller, Forbidden};
use crate::ports::{Clock, EventStore, Metadata, ReadModels, StoreError};
use crate::sessions::Sessions;
use crate::streams::{load_user_ref, settled, until_settled, UserRef};

/// Why an account's status was not changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// No account has that name or id (or it was erased).
    #[error("no such user")]
    UnknownUser,
    #[error("user kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a disable or enable did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub user_id: UserId,
    /// Whether anything was recorded (asking for the status the account has records nothing).
    pub changed: bool,
    /// How many live sessions a disable ended.
    pub sessions_revoked: usize,
}

pub struct AccountStatus {
    store: Arc<dyn EventStore>,
    read_models: Arc<dyn ReadModels>,
    sessions: Arc<Sessions>,
    clock: Arc<dyn Clock>,
}

impl AccountStatus {
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

    /// Disables the account `whom` names, for an admin `caller`, with the admin's `reason`.
    /// Answered once this instance refuses the user's tokens (other instances follow within a
    /// second, as for any revocation).
    ///
    /// # Errors
    /// [`StatusError::Forbidden`] for a caller who is not an admin; [`StatusError::UnknownUser`]
    /// when no account is `whom`; a store failure.
    pub async fn disable(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
        reason: Option<String>,
        metadata: &Metadata,
    ) -> Result<StatusChange, StatusError> {
        self.change(
            caller,
            whom,
            || UserCommand::Disable {
                reason: reason.clone(),
            },
            metadata,
        )
        .await
    }

    /// Enables the account `whom` names again, for an admin `caller`.
    ///
    /// # Errors
    /// As [`AccountStatus::disable`].
    pub async fn enable(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
        metadata: &Metadata,
    ) -> Result<StatusChange, StatusError> {
        self.change(caller, whom, || UserCommand::Enable, metadata)
            .await
    }

    async fn change(
        &self,
        caller: &Caller,
        whom: UserRef<'_>,
        command: impl Fn() -> UserCommand,
        metadata: &Metadata,
    ) -> Result<StatusChange, StatusError> {
        caller.require(&Role::admin())?;
        let command = &command;
        let changed = until_settled(StatusError::Contended, move || async move {
            let loaded = load_user_ref(self.store.as_ref(), whom).await?;
            let events =
                user::decide(&loaded.state, command()).map_err(|_| StatusError::UnknownUser)?;
            let Some(account) = loaded.account.as_ref() else {
                return Err(StatusError::UnknownUser);
            };
            if events.is_empty() {
                return Ok(Some((account.user_id, None)));
            }
            let write = loaded.write(events, metadata, self.clock.now())?;
            Ok(settled(self.store.append(vec![write]).await)?.map(|a| (account.user_id, Some(a))))
        })
        .await;
        let (user_id, appended) = changed?;
        let Some(appended) = appended else {
            return Ok(StatusChange {
                user_id,
                changed: false,
                sessions_revoked: 0,
            });
        };
        // Every session's tokens refused here before the answer (a no-op for an enable, whose
        // append revokes nothing), and the directory showing the status.
        let sessions_revoked = self.sessions.honour(appended).await?;
        self.read_models.wait_for(appended.position).await?;
        Ok(StatusChange {
            user_id,
            changed: true,
            sessions_revoked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::RevocationView;
    use crate::revocation_view::RevocationSet;
    use crate::revoke::RevokeSession;
    use crate::testing::{
        alice, alice_id, alice_registered, claims_of, clock, uuid, InMemoryEventStore,
    };
    use authlog_domain::event::{LoggedIn, SessionsRevoked, UserDisabled, UserEnabled};
    use authlog_domain::user::{NoSession, UserState};
    use authlog_domain::{Event, Personal, RevocationReason, SessionId, StreamId, TokenId};

    fn given_alice_logged_in() -> (Arc<InMemoryEventStore>, SessionId) {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        let session = SessionId::from_uuid(uuid(20));
        store.given(
            StreamId::session(session),
            [Event::LoggedIn(LoggedIn {
                session_id: session,
                user_id: alice_id(),
                refresh_token_id: TokenId::from_uuid(uuid(21)),
                expires_at: crate::testing::NOW + time::Duration::days(1),
            })],
        );
        (store, session)
    }

    fn use_case(store: &Arc<InMemoryEventStore>, view: &Arc<RevocationSet>) -> AccountStatus {
        let revoke = Arc::new(RevokeSession::new(store.clone(), view.clone(), clock()));
        let sessions = Arc::new(Sessions::new(
            store.clone(),
            store.clone(),
            revoke,
            view.clone(),
            clock(),
        ));
        AccountStatus::new(store.clone(), store.clone(), sessions, clock())
    }

    #[tokio::test]
    async fn given_alice_logged_in_when_an_admin_disables_her_then_her_session_is_refused_here() {
        let (store, session) = given_alice_logged_in();
        let view = Arc::new(RevocationSet::new());
        let status = use_case(&store, &view);
        let admin = Caller::Operator;
        let name = alice();
        let done = status
            .disable(
                &admin,
                UserRef::Name(&name),
                Some("left".into()),
                &Metadata::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            done,
            StatusChange {
                user_id: alice_id(),
                changed: true,
                sessions_revoked: 1
            }
        );
        assert!(view.is_revoked(session));
        let recorded = store.events_after(2);
        assert_eq!(
            recorded,
            vec![
                Event::UserDisabled(UserDisabled {
                    user_id: alice_id(),
                    reason: Some(Personal::Known("left".into())),
                }),
                Event::SessionsRevoked(SessionsRevoked {
                    user_id: alice_id(),
                    reason: RevocationReason::Admin,
                    except: None,
                }),
            ]
        );
        let state = crate::streams::load_user_by_id(store.as_ref(), alice_id())
            .await
            .unwrap()
            .state;
        assert!(matches!(state, UserState::Registered(_)));
        assert_eq!(state.may_hold_session(), Err(NoSession::Disabled));

        // Again: nothing more recorded. Then enabled.
        let again = status
            .disable(&admin, UserRef::Id(alice_id()), None, &Metadata::default())
            .await
            .unwrap();
        assert!(!again.changed);
        let enabled = status
            .enable(&admin, UserRef::Id(alice_id()), &Metadata::default())
            .await
            .unwrap();
        assert!(enabled.changed);
        assert_eq!(
            store.events_after(4),
            vec![Event::UserEnabled(UserEnabled {
                user_id: alice_id()
            })]
        );
    }

    #[tokio::test]
    async fn a_caller_who_is_not_an_admin_changes_nothing() {
        let (store, session) = given_alice_logged_in();
        let view = Arc::new(RevocationSet::new());
        let status = use_case(&store, &view);
        let user = Caller::User(Arc::new(claims_of(&[])));
        let refused = status
            .disable(&user, UserRef::Id(alice_id()), None, &Metadata::default())
            .await
            .unwrap_err();
        assert_eq!(refused.to_string(), "Admin access required");
        assert!(!view.is_revoked(session));
        assert_eq!(store.events_after(2), vec![]);
    }

    #[tokio::test]
    async fn an_unknown_user_is_said_so() {
        let store = Arc::new(InMemoryEventStore::new());
        let view = Arc::new(RevocationSet::new());
        let refused = use_case(&store, &view)
            .enable(
                &Caller::Operator,
                UserRef::Id(alice_id()),
                &Metadata::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(refused, StatusError::UnknownUser);
    }
}
