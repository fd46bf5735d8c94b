//! Exchanging a refresh token for a new pair, rotating the refresh token (RFC 9700 §4.14.2).

use std::sync::Arc;

use authlog_domain::session::{self, SessionCommand, SessionError};
use authlog_domain::user::UserState;
use authlog_domain::{StreamId, TokenId};

use crate::login::{issue_pair, Grant};
use crate::ports::{
    AppendError, Claims, Clock, EventStore, ExpectedVersion, IdGenerator, Metadata, RevocationView,
    StoreError, TokenError, TokenService,
};
use crate::streams::{load_session, load_user, to_append};
use crate::{TokenLifetimes, TokenPair};

/// How often a refresh re-reads and retries when a concurrent writer moved the session.
const ATTEMPTS: usize = 3;

/// Why a refresh was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    #[error("Token has been revoked")]
    Revoked,
    /// The token was already rotated away: the session has just been revoked because of it.
    #[error("Token has been revoked")]
    ReuseDetected,
    #[error("Token has expired")]
    Expired,
    #[error("no such session")]
    UnknownSession,
    #[error("session kept changing; try again")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

pub struct Refresh {
    store: Arc<dyn EventStore>,
    tokens: Arc<dyn TokenService>,
    revocations: Arc<dyn RevocationView>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    lifetimes: TokenLifetimes,
}

impl Refresh {
    pub fn new(
        store: Arc<dyn EventStore>,
        tokens: Arc<dyn TokenService>,
        revocations: Arc<dyn RevocationView>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        lifetimes: TokenLifetimes,
    ) -> Self {
        Self {
            store,
            tokens,
            revocations,
            clock,
            ids,
            lifetimes,
        }
    }

    /// Rotates the session's refresh token: records `Refreshed`, and issues a new refresh token
    /// and a new (not fresh) access token with the user's current roles. A refresh token that
    /// was already rotated away revokes the session instead.
    ///
    /// Two concurrent refreshes with one token cannot both succeed: both append at the version
    /// they read, the loser re-reads, finds its token retired, and so revokes the session.
    ///
    /// # Errors
    /// [`RefreshError`]: revoked, reused, expired or unknown session; a store or signing failure.
    pub async fn execute(
        &self,
        refresh: &Claims,
        cookies: bool,
        metadata: &Metadata,
    ) -> Result<TokenPair, RefreshError> {
        for _ in 0..ATTEMPTS {
            let loaded = load_session(self.store.as_ref(), refresh.session_id).await?;
            let now = self.clock.now();
            let next = TokenId::from_uuid(self.ids.new_id());
            let command = SessionCommand::Refresh {
                presented: refresh.token_id,
                next,
                expires_at: now + self.lifetimes.refresh,
            };
            let events = session::decide(&loaded.state, command, now).map_err(|e| match e {
                SessionError::Revoked => RefreshError::Revoked,
                SessionError::Expired => RefreshError::Expired,
                SessionError::UnknownSession | SessionError::AlreadyStarted => {
                    RefreshError::UnknownSession
                }
            })?;
            let Some(username) = loaded.state.session().map(|s| s.username.clone()) else {
                return Err(RefreshError::UnknownSession);
            };
            let append = self
                .store
                .append(
                    StreamId::session(refresh.session_id),
                    ExpectedVersion::after(loaded.version),
                    to_append(events.clone(), &username, metadata, now),
                )
                .await;
            match append {
                Ok(_) => {}
                Err(AppendError::Conflict { .. }) => continue,
                Err(AppendError::Store(e)) => return Err(e.into()),
            }
            let state = events.iter().fold(loaded.state, |state, event| {
                session::apply(state, event, now)
            });
            if state.is_revoked() {
                metrics::counter!("authlog_revocations_total", "reason" => "refresh_reuse")
                    .increment(1);
                self.revocations.record(refresh.session_id, now);
                return Err(RefreshError::ReuseDetected);
            }
            // Roles come from the user stream, not the old token, so a role granted or revoked
            // since the login takes effect at the next refresh.
            let UserState::Registered(user) =
                load_user(self.store.as_ref(), &username).await?.state
            else {
                return Err(RefreshError::UnknownSession);
            };
            let grant = Grant {
                user: &user,
                session_id: refresh.session_id,
                refresh_token_id: next,
                fresh: false,
                cookies,
                now,
            };
            return Ok(issue_pair(
                self.tokens.as_ref(),
                self.ids.as_ref(),
                self.lifetimes,
                &grant,
            )?);
        }
        Err(RefreshError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Appended, MockEventStore, MockRevocationView, MockTokenService, TokenKind};
    use crate::testing::{clock, ids, recorded, NOW};
    use authlog_domain::event::{LoggedIn, Refreshed, Registered, Revoked};
    use authlog_domain::{Event, PasswordHash, RevocationReason, SessionId, UserId, Username};
    use uuid::Uuid;

    fn sid() -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(500))
    }
    fn uid() -> UserId {
        UserId::from_uuid(Uuid::from_u128(600))
    }
    fn jti(n: u128) -> TokenId {
        TokenId::from_uuid(Uuid::from_u128(700 + n))
    }
    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    fn presented(token: TokenId) -> Claims {
        Claims {
            user_id: uid(),
            username: alice(),
            roles: vec![],
            session_id: sid(),
            token_id: token,
            kind: TokenKind::Refresh,
            fresh: false,
            issued_at: NOW,
            expires_at: NOW + time::Duration::days(30),
            csrf: None,
        }
    }

    fn session_history() -> Vec<Event> {
        vec![
            Event::LoggedIn(LoggedIn {
                session_id: sid(),
                user_id: uid(),
                username: alice(),
                refresh_token_id: jti(1),
                expires_at: NOW + time::Duration::days(30),
            }),
            Event::Refreshed(Refreshed {
                session_id: sid(),
                refresh_token_id: jti(2),
                generation: 2,
                expires_at: NOW + time::Duration::days(30),
            }),
        ]
    }

    fn user_history() -> Vec<Event> {
        vec![Event::Registered(Registered {
            user_id: uid(),
            username: alice(),
            password_hash: PasswordHash::from_phc("h".into()),
        })]
    }

    /// A store whose session stream is `session` (its edges are the whole of these short
    /// streams) and whose user stream is alice's.
    fn store_with(session: Vec<Event>) -> MockEventStore {
        let mut store = MockEventStore::new();
        store
            .expect_read_stream_edges()
            .withf(|stream, _| stream.as_str().starts_with("session:"))
            .returning(move |stream, _| Ok(recorded(&stream, &session)));
        store
            .expect_read_stream()
            .withf(|stream| stream.as_str().starts_with("user:"))
            .returning(|stream| Ok(recorded(&stream, &user_history())));
        store
    }

    fn tokens() -> Arc<MockTokenService> {
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().returning(|c| {
            assert!(!c.fresh, "a refreshed access token is never fresh");
            Ok(format!("{:?}:{}", c.kind, c.token_id))
        });
        Arc::new(tokens)
    }

    fn view(records: usize) -> Arc<MockRevocationView> {
        let mut view = MockRevocationView::new();
        view.expect_record().times(records).return_const(());
        Arc::new(view)
    }

    fn service(store: MockEventStore, revocations: Arc<MockRevocationView>) -> Refresh {
        Refresh::new(
            Arc::new(store),
            tokens(),
            revocations,
            clock(),
            ids(),
            TokenLifetimes::default(),
        )
    }

    #[tokio::test]
    async fn the_current_refresh_token_is_rotated_and_a_new_pair_issued() {
        let mut store = store_with(session_history());
        store
            .expect_append()
            .withf(|_, expected, events| {
                *expected == ExpectedVersion::Exactly(2)
                    && matches!(
                        &events[0].event,
                        Event::Refreshed(Refreshed { generation: 3, .. })
                    )
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 3,
                    position: 10,
                })
            });

        let pair = service(store, view(0))
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await
            .unwrap();

        // Id 1 is the next refresh jti, id 2 the access jti.
        assert_eq!(
            pair.refresh_token,
            format!("Refresh:{}", Uuid::from_u128(1))
        );
        assert_eq!(pair.access_token, format!("Access:{}", Uuid::from_u128(2)));
    }

    #[tokio::test]
    async fn a_retired_refresh_token_revokes_the_session_for_reuse() {
        let mut store = store_with(session_history());
        store
            .expect_append()
            .withf(|_, _, events| {
                matches!(
                    &events[0].event,
                    Event::Revoked(Revoked {
                        reason: RevocationReason::RefreshReuse,
                        ..
                    })
                )
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 3,
                    position: 10,
                })
            });

        let result = service(store, view(1))
            .execute(&presented(jti(1)), false, &Metadata::default())
            .await;

        assert_eq!(result, Err(RefreshError::ReuseDetected));
    }

    #[tokio::test]
    async fn a_revoked_session_cannot_be_refreshed() {
        let mut history = session_history();
        history.push(Event::Revoked(Revoked {
            session_id: sid(),
            user_id: uid(),
            reason: RevocationReason::Logout,
        }));
        let mut store = store_with(history);
        store.expect_append().never();

        let result = service(store, view(0))
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await;

        assert_eq!(result, Err(RefreshError::Revoked));
    }

    #[tokio::test]
    async fn losing_a_race_to_a_concurrent_refresh_is_reuse() {
        // The first read sees generation 2; by the retry the other refresh has rotated to 3.
        let mut reads = 0;
        let mut store = MockEventStore::new();
        store
            .expect_read_stream_edges()
            .returning(move |stream, _| {
                reads += 1;
                let mut history = session_history();
                if reads > 1 {
                    history.push(Event::Refreshed(Refreshed {
                        session_id: sid(),
                        refresh_token_id: jti(3),
                        generation: 3,
                        expires_at: NOW + time::Duration::days(30),
                    }));
                }
                Ok(recorded(&stream, &history))
            });
        let mut appends = 0;
        store
            .expect_append()
            .times(2)
            .returning(move |stream, expected, events| {
                appends += 1;
                if appends == 1 {
                    return Err(AppendError::Conflict {
                        stream,
                        expected,
                        actual: 3,
                    });
                }
                assert!(matches!(&events[0].event, Event::Revoked(_)));
                Ok(Appended {
                    stream_version: 4,
                    position: 11,
                })
            });

        let result = service(store, view(1))
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await;

        assert_eq!(result, Err(RefreshError::ReuseDetected));
    }

    #[tokio::test]
    async fn a_store_failure_issues_nothing() {
        let mut store = store_with(session_history());
        store
            .expect_append()
            .return_once(|_, _, _| Err(StoreError::Unavailable("io".into()).into()));

        let result = service(store, view(0))
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await;

        assert_eq!(
            result,
            Err(RefreshError::Store(StoreError::Unavailable("io".into())))
        );
    }
}
