//! Logging in with a password: opens a session and issues its first token pair.

use std::sync::Arc;

use authlog_domain::event::{LoginFailed, LoginFailure};
use authlog_domain::session::{self, SessionCommand, SessionState};
use authlog_domain::user::{User, UserState};
use authlog_domain::{Event, Password, SessionId, StreamId, TokenId, Username};
use time::{Duration, OffsetDateTime};

use crate::ports::{
    AppendError, Claims, Clock, EventStore, ExpectedVersion, HashError, IdGenerator, Metadata,
    PasswordHasher, StoreError, TokenError, TokenKind, TokenService,
};
use crate::streams::{load_user, to_append};
use crate::{Throttle, TokenLifetimes, TokenPair};

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password: deliberately indistinguishable.
    #[error("Bad username or password")]
    BadCredentials,
    /// Too many recent failures for this username; try again after `retry_after`.
    #[error("Too many failed login attempts; try again later")]
    Throttled { retry_after: Duration },
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl From<AppendError> for LoginError {
    fn from(e: AppendError) -> Self {
        match e {
            // Session ids are fresh UUIDs: a conflict on a new session stream is a store fault.
            AppendError::Conflict { .. } => Self::Store(StoreError::Unavailable(format!(
                "unexpected append conflict: {e}"
            ))),
            AppendError::Store(e) => Self::Store(e),
        }
    }
}

pub struct LogIn {
    store: Arc<dyn EventStore>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenService>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    lifetimes: TokenLifetimes,
    throttle: Throttle,
}

impl LogIn {
    pub fn new(
        store: Arc<dyn EventStore>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenService>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        lifetimes: TokenLifetimes,
        throttle: Throttle,
    ) -> Self {
        Self {
            store,
            hasher,
            tokens,
            clock,
            ids,
            lifetimes,
            throttle,
        }
    }

    /// Checks the password and, if it matches, opens a session (`LoggedIn`) and issues a fresh
    /// access token and the session's first refresh token (with CSRF values when they go into
    /// cookies). A mismatch records `LoginFailed`.
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
        if let Some(retry_after) = self.throttled(&username).await? {
            metrics::counter!("authlog_logins_total", "outcome" => "throttled").increment(1);
            return Err(LoginError::Throttled { retry_after });
        }
        let loaded = load_user(self.store.as_ref(), &username).await?;
        let user = match loaded.state {
            UserState::Registered(user) => Some(user),
            UserState::None => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matches = self.hasher.verify(password, hash).await?;
        let now = self.clock.now();
        let reason = if user.is_some() {
            LoginFailure::WrongPassword
        } else {
            LoginFailure::UnknownUser
        };
        let Some(user) = user.filter(|_| matches) else {
            self.record_failure(&username, reason, metadata, now)
                .await?;
            metrics::counter!("authlog_logins_total", "outcome" => "failed").increment(1);
            return Err(LoginError::BadCredentials);
        };

        let session_id = SessionId::from_uuid(self.ids.new_id());
        let refresh_token_id = TokenId::from_uuid(self.ids.new_id());
        let command = SessionCommand::Start {
            session_id,
            user_id: user.id,
            username: user.username.clone(),
            refresh_token_id,
            expires_at: now + self.lifetimes.refresh,
        };
        let events = session::decide(&SessionState::None, command, now)
            .map_err(|e| StoreError::Unavailable(format!("new session refused: {e}")))?;
        self.store
            .append(
                StreamId::session(session_id),
                ExpectedVersion::NoStream,
                to_append(events, &username, metadata, now),
            )
            .await?;
        let grant = Grant {
            user: &user,
            session_id,
            refresh_token_id,
            fresh: true,
            cookies,
            now,
        };
        let pair = issue_pair(
            self.tokens.as_ref(),
            self.ids.as_ref(),
            self.lifetimes,
            &grant,
        )?;
        metrics::counter!("authlog_logins_total", "outcome" => "ok").increment(1);
        Ok(pair)
    }

    /// How long until `username` may try again, if its recent failures reached the limit.
    /// The count comes from the log, so every instance on one database agrees; refused
    /// attempts are not recorded, so hammering does not extend the wait.
    async fn throttled(&self, username: &Username) -> Result<Option<Duration>, LoginError> {
        let limit = self.throttle.max_failures;
        if limit == 0 {
            return Ok(None);
        }
        let recent = self
            .store
            .read_stream_tail(StreamId::login_attempts(username), limit)
            .await?;
        let Some(oldest) = recent
            .first()
            .filter(|_| recent.len() as u64 >= u64::from(limit))
        else {
            return Ok(None);
        };
        let free_at = oldest.recorded_at + self.throttle.window;
        let wait = free_at - self.clock.now();
        Ok((wait > Duration::ZERO).then_some(wait))
    }

    async fn record_failure(
        &self,
        username: &Username,
        reason: LoginFailure,
        metadata: &Metadata,
        now: OffsetDateTime,
    ) -> Result<(), LoginError> {
        let event = Event::LoginFailed(LoginFailed {
            username: username.canonical().to_owned(),
            reason,
        });
        self.store
            .append(
                StreamId::login_attempts(username),
                ExpectedVersion::Any,
                to_append(vec![event], username, metadata, now),
            )
            .await?;
        Ok(())
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
    ids: &dyn IdGenerator,
    lifetimes: TokenLifetimes,
    grant: &Grant<'_>,
) -> Result<TokenPair, TokenError> {
    let csrf = |cookies: bool| cookies.then(|| ids.new_secret());
    let (access_csrf, refresh_csrf) = (csrf(grant.cookies), csrf(grant.cookies));
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
    let access_id = TokenId::from_uuid(ids.new_id());
    let access_token = tokens.issue(&claims(
        TokenKind::Access,
        access_id,
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
    use crate::ports::{Appended, MockEventStore, MockPasswordHasher, MockTokenService};
    use crate::testing::{clock, ids, recorded, NOW};
    use authlog_domain::event::{Registered, RoleGranted};
    use authlog_domain::{PasswordHash, Role, UserId};
    use uuid::Uuid;

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    fn password() -> Password {
        Password::parse("correct horse".into()).unwrap()
    }

    fn user_id() -> UserId {
        UserId::from_uuid(Uuid::from_u128(42))
    }

    fn alice_history() -> Vec<Event> {
        vec![
            Event::Registered(Registered {
                user_id: user_id(),
                username: alice(),
                password_hash: PasswordHash::from_phc("$argon2id$alice".into()),
            }),
            Event::RoleGranted(RoleGranted {
                user_id: user_id(),
                role: Role::admin(),
            }),
        ]
    }

    fn store_with(history: Vec<Event>) -> MockEventStore {
        let mut store = MockEventStore::new();
        store.expect_read_stream_tail().returning(|_, _| Ok(vec![]));
        store
            .expect_read_stream()
            .returning(move |stream| Ok(recorded(&stream, &history)));
        store
    }

    fn hasher_answering(matches: bool) -> MockPasswordHasher {
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().return_once(move |_, _| Ok(matches));
        hasher
    }

    fn signing_tokens() -> MockTokenService {
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().returning(|claims| {
            Ok(format!(
                "{:?}:{}:{}",
                claims.kind, claims.token_id, claims.fresh
            ))
        });
        tokens
    }

    fn service(
        store: MockEventStore,
        hasher: MockPasswordHasher,
        tokens: MockTokenService,
    ) -> LogIn {
        LogIn::new(
            Arc::new(store),
            Arc::new(hasher),
            Arc::new(tokens),
            clock(),
            ids(),
            TokenLifetimes::default(),
            Throttle::default(),
        )
    }

    #[tokio::test]
    async fn the_right_password_opens_a_session_and_issues_a_fresh_access_token() {
        let mut store = store_with(alice_history());
        store
            .expect_append()
            .withf(|stream, expected, events| {
                let Event::LoggedIn(e) = &events[0].event else {
                    return false;
                };
                stream.as_str() == format!("session:{}", Uuid::from_u128(1))
                    && *expected == ExpectedVersion::NoStream
                    && e.user_id == user_id()
                    && e.refresh_token_id == TokenId::from_uuid(Uuid::from_u128(2))
                    && e.expires_at == NOW + time::Duration::days(30)
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 1,
                    position: 3,
                })
            });
        let mut tokens = MockTokenService::new();
        tokens
            .expect_issue()
            .withf(|c| c.kind == TokenKind::Access)
            .return_once(|c| {
                assert!(c.fresh);
                assert_eq!(c.roles, vec![Role::admin()]);
                assert_eq!(c.expires_at, NOW + time::Duration::minutes(15));
                Ok("access".into())
            });
        tokens
            .expect_issue()
            .withf(|c| c.kind == TokenKind::Refresh)
            .return_once(|c| {
                assert!(!c.fresh, "only access tokens are ever fresh");
                assert_eq!(c.token_id, TokenId::from_uuid(Uuid::from_u128(2)));
                Ok("refresh".into())
            });

        let pair = service(store, hasher_answering(true), tokens)
            .execute(alice(), password(), false, &Metadata::default())
            .await
            .unwrap();

        assert_eq!(pair.access_token, "access");
        assert_eq!(pair.refresh_token, "refresh");
        assert_eq!(pair.expires_in, 900);
    }

    #[tokio::test]
    async fn a_wrong_password_records_login_failed_and_is_bad_credentials() {
        let mut store = store_with(alice_history());
        store
            .expect_append()
            .withf(|stream, expected, events| {
                stream.as_str() == "login:alice"
                    && *expected == ExpectedVersion::Any
                    && matches!(
                        &events[0].event,
                        Event::LoginFailed(LoginFailed {
                            reason: LoginFailure::WrongPassword,
                            ..
                        })
                    )
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 1,
                    position: 3,
                })
            });
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().never();

        let result = service(store, hasher_answering(false), tokens)
            .execute(alice(), password(), false, &Metadata::default())
            .await;

        assert_eq!(result, Err(LoginError::BadCredentials));
    }

    #[tokio::test]
    async fn an_unknown_user_is_verified_against_the_dummy_and_is_bad_credentials() {
        let mut store = store_with(vec![]);
        store
            .expect_append()
            .withf(|stream, _, events| {
                stream.as_str() == "login:alice"
                    && matches!(
                        &events[0].event,
                        Event::LoginFailed(LoginFailed {
                            reason: LoginFailure::UnknownUser,
                            ..
                        })
                    )
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 1,
                    position: 1,
                })
            });
        let mut hasher = MockPasswordHasher::new();
        // No hash: the hasher spends the same effort on its dummy hash.
        hasher
            .expect_verify()
            .withf(|_, hash| hash.is_none())
            .return_once(|_, _| Ok(false));

        let result = service(store, hasher, MockTokenService::new())
            .execute(alice(), password(), false, &Metadata::default())
            .await;

        assert_eq!(result, Err(LoginError::BadCredentials));
    }

    fn failures_at(ages_in_minutes: &[i64]) -> Vec<crate::ports::RecordedEvent> {
        let failure = Event::LoginFailed(LoginFailed {
            username: "alice".into(),
            reason: LoginFailure::WrongPassword,
        });
        let mut events = recorded(
            &StreamId::from_stored("login:alice".into()),
            &vec![failure; ages_in_minutes.len()],
        );
        for (event, age) in events.iter_mut().zip(ages_in_minutes) {
            event.recorded_at = NOW - time::Duration::minutes(*age);
        }
        events
    }

    fn store_with_failures(ages_in_minutes: &'static [i64]) -> MockEventStore {
        let mut store = MockEventStore::new();
        store
            .expect_read_stream_tail()
            .withf(|stream, count| stream.as_str() == "login:alice" && *count == 5)
            .returning(move |_, _| Ok(failures_at(ages_in_minutes)));
        store
            .expect_read_stream()
            .returning(move |stream| Ok(recorded(&stream, &alice_history())));
        store
    }

    #[tokio::test]
    async fn five_failures_within_the_window_throttle_even_the_right_password() {
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().never();
        let result = service(
            store_with_failures(&[14, 10, 5, 2, 1]),
            hasher,
            MockTokenService::new(),
        )
        .execute(alice(), password(), false, &Metadata::default())
        .await;
        // The oldest of the five frees up 15 minutes after it happened: in one minute.
        assert_eq!(
            result,
            Err(LoginError::Throttled {
                retry_after: time::Duration::minutes(1)
            })
        );
    }

    #[tokio::test]
    async fn failures_older_than_the_window_do_not_throttle() {
        let mut store = store_with_failures(&[16, 10, 5, 2, 1]);
        store.expect_append().return_once(|_, _, _| {
            Ok(Appended {
                stream_version: 1,
                position: 9,
            })
        });
        let result = service(store, hasher_answering(true), signing_tokens())
            .execute(alice(), password(), false, &Metadata::default())
            .await;
        assert!(result.is_ok());
    }

    #[tokio::test]
    async fn four_failures_do_not_throttle() {
        let mut store = store_with_failures(&[4, 3, 2, 1]);
        store.expect_append().return_once(|_, _, _| {
            Ok(Appended {
                stream_version: 1,
                position: 9,
            })
        });
        let result = service(store, hasher_answering(true), signing_tokens())
            .execute(alice(), password(), false, &Metadata::default())
            .await;
        assert!(result.is_ok());
    }

    #[tokio::test]
    async fn tokens_for_cookies_carry_csrf_values() {
        let mut store = store_with(alice_history());
        store.expect_append().return_once(|_, _, _| {
            Ok(Appended {
                stream_version: 1,
                position: 3,
            })
        });
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().times(2).returning(|c| {
            assert_eq!(c.csrf.as_deref(), Some("csrf-secret"));
            Ok("t".into())
        });
        let pair = service(store, hasher_answering(true), tokens)
            .execute(alice(), password(), true, &Metadata::default())
            .await
            .unwrap();
        assert_eq!(pair.access_csrf.as_deref(), Some("csrf-secret"));
        assert_eq!(pair.refresh_csrf.as_deref(), Some("csrf-secret"));
    }

    #[tokio::test]
    async fn a_hasher_failure_opens_no_session() {
        let mut store = store_with(alice_history());
        store.expect_append().never();
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_verify()
            .return_once(|_, _| Err(HashError("worker pool gone".into())));

        let result = service(store, hasher, MockTokenService::new())
            .execute(alice(), password(), false, &Metadata::default())
            .await;

        assert_eq!(
            result,
            Err(LoginError::Hashing(HashError("worker pool gone".into())))
        );
    }

    #[tokio::test]
    async fn a_store_failure_on_the_session_append_issues_no_tokens() {
        let mut store = store_with(alice_history());
        store
            .expect_append()
            .return_once(|_, _, _| Err(StoreError::Unavailable("disk full".into()).into()));
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().never();

        let result = service(store, hasher_answering(true), tokens)
            .execute(alice(), password(), false, &Metadata::default())
            .await;

        assert_eq!(
            result,
            Err(LoginError::Store(StoreError::Unavailable(
                "disk full".into()
            )))
        );
    }

    #[tokio::test]
    async fn issued_tokens_carry_the_user_and_session() {
        let store = {
            let mut s = store_with(alice_history());
            s.expect_append().return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 1,
                    position: 3,
                })
            });
            s
        };
        let pair = service(store, hasher_answering(true), signing_tokens())
            .execute(alice(), password(), false, &Metadata::default())
            .await
            .unwrap();
        // Ids: 1 session, 2 refresh jti, 3 access jti.
        assert_eq!(
            pair.access_token,
            format!("Access:{}:true", Uuid::from_u128(3))
        );
        assert_eq!(
            pair.refresh_token,
            format!("Refresh:{}:false", Uuid::from_u128(2))
        );
    }
}
