//! Changing one's password: needs a fresh token and the current password, and ends every other
//! session of the user.

use std::sync::Arc;

use authlog_domain::event::LoginFailure;
use authlog_domain::user::{self, UserCommand, UserState};
use authlog_domain::Password;

use crate::admission::Busy;
use crate::checks::{CheckError, Reserved, ThrottledChecks};
use crate::ports::{Claims, Clock, EventStore, HashError, Metadata, PasswordHasher, StoreError};
use crate::sessions::Sessions;
use crate::streams::{load_user_by_id, settled, until_settled, LoadedUser};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordChangeError {
    /// The access token did not come straight from a password login.
    #[error("Fresh token required")]
    NotFresh,
    #[error("Current password is incorrect")]
    WrongPassword,
    /// Too many recent wrong passwords for this user (at login or here).
    #[error("Too many failed login attempts; try again later")]
    Throttled { retry_after: time::Duration },
    #[error("no such user")]
    UnknownUser,
    /// The user kept changing concurrently, round after round: nothing was written; the
    /// client may retry.
    #[error("account changed concurrently; try again")]
    Contended,
    /// The hashing queue is full; try again after `retry_after`.
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CheckError> for PasswordChangeError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Throttled { retry_after } => Self::Throttled { retry_after },
            CheckError::Busy(e) => Self::Busy(e),
            CheckError::Store(e) => Self::Store(e),
        }
    }
}

pub struct ChangePassword {
    store: Arc<dyn EventStore>,
    checks: Arc<ThrottledChecks>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    sessions: Arc<Sessions>,
}

impl ChangePassword {
    pub fn new(
        store: Arc<dyn EventStore>,
        checks: Arc<ThrottledChecks>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        sessions: Arc<Sessions>,
    ) -> Self {
        Self {
            store,
            checks,
            hasher,
            clock,
            sessions,
        }
    }

    /// Replaces the password of the token's user and revokes their other sessions (reason
    /// `password_changed`, one fact about the user); the caller's own session goes on. Answers
    /// how many were revoked. The current password is checked under the login throttle: a
    /// wrong one is recorded as a failed login and counts toward the same limit.
    ///
    /// # Errors
    /// [`PasswordChangeError::NotFresh`] for a token from a refresh;
    /// [`PasswordChangeError::WrongPassword`] when `current` does not match;
    /// [`PasswordChangeError::Throttled`] after too many wrong passwords;
    /// [`PasswordChangeError::Contended`] only after losing every round of
    /// [`until_settled`] (a change that loses one race is decided again, `current` checked
    /// again if the winner changed the password); a hasher or store failure.
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
        let admitted = self.checks.admit(metadata)?;
        let whom = ThrottledChecks::of_user(caller.user_id);
        let reserved = self.checks.reserve(admitted, whom, metadata).await?;
        let checked = match self.user(caller).await?.state {
            UserState::Registered(user) => user.password_hash,
            UserState::None | UserState::Erased(_) => return Err(PasswordChangeError::UnknownUser),
        };
        if !self
            .hasher
            .verify(current.clone(), Some(checked.clone()))
            .await?
        {
            return self.refuse(&reserved, metadata).await;
        }
        let password_hash = self.hasher.hash(new).await?;
        let (reserved, current, checked, password_hash) =
            (&reserved, &current, &checked, &password_hash);
        let appended = until_settled(PasswordChangeError::Contended, move || async move {
            // Read again each round: the user may have changed since `current` was checked. A
            // role grant or a revocation changes nothing here; a new password hash (a change
            // that won the race) means `current` must be checked against it, and is most
            // likely no longer right.
            let loaded = self.user(caller).await?;
            let user = loaded
                .state
                .may_hold_session()
                .map_err(|_| PasswordChangeError::UnknownUser)?;
            if user.password_hash != *checked
                && !self
                    .hasher
                    .verify(current.clone(), Some(user.password_hash.clone()))
                    .await?
            {
                return self.refuse(reserved, metadata).await;
            }
            let command = UserCommand::ChangePassword {
                password_hash: password_hash.clone(),
                keep: Some(caller.session_id),
            };
            let events = user::decide(&loaded.state, command)
                .map_err(|_| PasswordChangeError::UnknownUser)?;
            let now = self.clock.now();
            let mut writes = vec![loaded.write(events, metadata, now)?];
            writes.extend(
                self.checks
                    .succeeded(reserved, caller.session_id, metadata, now),
            );
            Ok(settled(self.store.append(writes).await)?)
        })
        .await?;
        Ok(self.sessions.honour(appended).await?)
    }

    /// The caller's account, as the log has it now.
    async fn user(&self, caller: &Claims) -> Result<LoadedUser, PasswordChangeError> {
        let loaded = load_user_by_id(self.store.as_ref(), caller.user_id).await?;
        match &loaded.state {
            UserState::Registered(user) if user.id == caller.user_id => Ok(loaded),
            _ => Err(PasswordChangeError::UnknownUser),
        }
    }

    /// Concludes the check as failed: `current` was not the password.
    async fn refuse<T>(
        &self,
        reserved: &Reserved,
        metadata: &Metadata,
    ) -> Result<T, PasswordChangeError> {
        self.checks
            .failed(reserved, LoginFailure::WrongPassword, metadata)
            .await?;
        Err(PasswordChangeError::WrongPassword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockPasswordHasher, RevocationView, TokenKind};
    use crate::revocation_view::RevocationSet;
    use crate::revoke::RevokeSession;
    use crate::testing::{
        admission, alice, alice_id, alice_registered, clock, hasher, ids, names, uuid,
        InMemoryEventStore, NOW,
    };
    use crate::Throttle;
    use authlog_domain::event::{
        LoggedIn, LoginAttempted, LoginFailed, LoginSucceeded, PasswordChanged, SessionsRevoked,
    };
    use authlog_domain::StreamId;
    use authlog_domain::{
        AttemptId, Event, PasswordHash, RevocationReason, SessionId, TokenId, UserId,
    };
    use time::Duration;

    fn sid(n: u128) -> SessionId {
        SessionId::from_uuid(uuid(n))
    }

    fn caller(fresh: bool) -> Claims {
        Claims {
            user_id: alice_id(),
            username: alice(),
            roles: vec![],
            session_id: sid(11),
            token_id: TokenId::from_uuid(uuid(3)),
            kind: TokenKind::Access,
            fresh,
            issued_at: NOW,
            expires_at: NOW + Duration::minutes(15),
            csrf: None,
        }
    }

    /// Alice, logged in twice (sessions 11, the caller's, and 12).
    fn given_alice() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        for n in [11, 12] {
            store.given(
                StreamId::session(sid(n)),
                [Event::LoggedIn(LoggedIn {
                    session_id: sid(n),
                    user_id: alice_id(),
                    refresh_token_id: TokenId::from_uuid(uuid(900 + n)),
                    expires_at: NOW + Duration::days(30),
                })],
            );
        }
        store
    }

    fn service(
        store: &Arc<InMemoryEventStore>,
        hasher: Arc<dyn PasswordHasher>,
        view: &Arc<RevocationSet>,
    ) -> ChangePassword {
        let revoke = Arc::new(RevokeSession::new(store.clone(), view.clone(), clock()));
        let sessions = Arc::new(Sessions::new(
            store.clone(),
            store.clone(),
            revoke,
            view.clone(),
            clock(),
        ));
        let checks = Arc::new(ThrottledChecks::new(
            store.clone(),
            clock(),
            ids(),
            Throttle::default(),
            admission(),
            names(),
        ));
        ChangePassword::new(store.clone(), checks, hasher, clock(), sessions)
    }

    fn passwords() -> (Password, Password) {
        (
            Password::parse("correct horse".into()).unwrap(),
            Password::parse("a new passphrase".into()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_password_changes_and_every_other_session_ends_in_one_fact() {
        let store = given_alice();
        let view = Arc::new(RevocationSet::new());
        let before = store.position();
        let (current, new) = passwords();

        let revoked = service(&store, hasher(true), &view)
            .execute(&caller(true), current, new, &Metadata::default())
            .await
            .unwrap();

        let attempt = AttemptId::from_uuid(uuid(1));
        assert_eq!(
            store.events_after(before),
            vec![
                Event::LoginAttempted(LoginAttempted {
                    attempt_id: attempt
                }),
                Event::PasswordChanged(PasswordChanged {
                    user_id: alice_id(),
                    password_hash: PasswordHash::from_phc("$hash$a new passphrase".into()).into(),
                }),
                Event::SessionsRevoked(SessionsRevoked {
                    user_id: alice_id(),
                    reason: RevocationReason::PasswordChanged,
                    except: Some(sid(11)),
                }),
                Event::LoginSucceeded(LoginSucceeded {
                    attempt_id: attempt,
                    session_id: sid(11),
                }),
            ]
        );
        assert_eq!(revoked, 1);
        assert!(view.is_revoked(sid(12)), "before answering");
        assert!(!view.is_revoked(sid(11)), "the caller's own goes on");
    }

    #[tokio::test]
    async fn a_wrong_current_password_is_a_failed_check_that_counts_toward_the_throttle() {
        let store = given_alice();
        let view = Arc::new(RevocationSet::new());
        let before = store.position();
        let (current, new) = passwords();

        let result = service(&store, hasher(false), &view)
            .execute(&caller(true), current, new, &Metadata::default())
            .await;

        assert_eq!(result, Err(PasswordChangeError::WrongPassword));
        let attempt = AttemptId::from_uuid(uuid(1));
        assert_eq!(
            store.events_after(before),
            vec![
                Event::LoginAttempted(LoginAttempted {
                    attempt_id: attempt
                }),
                Event::LoginFailed(LoginFailed {
                    reason: LoginFailure::WrongPassword,
                    attempt_id: Some(attempt),
                }),
            ]
        );
    }

    #[tokio::test]
    async fn after_five_wrong_passwords_the_sixth_is_throttled_without_hashing() {
        let store = given_alice();
        let view = Arc::new(RevocationSet::new());
        let wrong = service(&store, hasher(false), &view);
        for _ in 0..5 {
            let (current, new) = passwords();
            let result = wrong
                .execute(&caller(true), current, new, &Metadata::default())
                .await;
            assert_eq!(result, Err(PasswordChangeError::WrongPassword));
        }
        let mut never = MockPasswordHasher::new();
        never.expect_verify().never();
        let (current, new) = passwords();
        let result = service(&store, Arc::new(never), &view)
            .execute(&caller(true), current, new, &Metadata::default())
            .await;
        assert!(
            matches!(result, Err(PasswordChangeError::Throttled { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_token_from_a_refresh_is_refused_before_anything_is_checked() {
        let store = given_alice();
        let before = store.position();
        let mut never = MockPasswordHasher::new();
        never.expect_verify().never();
        let (current, new) = passwords();
        let result = service(&store, Arc::new(never), &Arc::new(RevocationSet::new()))
            .execute(&caller(false), current, new, &Metadata::default())
            .await;
        assert_eq!(result, Err(PasswordChangeError::NotFresh));
        assert_eq!(store.events_after(before), vec![]);
    }

    #[tokio::test]
    async fn a_token_of_another_user_by_that_name_is_refused() {
        let store = given_alice();
        let mut stranger = caller(true);
        stranger.user_id = UserId::from_uuid(uuid(77));
        let (current, new) = passwords();
        let result = service(&store, hasher(true), &Arc::new(RevocationSet::new()))
            .execute(&stranger, current, new, &Metadata::default())
            .await;
        assert_eq!(result, Err(PasswordChangeError::UnknownUser));
    }
}
