//! Exchanging a refresh token for a new pair, rotating the refresh token (RFC 9700 §4.14.2).

use std::sync::Arc;

use authlog_domain::session::{self, SessionCommand, SessionError};
use authlog_domain::{Event, StreamId, TokenId};

use crate::login::{issue_pair, Grant};
use crate::ports::{
    Claims, Clock, EventStore, ExpectedVersion, IdGenerator, Metadata, RevocationView, StoreError,
    StreamWrite, TokenError, TokenService,
};
use crate::streams::{load_session, load_user_by_id, settled, to_append, until_settled};
use crate::{TokenLifetimes, TokenPair};

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
    /// was already rotated away revokes the session instead. A session never outlives its
    /// login by more than the maximum session age, however often it is refreshed.
    ///
    /// With a reuse grace, the token the last rotation retired, presented again within the
    /// grace (a retry after a lost response, a second browser tab), answers with the pair that
    /// rotation issued: the session's current refresh token, issued at the time of the rotation,
    /// and its derived access token. Nothing is recorded; no new token exists. With the same
    /// key and roles the tokens are identical to the first answer (Ed25519 and HMAC signatures
    /// are deterministic); a role changed since then shows in the retried pair.
    ///
    /// Two concurrent refreshes with one token cannot both rotate: both append at the version
    /// they read, the loser reads again, finds its token retired, and so revokes the session,
    /// or, within the grace, answers with the winner's pair. The append also expects the user's
    /// stream unchanged, so a refresh racing a revocation of all the user's sessions is decided
    /// again, and refused.
    ///
    /// # Errors
    /// [`RefreshError`]: revoked, reused, expired or unknown session; a store or signing failure.
    pub async fn execute(
        &self,
        refresh: &Claims,
        cookies: bool,
        metadata: &Metadata,
    ) -> Result<TokenPair, RefreshError> {
        until_settled(RefreshError::Contended, move || async move {
            let loaded = load_session(self.store.as_ref(), refresh.session_id).await?;
            let Some(session) = loaded.state.session() else {
                return Err(RefreshError::UnknownSession);
            };
            // Roles come from the user stream, not the old token, so a role granted or revoked
            // since the login takes effect at the next refresh.
            let user = load_user_by_id(self.store.as_ref(), session.user_id).await?;
            // The rule login applies: a user who may not hold a session does not keep one.
            let account = user
                .state
                .may_hold_session()
                .map_err(|_| RefreshError::UnknownSession)?;
            let (user_stream, subject) = user.target()?;
            if account
                .session_revoked(session.id, session.opened_at)
                .is_some()
            {
                return Err(RefreshError::Revoked);
            }
            let now = self.clock.now();
            let next = TokenId::from_uuid(self.ids.new_id());
            let command = SessionCommand::Refresh {
                presented: refresh.token_id,
                next,
                lifetime: self.lifetimes.refresh,
                max_age: self.lifetimes.session_max_age,
                reuse_grace: self.lifetimes.refresh_reuse_grace,
            };
            let events = session::decide(&loaded.state, command, now).map_err(|e| match e {
                SessionError::Revoked => RefreshError::Revoked,
                SessionError::Expired => RefreshError::Expired,
                SessionError::UnknownSession | SessionError::AlreadyStarted => {
                    RefreshError::UnknownSession
                }
            })?;
            // The refresh token the answer carries, and when it was issued.
            let (refresh_token_id, issued_at) = if events.is_empty() {
                // A retry of the last rotation: its pair again, as it was issued.
                metrics::counter!("authlog_refresh_retries_total").increment(1);
                (session.refresh_token_id, session.last_used_at)
            } else {
                let writes = vec![
                    StreamWrite::new(
                        StreamId::session(refresh.session_id),
                        ExpectedVersion::after(loaded.version),
                        to_append(events.clone(), &subject, metadata, now),
                    ),
                    StreamWrite::unchanged(user_stream, ExpectedVersion::after(user.version)),
                ];
                if settled(self.store.append(writes).await)?.is_none() {
                    return Ok(None);
                }
                // A retired token decides `Revoked` (recorded now) instead of a rotation.
                if events.iter().any(|e| matches!(e, Event::Revoked(_))) {
                    metrics::counter!("authlog_revocations_total", "reason" => "refresh_reuse")
                        .increment(1);
                    self.revocations.record(refresh.session_id, now);
                    return Err(RefreshError::ReuseDetected);
                }
                (next, now)
            };
            let grant = Grant {
                user: account,
                session_id: refresh.session_id,
                refresh_token_id,
                fresh: false,
                cookies,
                now: issued_at,
            };
            Ok(Some(issue_pair(
                self.tokens.as_ref(),
                self.lifetimes,
                &grant,
            )?))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockTokenService, TokenKind};
    use crate::revocation_view::RevocationSet;
    use crate::testing::{
        alice, alice_id, alice_registered, clock, companions, ids, signing, uuid, FixedClock,
        InMemoryEventStore, NOW,
    };
    use authlog_domain::event::{LoggedIn, Refreshed, Revoked, SessionsRevoked};
    use authlog_domain::{RevocationReason, SessionId};
    use time::Duration;

    fn sid() -> SessionId {
        SessionId::from_uuid(uuid(500))
    }
    fn jti(n: u128) -> TokenId {
        TokenId::from_uuid(uuid(700 + n))
    }

    fn presented(token: TokenId) -> Claims {
        Claims {
            user_id: alice_id(),
            username: alice(),
            roles: vec![],
            session_id: sid(),
            token_id: token,
            kind: TokenKind::Refresh,
            fresh: false,
            issued_at: NOW,
            expires_at: NOW + Duration::days(30),
            csrf: None,
        }
    }

    fn logged_in() -> Event {
        Event::LoggedIn(LoggedIn {
            session_id: sid(),
            user_id: alice_id(),
            refresh_token_id: jti(1),
            expires_at: NOW + Duration::days(30),
        })
    }

    fn refreshed(n: u128, generation: u32, expires_at: time::OffsetDateTime) -> Event {
        Event::Refreshed(Refreshed {
            session_id: sid(),
            refresh_token_id: jti(n),
            generation,
            expires_at,
        })
    }

    /// Alice registered and logged in (session 500, refresh token 701), then rotated once
    /// (to 702).
    fn given_a_rotated_session() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        store.given(
            StreamId::session(sid()),
            [logged_in(), refreshed(2, 2, NOW + Duration::days(30))],
        );
        store
    }

    fn service(store: &Arc<InMemoryEventStore>, view: Arc<RevocationSet>) -> Refresh {
        Refresh::new(
            store.clone(),
            signing(),
            view,
            clock(),
            ids(),
            TokenLifetimes::default(),
        )
    }

    #[tokio::test]
    async fn the_current_token_rotates_to_the_next_generation_and_a_new_pair() {
        let store = given_a_rotated_session();
        let before = store.position();

        let pair = service(&store, Arc::new(RevocationSet::new()))
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await
            .unwrap();

        // Id 1 is the next refresh token; the access token's (not fresh) is derived from it.
        assert_eq!(
            store.events_after(before),
            vec![Event::Refreshed(Refreshed {
                session_id: sid(),
                refresh_token_id: TokenId::from_uuid(uuid(1)),
                generation: 3,
                expires_at: NOW + Duration::days(30),
            })]
        );
        assert_eq!(pair.refresh_token, format!("Refresh:{}:false", uuid(1)));
        assert_eq!(pair.access_token, format!("Access:{}:false", uuid(1_001)));
    }

    /// Tokens that spell out every claim, so that two equal tokens had equal claims.
    fn spelled_out() -> Arc<MockTokenService> {
        let mut tokens = MockTokenService::new();
        tokens
            .expect_issue()
            .returning(|claims| Ok(format!("{claims:?}")));
        tokens.expect_companions().returning(companions);
        Arc::new(tokens)
    }

    /// The service with a 10 s reuse grace, on `clock`, issuing [`spelled_out`] tokens.
    fn with_a_grace(store: &Arc<InMemoryEventStore>, clock: Arc<FixedClock>) -> Refresh {
        let lifetimes = TokenLifetimes {
            refresh_reuse_grace: Duration::seconds(10),
            ..TokenLifetimes::default()
        };
        Refresh::new(
            store.clone(),
            spelled_out(),
            Arc::new(RevocationSet::new()),
            clock,
            ids(),
            lifetimes,
        )
    }

    #[tokio::test]
    async fn within_the_grace_the_retired_token_gets_the_same_pair_again_and_nothing_is_recorded() {
        let store = given_a_rotated_session();
        let later = clock();
        let refresh = with_a_grace(&store, later.clone());
        let first = refresh
            .execute(&presented(jti(2)), true, &Metadata::default())
            .await
            .unwrap();
        let after_rotation = store.position();

        later.advance(Duration::seconds(9));
        let again = refresh
            .execute(&presented(jti(2)), true, &Metadata::default())
            .await
            .unwrap();

        assert_eq!(again, first);
        assert_eq!(store.events_after(after_rotation), vec![]);

        later.advance(Duration::seconds(1));
        let late = refresh
            .execute(&presented(jti(2)), true, &Metadata::default())
            .await;
        assert_eq!(late, Err(RefreshError::ReuseDetected));
    }

    #[tokio::test]
    async fn an_older_token_revokes_even_within_the_grace() {
        let store = given_a_rotated_session();
        let refresh = with_a_grace(&store, clock());
        // 701 was retired by the rotation to 702, which 702's rotation (now) retires in turn.
        refresh
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await
            .unwrap();
        let result = refresh
            .execute(&presented(jti(1)), false, &Metadata::default())
            .await;
        assert_eq!(result, Err(RefreshError::ReuseDetected));
    }

    #[tokio::test]
    async fn a_retired_token_revokes_the_session_and_the_view_before_refusing() {
        let store = given_a_rotated_session();
        let before = store.position();
        let view = Arc::new(RevocationSet::new());
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().never();
        let refresh = Refresh::new(
            store.clone(),
            Arc::new(tokens),
            view.clone(),
            clock(),
            ids(),
            TokenLifetimes::default(),
        );

        let result = refresh
            .execute(&presented(jti(1)), false, &Metadata::default())
            .await;

        assert_eq!(result, Err(RefreshError::ReuseDetected));
        assert_eq!(
            store.events_after(before),
            vec![Event::Revoked(Revoked {
                session_id: sid(),
                user_id: alice_id(),
                reason: RevocationReason::RefreshReuse,
            })]
        );
        assert!(view.is_revoked(sid()));
    }

    #[tokio::test]
    async fn a_revoked_session_is_refused_and_nothing_is_recorded() {
        let store = given_a_rotated_session();
        store.given(
            StreamId::session(sid()),
            [Event::Revoked(Revoked {
                session_id: sid(),
                user_id: alice_id(),
                reason: RevocationReason::Logout,
            })],
        );
        let before = store.position();
        let result = service(&store, Arc::new(RevocationSet::new()))
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await;
        assert_eq!(result, Err(RefreshError::Revoked));
        assert_eq!(store.events_after(before), vec![]);
    }

    #[tokio::test]
    async fn a_session_ended_with_all_the_users_others_is_refused() {
        let store = given_a_rotated_session();
        store.given(
            StreamId::user(alice_id()),
            [Event::SessionsRevoked(SessionsRevoked {
                user_id: alice_id(),
                reason: RevocationReason::PasswordChanged,
                except: None,
            })],
        );
        let result = service(&store, Arc::new(RevocationSet::new()))
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await;
        assert_eq!(result, Err(RefreshError::Revoked));
    }

    #[tokio::test]
    async fn the_session_spared_by_a_password_change_refreshes() {
        let store = given_a_rotated_session();
        store.given(
            StreamId::user(alice_id()),
            [Event::SessionsRevoked(SessionsRevoked {
                user_id: alice_id(),
                reason: RevocationReason::PasswordChanged,
                except: Some(sid()),
            })],
        );
        let result = service(&store, Arc::new(RevocationSet::new()))
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await;
        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn a_refresh_never_moves_the_session_past_its_maximum_age() {
        let store = given_a_rotated_session();
        let lifetimes = TokenLifetimes {
            session_max_age: Duration::days(2),
            ..TokenLifetimes::default()
        };
        let later = clock();
        later.advance(Duration::days(1));
        let refresh = Refresh::new(
            store.clone(),
            signing(),
            Arc::new(RevocationSet::new()),
            later.clone(),
            ids(),
            lifetimes,
        );
        let before = store.position();
        refresh
            .execute(&presented(jti(2)), false, &Metadata::default())
            .await
            .unwrap();
        let recorded = store.events_after(before);
        let [Event::Refreshed(rotated)] = recorded.as_slice() else {
            panic!("not a rotation: {recorded:?}")
        };
        assert_eq!(
            rotated.expires_at,
            NOW + Duration::days(2),
            "login + max age"
        );

        later.advance(Duration::days(1));
        let result = refresh
            .execute(
                &presented(rotated.refresh_token_id),
                false,
                &Metadata::default(),
            )
            .await;
        assert_eq!(result, Err(RefreshError::Expired));
    }

    #[tokio::test]
    async fn an_unknown_session_is_refused() {
        let store = Arc::new(InMemoryEventStore::new());
        let result = service(&store, Arc::new(RevocationSet::new()))
            .execute(&presented(jti(1)), false, &Metadata::default())
            .await;
        assert_eq!(result, Err(RefreshError::UnknownSession));
    }
}
