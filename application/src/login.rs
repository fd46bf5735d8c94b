//! Logging in with a password: opens a session and issues its first token pair.

use std::sync::Arc;

use authlog_domain::event::{LoginFailure, LoginRefusal};
use authlog_domain::login::{self, Factor, Next};
use authlog_domain::session::{self, SessionCommand, SessionState};
use authlog_domain::user::{NoSession, User, UserState};
use authlog_domain::{Password, PasswordHash, SessionId, StreamId, TokenId, UserId, Username};
use time::OffsetDateTime;

use crate::admission::Busy;
use crate::checks::{CheckError, Reserved, ThrottledChecks};
use crate::ports::{
    Claims, Clock, EventStore, ExpectedVersion, HashError, IdGenerator, Metadata, PasswordHasher,
    StoreError, StreamWrite, TokenError, TokenKind, TokenService,
};
use crate::streams::{load_user, load_user_by_id, settled, to_append, until_settled, LoadedUser};
use crate::{TokenLifetimes, TokenPair};

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password: deliberately indistinguishable.
    #[error("Bad username or password")]
    BadCredentials,
    /// The right password of an account an admin disabled. Said only to whoever knows the
    /// password: a wrong one is [`LoginError::BadCredentials`], as for any account.
    #[error("Account disabled")]
    Disabled,
    /// Too many recent failures for this username; try again after `retry_after`.
    #[error("Too many failed login attempts; try again later")]
    Throttled { retry_after: time::Duration },
    /// The hashing queue is full; try again after `retry_after`.
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl From<CheckError> for LoginError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Throttled { retry_after } => Self::Throttled { retry_after },
            CheckError::Busy(e) => Self::Busy(e),
            CheckError::Store(e) => Self::Store(e),
        }
    }
}

pub struct LogIn {
    store: Arc<dyn EventStore>,
    checks: Arc<ThrottledChecks>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenService>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    lifetimes: TokenLifetimes,
}

impl LogIn {
    pub fn new(
        store: Arc<dyn EventStore>,
        checks: Arc<ThrottledChecks>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenService>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        lifetimes: TokenLifetimes,
    ) -> Self {
        Self {
            store,
            checks,
            hasher,
            tokens,
            clock,
            ids,
            lifetimes,
        }
    }

    /// Logs in with a password, as steps ([`authlog_domain::login`]): the password is proved
    /// ([`LogIn::prove_password`]), then, since an account asks for no other factor yet, a
    /// session is opened ([`LogIn::open_session`]) with a fresh access token and its first
    /// refresh token (with CSRF values when they go into cookies).
    ///
    /// # Errors
    /// [`LoginError::Throttled`] after too many recent failures for the username, whatever the
    /// password; [`LoginError::BadCredentials`] for an unknown user or a wrong password (same
    /// answer, same work); otherwise a hasher, store or signing failure.
    pub async fn execute(
        &self,
        username: Username,
        password: Password,
        cookies: bool,
        metadata: &Metadata,
    ) -> Result<TokenPair, LoginError> {
        let proved = self.prove_password(&username, password, metadata).await?;
        let pair = match self.open_session(&proved, cookies, metadata).await {
            Err(LoginError::BadCredentials) => {
                return self
                    .refuse(&proved.reserved, LoginFailure::WrongPassword, metadata)
                    .await;
            }
            Err(LoginError::Disabled) => {
                self.checks
                    .refused(&proved.reserved, LoginRefusal::AccountDisabled, metadata)
                    .await?;
                metrics::counter!("authlog_logins_total", "outcome" => "disabled").increment(1);
                return Err(LoginError::Disabled);
            }
            opened => opened?,
        };
        metrics::counter!("authlog_logins_total", "outcome" => "ok").increment(1);
        Ok(pair)
    }

    /// The password step: reserves a check against the throttle, then checks `password`
    /// against the account `username` names (an unknown name is checked against a dummy hash:
    /// same answer, same work). A mismatch concludes the check as failed.
    ///
    /// # Errors
    /// [`LoginError::Throttled`], [`LoginError::Busy`], [`LoginError::BadCredentials`]; a
    /// hasher or store failure.
    async fn prove_password(
        &self,
        username: &Username,
        password: Password,
        metadata: &Metadata,
    ) -> Result<PasswordProved, LoginError> {
        let admitted = self.checks.admit(metadata)?;
        let loaded = load_user(self.store.as_ref(), username).await?;
        let whom = self.checks.whom(username, loaded.account.as_ref()).await?;
        let reserved = self.checks.reserve(admitted, whom, metadata).await?;
        let checked = password_of(&loaded).cloned();
        let known = checked.is_some();
        let matches = self
            .hasher
            .verify(password.clone(), checked.clone())
            .await?;
        // A password that verified is an account's.
        match (matches, loaded.account.as_ref(), checked) {
            (true, Some(account), Some(hash)) => Ok(PasswordProved {
                user_id: account.user_id,
                hash,
                password,
                reserved,
            }),
            _ => {
                let reason = if known {
                    LoginFailure::WrongPassword
                } else {
                    LoginFailure::UnknownUser
                };
                self.refuse(&reserved, reason, metadata).await
            }
        }
    }

    /// The last step: opens a session for the user `proved` names, if they may hold one and
    /// every factor their account asks for is proved, and issues its first token pair.
    ///
    /// The session is opened only if the user's stream is still at the version read: a login
    /// racing a password change either opens its session before the change (which then
    /// revokes it) or checks the password typed again, against the hash the session will be
    /// opened under (rare: only a login racing a password change pays a second hash).
    ///
    /// # Errors
    /// [`LoginError::Disabled`] for a disabled account; [`LoginError::BadCredentials`] when the
    /// user may otherwise no longer hold a session, a factor is still to be proved, or the
    /// password no longer matches; a store, hasher or signing failure.
    async fn open_session(
        &self,
        proved: &PasswordProved,
        cookies: bool,
        metadata: &Metadata,
    ) -> Result<TokenPair, LoginError> {
        let factors = [Factor::Password];
        let opened = until_settled(LoginError::BadCredentials, move || async move {
            let loaded = load_user_by_id(self.store.as_ref(), proved.user_id).await?;
            let user = loaded.state.may_hold_session().map_err(|e| match e {
                NoSession::Disabled => LoginError::Disabled,
                NoSession::NoAccount | NoSession::Erased => LoginError::BadCredentials,
            })?;
            // A factor this request does not prove is not a complete login (fail closed).
            if login::next(&user.factors(), &factors) != Next::OpenSession {
                return Err(LoginError::BadCredentials);
            }
            if user.password_hash != proved.hash
                && !self
                    .hasher
                    .verify(proved.password.clone(), Some(user.password_hash.clone()))
                    .await?
            {
                return Err(LoginError::BadCredentials);
            }
            let (write, session_id, refresh_token_id, now) =
                self.session_write(&loaded, user, &proved.reserved, metadata)?;
            Ok(settled(self.store.append(write).await)?
                .map(|_| (user.clone(), session_id, refresh_token_id, now)))
        })
        .await;
        let (user, session_id, refresh_token_id, now) = opened?;
        let grant = Grant {
            user: &user,
            session_id,
            refresh_token_id,
            fresh: true,
            cookies,
            now,
        };
        Ok(issue_pair(self.tokens.as_ref(), self.lifetimes, &grant)?)
    }

    /// The atomic append that opens a session for `user`, as `loaded`: its `LoggedIn`, the
    /// conclusion of the password check, and the condition that the user is unchanged.
    fn session_write(
        &self,
        loaded: &LoadedUser,
        user: &User,
        reserved: &Reserved,
        metadata: &Metadata,
    ) -> Result<(Vec<StreamWrite>, SessionId, TokenId, OffsetDateTime), LoginError> {
        let now = self.clock.now();
        let session_id = SessionId::from_uuid(self.ids.new_id());
        let refresh_token_id = TokenId::from_uuid(self.ids.new_id());
        let command = SessionCommand::Start {
            session_id,
            user_id: user.id,
            refresh_token_id,
            expires_at: now + self.lifetimes.refresh.min(self.lifetimes.session_max_age),
        };
        let events = session::decide(&SessionState::None, command, now)
            .map_err(|e| StoreError::Unavailable(format!("new session refused: {e}")))?;
        let (user_stream, subject) = loaded.target()?;
        let mut write = vec![
            StreamWrite::new(
                StreamId::session(session_id),
                ExpectedVersion::NoStream,
                to_append(events, &subject, metadata, now),
            ),
            StreamWrite::unchanged(user_stream, ExpectedVersion::after(loaded.version)),
        ];
        write.extend(self.checks.succeeded(reserved, session_id, metadata, now));
        Ok((write, session_id, refresh_token_id, now))
    }

    /// Concludes `reserved` as failed, and answers the refusal (any step's, whatever it would
    /// have answered).
    async fn refuse<T>(
        &self,
        reserved: &Reserved,
        reason: LoginFailure,
        metadata: &Metadata,
    ) -> Result<T, LoginError> {
        self.checks.failed(reserved, reason, metadata).await?;
        metrics::counter!("authlog_logins_total", "outcome" => "failed").increment(1);
        Err(LoginError::BadCredentials)
    }
}

/// A password proved by the first step: whose, the hash it matched, the password itself (to
/// check again should the hash change before the session opens), and its reserved check,
/// concluded with the session.
struct PasswordProved {
    user_id: UserId,
    hash: PasswordHash,
    password: Password,
    reserved: Reserved,
}

/// The password hash a loaded user stream holds, if any.
fn password_of(loaded: &LoadedUser) -> Option<&PasswordHash> {
    match &loaded.state {
        UserState::Registered(user) => Some(&user.password_hash),
        UserState::None | UserState::Erased(_) => None,
    }
}

/// What a token pair is issued for.
pub(crate) struct Grant<'a> {
    pub user: &'a User,
    pub session_id: SessionId,
    /// The `jti` the session expects on its next refresh.
    pub refresh_token_id: TokenId,
    /// Whether the access token counts as fresh (straight from a password).
    pub fresh: bool,
    /// Whether the tokens go into cookies, and so carry CSRF double-submit values.
    pub cookies: bool,
    pub now: OffsetDateTime,
}

/// Signs an access token and a refresh token for `grant`.
pub(crate) fn issue_pair(
    tokens: &dyn TokenService,
    lifetimes: TokenLifetimes,
    grant: &Grant<'_>,
) -> Result<TokenPair, TokenError> {
    // Derived from the refresh token's id, not drawn at random: the same grant issues the same
    // pair, which is what lets a refresh retried within the reuse grace answer it again.
    let companions = tokens.companions(grant.refresh_token_id);
    let (access_csrf, refresh_csrf) = if grant.cookies {
        (Some(companions.access_csrf), Some(companions.refresh_csrf))
    } else {
        (None, None)
    };
    let claims = |kind, token_id, lifetime, csrf: &Option<String>| Claims {
        user_id: grant.user.id,
        username: grant.user.username.clone(),
        roles: grant.user.roles.iter().cloned().collect(),
        session_id: grant.session_id,
        token_id,
        kind,
        fresh: grant.fresh && kind == TokenKind::Access,
        issued_at: grant.now,
        expires_at: grant.now + lifetime,
        csrf: csrf.clone(),
    };
    let access_token = tokens.issue(&claims(
        TokenKind::Access,
        companions.access_id,
        lifetimes.access,
        &access_csrf,
    ))?;
    let refresh_token = tokens.issue(&claims(
        TokenKind::Refresh,
        grant.refresh_token_id,
        lifetimes.refresh,
        &refresh_csrf,
    ))?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        expires_in: lifetimes.access.whole_seconds(),
        refresh_expires_in: lifetimes.refresh.whole_seconds(),
        access_csrf,
        refresh_csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::{Admission, AdmissionLimits};
    use crate::ports::{MockPasswordHasher, MockTokenService};
    use crate::testing::{
        admission, alice, alice_id, alice_registered, clock, companions, hasher, ids, names,
        signing, uuid, InMemoryEventStore, NOW,
    };
    use crate::Throttle;
    use authlog_domain::event::{
        LoggedIn, LoginAttempted, LoginFailed, LoginSucceeded, PasswordChanged, RoleGranted,
    };
    use authlog_domain::{AttemptId, Event, PasswordHash, Role};
    use time::Duration;

    fn password() -> Password {
        Password::parse("correct horse".into()).unwrap()
    }

    fn given_alice() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(
            StreamId::user(alice_id()),
            [
                alice_registered(),
                Event::RoleGranted(RoleGranted {
                    user_id: alice_id(),
                    role: Role::admin(),
                }),
            ],
        );
        store
    }

    fn service(
        store: &Arc<InMemoryEventStore>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenService>,
    ) -> LogIn {
        let ids = ids();
        let checks = Arc::new(ThrottledChecks::new(
            store.clone(),
            clock(),
            ids.clone(),
            Throttle::default(),
            admission(),
            names(),
        ));
        LogIn::new(
            store.clone(),
            checks,
            hasher,
            tokens,
            clock(),
            ids,
            TokenLifetimes::default(),
        )
    }

    async fn log_in(login: &LogIn) -> Result<TokenPair, LoginError> {
        login
            .execute(alice(), password(), false, &Metadata::default())
            .await
    }

    fn attempted(n: u128) -> Event {
        Event::LoginAttempted(LoginAttempted {
            attempt_id: AttemptId::from_uuid(uuid(n)),
        })
    }

    fn failed(attempt: u128, reason: LoginFailure) -> Event {
        Event::LoginFailed(LoginFailed {
            reason,
            attempt_id: Some(AttemptId::from_uuid(uuid(attempt))),
        })
    }

    #[tokio::test]
    async fn the_right_password_opens_a_session_and_concludes_the_check() {
        let store = given_alice();
        let before = store.position();

        let pair = log_in(&service(&store, hasher(true), signing()))
            .await
            .unwrap();

        // Ids: 1 the attempt, 2 the session, 3 its refresh token, 4 the access token.
        assert_eq!(
            store.events_after(before),
            vec![
                attempted(1),
                Event::LoggedIn(LoggedIn {
                    session_id: SessionId::from_uuid(uuid(2)),
                    user_id: alice_id(),
                    refresh_token_id: TokenId::from_uuid(uuid(3)),
                    expires_at: NOW + Duration::days(30),
                }),
                Event::LoginSucceeded(LoginSucceeded {
                    attempt_id: AttemptId::from_uuid(uuid(1)),
                    session_id: SessionId::from_uuid(uuid(2)),
                }),
            ]
        );
        // The access token's id is derived from the refresh token's (id 3 + 1,000).
        assert_eq!(pair.access_token, format!("Access:{}:true", uuid(1_003)));
        assert_eq!(pair.refresh_token, format!("Refresh:{}:false", uuid(3)));
        assert_eq!(pair.expires_in, 900);
    }

    #[tokio::test]
    async fn a_disabled_account_says_so_to_the_right_password_only_and_the_check_does_not_count() {
        let store = given_alice();
        store.given(
            StreamId::user(alice_id()),
            [Event::UserDisabled(authlog_domain::event::UserDisabled {
                user_id: alice_id(),
                reason: None,
            })],
        );
        let before = store.position();
        let refused = log_in(&service(&store, hasher(true), signing())).await;
        assert_eq!(refused, Err(LoginError::Disabled));
        assert_eq!(refused.unwrap_err().to_string(), "Account disabled");
        assert_eq!(
            store.events_after(before),
            vec![
                attempted(1),
                Event::LoginRefused(authlog_domain::event::LoginRefused {
                    attempt_id: AttemptId::from_uuid(uuid(1)),
                    reason: LoginRefusal::AccountDisabled,
                }),
            ],
            "no session, and the check concluded as no failure"
        );
        // A wrong password is refused as for any account.
        let wrong = log_in(&service(&store, hasher(false), signing())).await;
        assert_eq!(wrong, Err(LoginError::BadCredentials));
    }

    #[tokio::test]
    async fn a_login_over_the_hashing_queue_is_refused_at_once_and_records_and_hashes_nothing() {
        let store = given_alice();
        let before = store.position();
        let limits = AdmissionLimits {
            total: 10,
            per_client: 1,
        };
        let admission = Admission::new(limits);
        let _in_flight = admission.admit(Some("192.0.2.1")).unwrap();
        let checks = ThrottledChecks::new(
            store.clone(),
            clock(),
            ids(),
            Throttle::default(),
            admission,
            names(),
        );
        let mut never = MockPasswordHasher::new();
        never.expect_verify().never();
        let login = LogIn::new(
            store.clone(),
            Arc::new(checks),
            Arc::new(never),
            signing(),
            clock(),
            ids(),
            TokenLifetimes::default(),
        );
        let from = Metadata {
            client_addr: Some("192.0.2.1".into()),
            ..Metadata::default()
        };

        let result = login.execute(alice(), password(), false, &from).await;

        assert_eq!(
            result.err(),
            Some(LoginError::Busy(Busy {
                retry_after: crate::admission::RETRY_AFTER
            }))
        );
        assert_eq!(store.events_after(before), vec![]);
    }

    #[tokio::test]
    async fn issued_tokens_carry_the_users_current_roles_and_only_the_access_token_is_fresh() {
        let store = given_alice();
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().times(2).returning(|c| {
            assert_eq!(c.roles, vec![Role::admin()]);
            assert_eq!(c.fresh, c.kind == TokenKind::Access);
            let lifetime = match c.kind {
                TokenKind::Access => Duration::minutes(15),
                TokenKind::Refresh => Duration::days(30),
            };
            assert_eq!(c.expires_at, NOW + lifetime);
            Ok("t".into())
        });
        tokens.expect_companions().returning(companions);
        log_in(&service(&store, hasher(true), Arc::new(tokens)))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_wrong_password_concludes_the_check_as_failed_and_issues_nothing() {
        let store = given_alice();
        let before = store.position();
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().never();

        let result = log_in(&service(&store, hasher(false), Arc::new(tokens))).await;

        assert_eq!(result, Err(LoginError::BadCredentials));
        assert_eq!(
            store.events_after(before),
            vec![attempted(1), failed(1, LoginFailure::WrongPassword)]
        );
    }

    #[tokio::test]
    async fn an_unknown_user_is_verified_against_the_dummy_and_refused_alike() {
        let store = Arc::new(InMemoryEventStore::new());
        let mut hasher = MockPasswordHasher::new();
        // No hash: the hasher spends the same effort on its dummy hash.
        hasher
            .expect_verify()
            .withf(|_, hash| hash.is_none())
            .return_once(|_, _| Ok(false));

        let result = log_in(&service(&store, Arc::new(hasher), signing())).await;

        assert_eq!(result, Err(LoginError::BadCredentials));
        assert_eq!(
            store.events_after(0),
            vec![attempted(1), failed(1, LoginFailure::UnknownUser)]
        );
        // The name typed is recorded only concealed: in the checks' stream and subject.
        for recorded in store.recorded() {
            assert_eq!(recorded.stream_id.as_str(), "login:concealed:alice");
            assert_eq!(recorded.subject.as_deref(), Some("concealed:alice"));
            assert!(!recorded.event.payload().to_string().contains("alice"));
        }
    }

    #[tokio::test]
    async fn an_accounts_checks_are_recorded_under_its_id() {
        let store = given_alice();
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().return_once(|_, _| Ok(false));
        let result = log_in(&service(&store, Arc::new(hasher), signing())).await;
        assert_eq!(result, Err(LoginError::BadCredentials));
        let checks: Vec<_> = store
            .recorded()
            .into_iter()
            .filter(|e| matches!(e.event, Event::LoginAttempted(_) | Event::LoginFailed(_)))
            .collect();
        assert_eq!(checks.len(), 2);
        for recorded in checks {
            assert_eq!(
                recorded.stream_id,
                StreamId::login_attempts(&alice_id().to_string())
            );
            assert_eq!(recorded.subject, Some(alice_id().to_string()));
        }
    }

    /// Alice's login stream holding a failed check reserved `m` minutes ago, for each `m`.
    fn given_failures(store: &InMemoryEventStore, minutes_ago: &[i64]) {
        for (n, m) in (100..).zip(minutes_ago) {
            store.given_at(
                StreamId::login_attempts(&alice_id().to_string()),
                [attempted(n), failed(n, LoginFailure::WrongPassword)],
                NOW - Duration::minutes(*m),
            );
        }
    }

    fn never_hashes() -> Arc<MockPasswordHasher> {
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().never();
        Arc::new(hasher)
    }

    #[tokio::test]
    async fn five_failures_within_the_window_throttle_even_the_right_password_before_hashing() {
        let store = given_alice();
        given_failures(&store, &[14, 10, 5, 2, 1]);
        let before = store.position();

        let result = log_in(&service(&store, never_hashes(), signing())).await;

        // The oldest of the five frees up 15 minutes after it happened: in one minute.
        assert_eq!(
            result,
            Err(LoginError::Throttled {
                retry_after: Duration::minutes(1)
            })
        );
        assert_eq!(
            store.events_after(before),
            vec![],
            "refusals are not recorded"
        );
    }

    #[tokio::test]
    async fn failures_older_than_the_window_do_not_throttle() {
        let store = given_alice();
        given_failures(&store, &[16, 10, 5, 2, 1]);
        assert!(log_in(&service(&store, hasher(true), signing()))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn checks_in_flight_fill_the_limit_and_the_next_waits_a_moment() {
        let store = given_alice();
        store.given(
            StreamId::login_attempts(&alice_id().to_string()),
            (100..105).map(attempted),
        );

        let result = log_in(&service(&store, never_hashes(), signing())).await;

        assert_eq!(
            result,
            Err(LoginError::Throttled {
                retry_after: Duration::seconds(1)
            })
        );
    }

    /// A hasher that, while it checks the password against the old hash, lets the owner change
    /// it; checked against the new hash, the typed password matches when `still_right`.
    fn racing_a_password_change(
        store: &Arc<InMemoryEventStore>,
        still_right: bool,
    ) -> Arc<MockPasswordHasher> {
        let new_hash = PasswordHash::from_phc("$argon2id$new".into());
        let racing = store.clone();
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().times(2).returning(move |_, hash| {
            if hash.as_ref() == Some(&new_hash) {
                return Ok(still_right);
            }
            racing.given(
                StreamId::user(alice_id()),
                [Event::PasswordChanged(PasswordChanged {
                    user_id: alice_id(),
                    password_hash: new_hash.clone().into(),
                })],
            );
            Ok(true)
        });
        Arc::new(hasher)
    }

    #[tokio::test]
    async fn a_login_racing_a_password_change_is_refused_once_the_change_is_recorded() {
        let store = given_alice();
        let hasher = racing_a_password_change(&store, false);
        let before = store.position() + 1; // after the change

        let result = log_in(&service(&store, hasher, signing())).await;

        assert_eq!(result, Err(LoginError::BadCredentials));
        let recorded = store.events_after(before);
        assert!(
            !recorded.iter().any(|e| matches!(e, Event::LoggedIn(_))),
            "no session opened on the old password: {recorded:?}"
        );
        assert_eq!(
            recorded.last(),
            Some(&failed(1, LoginFailure::WrongPassword))
        );
    }

    #[tokio::test]
    async fn a_login_racing_a_change_to_the_same_password_opens_its_session_after_it() {
        let store = given_alice();
        let hasher = racing_a_password_change(&store, true);
        let before = store.position() + 1; // after the change

        let result = log_in(&service(&store, hasher, signing())).await;

        assert!(result.is_ok(), "{result:?}");
        let recorded = store.events_after(before);
        assert!(
            recorded.iter().any(|e| matches!(e, Event::LoggedIn(_))),
            "the session is opened under the new hash: {recorded:?}"
        );
    }

    #[tokio::test]
    async fn a_role_granted_while_the_password_is_checked_does_not_refuse_the_login() {
        let store = given_alice();
        let racing = store.clone();
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().return_once(move |_, _| {
            racing.given(
                StreamId::user(alice_id()),
                [Event::RoleGranted(RoleGranted {
                    user_id: alice_id(),
                    role: Role::parse("auditor").unwrap(),
                })],
            );
            Ok(true)
        });

        let result = log_in(&service(&store, Arc::new(hasher), signing())).await;

        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn tokens_for_cookies_carry_csrf_values() {
        let store = given_alice();
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().times(2).returning(|c| {
            let expected = companions(TokenId::from_uuid(uuid(3)));
            let csrf = match c.kind {
                TokenKind::Access => expected.access_csrf,
                TokenKind::Refresh => expected.refresh_csrf,
            };
            assert_eq!(c.csrf, Some(csrf));
            Ok("t".into())
        });
        tokens.expect_companions().returning(companions);
        let pair = service(&store, hasher(true), Arc::new(tokens))
            .execute(alice(), password(), true, &Metadata::default())
            .await
            .unwrap();
        let refresh_id = TokenId::from_uuid(uuid(3));
        assert_eq!(pair.access_csrf, Some(format!("access-csrf-{refresh_id}")));
        assert_eq!(
            pair.refresh_csrf,
            Some(format!("refresh-csrf-{refresh_id}"))
        );
    }

    #[tokio::test]
    async fn a_hasher_failure_opens_no_session() {
        let store = given_alice();
        let before = store.position();
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_verify()
            .return_once(|_, _| Err(HashError("worker pool gone".into())));

        let result = log_in(&service(&store, Arc::new(hasher), signing())).await;

        assert_eq!(
            result,
            Err(LoginError::Hashing(HashError("worker pool gone".into())))
        );
        assert_eq!(store.events_after(before), vec![attempted(1)]);
    }

    #[tokio::test]
    async fn a_store_failure_on_the_session_append_issues_no_tokens() {
        let store = given_alice();
        store.fail_appends_to("session:");
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().never();

        let result = log_in(&service(&store, hasher(true), Arc::new(tokens))).await;

        assert_eq!(
            result,
            Err(LoginError::Store(StoreError::Unavailable(
                "disk full (injected)".into()
            )))
        );
    }
}
