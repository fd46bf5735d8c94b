//! The session aggregate: one password login, its refresh-token generations, and its end.
//!
//! A session is `Active` from `LoggedIn` until `Revoked` (or until its refresh token expires, or
//! its maximum age is reached). Each `Refreshed` retires the current refresh token and names its
//! successor; presenting a retired one is taken as theft (RFC 9700 §4.14.2) and revokes the whole
//! session. One exception, off by default: within a configured grace after a rotation, the token
//! it retired is taken as a retry of that rotation (a lost response, a second browser tab), and
//! answered with the same successor again instead of a revocation. A `SessionsRevoked` on the user's stream ends it too; the user aggregate answers that
//! ([`crate::user::User::session_revoked`]), from the position the session was opened at.

use time::{Duration, OffsetDateTime};

use crate::event::{LoggedIn, Refreshed, Revoked};
use crate::{Event, RevocationReason, SessionId, Stamp, TokenId, UserId};

/// What the session stream says so far.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SessionState {
    #[default]
    None,
    Active(Session),
    Revoked {
        session: Session,
        reason: RevocationReason,
        at: OffsetDateTime,
    },
}

/// A session's facts, whether it is still active or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// The `jti` of the one refresh token that may be exchanged next.
    pub refresh_token_id: TokenId,
    /// The refresh token the last rotation retired (`None` before the first rotation, and once
    /// the session is revoked): the one token a retry within the reuse grace may present.
    pub previous_refresh_token_id: Option<TokenId>,
    /// 1 for the login's refresh token, +1 for each rotation.
    pub generation: u32,
    pub created_at: OffsetDateTime,
    /// The log position of its `LoggedIn`: a `SessionsRevoked` after it ends the session.
    pub opened_at: u64,
    /// When it was last rotated (or logged in): when the current refresh token was issued.
    pub last_used_at: OffsetDateTime,
    /// When the current refresh token expires; the session cannot be refreshed after it.
    pub expires_at: OffsetDateTime,
}

/// What may be asked of a session.
#[derive(Debug, Clone)]
pub enum SessionCommand {
    Start {
        session_id: SessionId,
        user_id: UserId,
        refresh_token_id: TokenId,
        expires_at: OffsetDateTime,
    },
    /// Exchange the refresh token `presented` for a new one, `next`, valid for `lifetime` but
    /// never past the session's `max_age` (counted from its login). The token the last rotation
    /// retired, presented less than `reuse_grace` after it, is a retry of that rotation.
    Refresh {
        presented: TokenId,
        next: TokenId,
        lifetime: Duration,
        max_age: Duration,
        reuse_grace: Duration,
    },
    Revoke {
        reason: RevocationReason,
    },
}

/// Why a session command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no such session")]
    UnknownSession,
    #[error("session already started")]
    AlreadyStarted,
    #[error("session has been revoked")]
    Revoked,
    #[error("session has expired")]
    Expired,
}

impl SessionState {
    /// The session, active or not.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Self::None => None,
            Self::Active(session) | Self::Revoked { session, .. } => Some(session),
        }
    }

    pub fn is_revoked(&self) -> bool {
        matches!(self, Self::Revoked { .. })
    }
}

/// Decides which events `command` leads to at time `now`.
///
/// A refresh with a retired token is not refused here: it decides `Revoked` with reason
/// `refresh_reuse`, because that fact must be recorded. The caller sees the session revoked
/// after applying it and refuses the request.
///
/// A refresh that retries the last rotation (see [`Session::is_retry`]) decides nothing: no
/// event, `Ok(vec![])`. Nothing has changed, and the caller answers with the session's current
/// refresh token again, as issued at [`Session::last_used_at`].
///
/// # Errors
/// [`SessionError`] when the session does not exist, exists already (start), is revoked or
/// has expired (refresh).
pub fn decide(
    state: &SessionState,
    command: SessionCommand,
    now: OffsetDateTime,
) -> Result<Vec<Event>, SessionError> {
    match (state, command) {
        (
            SessionState::None,
            SessionCommand::Start {
                session_id,
                user_id,
                refresh_token_id,
                expires_at,
            },
        ) => Ok(vec![Event::LoggedIn(LoggedIn {
            session_id,
            user_id,
            refresh_token_id,
            expires_at,
        })]),
        (_, SessionCommand::Start { .. }) => Err(SessionError::AlreadyStarted),
        (SessionState::None, _) => Err(SessionError::UnknownSession),
        (SessionState::Revoked { .. }, SessionCommand::Refresh { .. }) => {
            Err(SessionError::Revoked)
        }
        // Revoking twice (say, a logout racing a logout-all) changes nothing and records nothing.
        (SessionState::Revoked { .. }, SessionCommand::Revoke { .. }) => Ok(vec![]),
        (
            SessionState::Active(session),
            SessionCommand::Refresh {
                presented,
                next,
                lifetime,
                max_age,
                reuse_grace,
            },
        ) => {
            let retry = session.is_retry(presented, reuse_grace, now);
            if presented != session.refresh_token_id && !retry {
                return Ok(vec![revoked(session, RevocationReason::RefreshReuse)]);
            }
            let ends_at = session.created_at + max_age;
            if now >= session.expires_at || now >= ends_at {
                return Err(SessionError::Expired);
            }
            if retry {
                return Ok(vec![]);
            }
            Ok(vec![Event::Refreshed(Refreshed {
                session_id: session.id,
                refresh_token_id: next,
                generation: session.generation + 1,
                expires_at: (now + lifetime).min(ends_at),
            })])
        }
        (SessionState::Active(session), SessionCommand::Revoke { reason }) => {
            Ok(vec![revoked(session, reason)])
        }
    }
}

impl Session {
    /// Whether `presented` retries the last rotation: it is the token that rotation retired,
    /// and less than `grace` has passed since. A zero grace (the default) admits no retry.
    pub fn is_retry(&self, presented: TokenId, grace: Duration, now: OffsetDateTime) -> bool {
        self.previous_refresh_token_id == Some(presented) && now < self.last_used_at + grace
    }
}

fn revoked(session: &Session, reason: RevocationReason) -> Event {
    Event::Revoked(Revoked {
        session_id: session.id,
        user_id: session.user_id,
        reason,
    })
}

/// How many of a session stream's last events, after its first, determine its state.
///
/// [`apply`] takes every field it changes from the event itself (the new refresh token id, the
/// generation, the expiry) or from the event before it (the retired token), never from a count
/// or a sum, and nothing follows a `Revoked`, which forgets the retired token. So the first
/// event (`LoggedIn`) and the last two (the last two rotations, or the latest `Refreshed` and a
/// `Revoked`) fold to the same state as the whole stream, and loading a session costs the same
/// however often it was refreshed.
pub const STATE_TAIL: u32 = 2;

/// Folds one event, recorded at `stamp`, into the state. Events of other aggregates, and of
/// types this release does not know, are passed over.
pub fn apply(state: SessionState, event: &Event, stamp: Stamp) -> SessionState {
    let at = stamp.at;
    match (state, event) {
        (SessionState::None, Event::LoggedIn(e)) => SessionState::Active(Session {
            id: e.session_id,
            user_id: e.user_id,
            refresh_token_id: e.refresh_token_id,
            previous_refresh_token_id: None,
            generation: 1,
            created_at: at,
            opened_at: stamp.position,
            last_used_at: at,
            expires_at: e.expires_at,
        }),
        (SessionState::Active(mut session), Event::Refreshed(e)) => {
            session.previous_refresh_token_id = Some(session.refresh_token_id);
            session.refresh_token_id = e.refresh_token_id;
            session.generation = e.generation;
            session.last_used_at = at;
            session.expires_at = e.expires_at;
            SessionState::Active(session)
        }
        (SessionState::Active(mut session), Event::Revoked(e)) => {
            // Nothing is retried on a revoked session.
            session.previous_refresh_token_id = None;
            SessionState::Revoked {
                session,
                reason: e.reason,
                at,
            }
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::Duration;
    use uuid::Uuid;

    const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn sid() -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(1))
    }
    fn uid() -> UserId {
        UserId::from_uuid(Uuid::from_u128(2))
    }
    fn token(n: u128) -> TokenId {
        TokenId::from_uuid(Uuid::from_u128(100 + n))
    }
    fn expiry() -> OffsetDateTime {
        T0 + Duration::days(30)
    }

    fn logged_in() -> Event {
        Event::LoggedIn(LoggedIn {
            session_id: sid(),
            user_id: uid(),
            refresh_token_id: token(1),
            expires_at: expiry(),
        })
    }

    fn refreshed(n: u128, generation: u32) -> Event {
        Event::Refreshed(Refreshed {
            session_id: sid(),
            refresh_token_id: token(n),
            generation,
            expires_at: expiry(),
        })
    }

    fn revoked_because(reason: RevocationReason) -> Event {
        Event::Revoked(Revoked {
            session_id: sid(),
            user_id: uid(),
            reason,
        })
    }

    fn at(position: u64, at: OffsetDateTime) -> Stamp {
        Stamp { position, at }
    }

    fn given(events: &[Event]) -> SessionState {
        events
            .iter()
            .zip(1..)
            .fold(SessionState::None, |state, (event, position)| {
                apply(state, event, at(position, T0))
            })
    }

    fn refresh(presented: u128, next: u128) -> SessionCommand {
        refresh_with_grace(presented, next, 0)
    }

    fn refresh_with_grace(presented: u128, next: u128, seconds: i64) -> SessionCommand {
        SessionCommand::Refresh {
            presented: token(presented),
            next: token(next),
            lifetime: Duration::days(30),
            max_age: Duration::days(90),
            reuse_grace: Duration::seconds(seconds),
        }
    }

    #[test]
    fn the_first_event_and_the_last_two_fold_to_the_state_of_the_whole_stream() {
        let mut stream = vec![logged_in()];
        stream.extend((2..40).map(|n| refreshed(n, n as u32)));
        stream.push(revoked_because(RevocationReason::Logout));
        let stamp = |i: usize| at(i as u64 + 1, T0 + Duration::minutes(i as i64));
        for len in 1..=stream.len() {
            let prefix = &stream[..len];
            let whole = prefix
                .iter()
                .enumerate()
                .fold(SessionState::None, |state, (i, e)| {
                    apply(state, e, stamp(i))
                });
            let tail_from = len.saturating_sub(STATE_TAIL as usize).max(1);
            let edges = std::iter::once(0)
                .chain(tail_from..len)
                .fold(SessionState::None, |state, i| {
                    apply(state, &prefix[i], stamp(i))
                });
            assert_eq!(edges, whole, "after {len} events");
        }
    }

    #[test]
    fn given_nothing_when_start_then_logged_in() {
        let command = SessionCommand::Start {
            session_id: sid(),
            user_id: uid(),
            refresh_token_id: token(1),
            expires_at: expiry(),
        };
        assert_eq!(decide(&given(&[]), command, T0), Ok(vec![logged_in()]));
    }

    #[test]
    fn given_started_when_start_again_then_refused() {
        let command = SessionCommand::Start {
            session_id: sid(),
            user_id: uid(),
            refresh_token_id: token(9),
            expires_at: expiry(),
        };
        assert_eq!(
            decide(&given(&[logged_in()]), command, T0),
            Err(SessionError::AlreadyStarted)
        );
    }

    #[test]
    fn given_nothing_when_refresh_or_revoke_then_unknown_session() {
        assert_eq!(
            decide(&given(&[]), refresh(1, 2), T0),
            Err(SessionError::UnknownSession)
        );
        let revoke = SessionCommand::Revoke {
            reason: RevocationReason::Logout,
        };
        assert_eq!(
            decide(&given(&[]), revoke, T0),
            Err(SessionError::UnknownSession)
        );
    }

    #[test]
    fn given_active_when_refresh_with_current_token_then_refreshed_to_next_generation() {
        assert_eq!(
            decide(&given(&[logged_in()]), refresh(1, 2), T0),
            Ok(vec![refreshed(2, 2)])
        );
        assert_eq!(
            decide(&given(&[logged_in(), refreshed(2, 2)]), refresh(2, 3), T0),
            Ok(vec![refreshed(3, 3)])
        );
    }

    #[test]
    fn given_rotated_when_refresh_with_retired_token_then_session_revoked_for_reuse() {
        let state = given(&[logged_in(), refreshed(2, 2)]);
        assert_eq!(
            decide(&state, refresh(1, 3), T0),
            Ok(vec![revoked_because(RevocationReason::RefreshReuse)])
        );
    }

    /// Logged in at T0 with token 1, rotated to 2 at T0 + 1 min.
    fn rotated_a_minute_in() -> SessionState {
        apply(
            given(&[logged_in()]),
            &refreshed(2, 2),
            at(2, T0 + Duration::minutes(1)),
        )
    }

    #[test]
    fn within_the_grace_the_token_just_retired_retries_the_rotation_and_records_nothing() {
        let state = rotated_a_minute_in();
        let now = T0 + Duration::minutes(1) + Duration::seconds(9);
        assert_eq!(
            decide(&state, refresh_with_grace(1, 3, 10), now),
            Ok(vec![])
        );
        // The current token still rotates as usual.
        let rotation = decide(&state, refresh_with_grace(2, 3, 10), now);
        assert!(
            matches!(rotation.as_deref(), Ok([Event::Refreshed(e)]) if e.refresh_token_id == token(3)),
            "{rotation:?}"
        );
    }

    #[test]
    fn after_the_grace_or_without_one_the_retired_token_revokes() {
        let state = rotated_a_minute_in();
        let reuse = Ok(vec![revoked_because(RevocationReason::RefreshReuse)]);
        let rotated_at = T0 + Duration::minutes(1);
        assert_eq!(
            decide(
                &state,
                refresh_with_grace(1, 3, 10),
                rotated_at + Duration::seconds(10)
            ),
            reuse
        );
        assert_eq!(decide(&state, refresh(1, 3), rotated_at), reuse);
    }

    #[test]
    fn only_the_last_retired_token_retries_never_an_older_one() {
        let state = apply(
            rotated_a_minute_in(),
            &refreshed(3, 3),
            at(3, T0 + Duration::minutes(2)),
        );
        let now = T0 + Duration::minutes(2);
        assert_eq!(
            decide(&state, refresh_with_grace(2, 4, 10), now),
            Ok(vec![])
        );
        assert_eq!(
            decide(&state, refresh_with_grace(1, 4, 10), now),
            Ok(vec![revoked_because(RevocationReason::RefreshReuse)])
        );
    }

    #[test]
    fn a_retry_on_a_revoked_or_expired_session_is_refused() {
        let revoked = apply(
            rotated_a_minute_in(),
            &revoked_because(RevocationReason::Logout),
            at(3, T0 + Duration::minutes(1)),
        );
        let now = T0 + Duration::minutes(1);
        assert_eq!(
            decide(&revoked, refresh_with_grace(1, 3, 10), now),
            Err(SessionError::Revoked)
        );
        let short = SessionCommand::Refresh {
            presented: token(1),
            next: token(3),
            lifetime: Duration::days(30),
            max_age: Duration::seconds(61),
            reuse_grace: Duration::seconds(10),
        };
        assert_eq!(
            decide(&rotated_a_minute_in(), short, now + Duration::seconds(1)),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn a_refresh_never_extends_the_session_past_its_maximum_age() {
        let short = SessionCommand::Refresh {
            presented: token(1),
            next: token(2),
            lifetime: Duration::days(30),
            max_age: Duration::days(1),
            reuse_grace: Duration::ZERO,
        };
        let later = T0 + Duration::hours(20);
        let Ok(events) = decide(&given(&[logged_in()]), short, later) else {
            panic!("refused")
        };
        let [Event::Refreshed(refreshed)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(refreshed.expires_at, T0 + Duration::days(1));
    }

    #[test]
    fn given_a_session_at_its_maximum_age_when_refresh_then_expired() {
        let command = SessionCommand::Refresh {
            presented: token(1),
            next: token(2),
            lifetime: Duration::days(30),
            max_age: Duration::days(1),
            reuse_grace: Duration::ZERO,
        };
        assert_eq!(
            decide(&given(&[logged_in()]), command, T0 + Duration::days(1)),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn given_expired_when_refresh_then_expired() {
        let later = expiry() + Duration::seconds(1);
        assert_eq!(
            decide(&given(&[logged_in()]), refresh(1, 2), later),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn given_revoked_when_refresh_then_revoked() {
        let state = given(&[logged_in(), revoked_because(RevocationReason::Logout)]);
        assert_eq!(
            decide(&state, refresh(1, 2), T0),
            Err(SessionError::Revoked)
        );
    }

    #[test]
    fn given_active_when_revoke_then_revoked_with_that_reason() {
        let revoke = SessionCommand::Revoke {
            reason: RevocationReason::Logout,
        };
        assert_eq!(
            decide(&given(&[logged_in()]), revoke, T0),
            Ok(vec![revoked_because(RevocationReason::Logout)])
        );
    }

    #[test]
    fn given_revoked_when_revoke_again_then_nothing_is_recorded() {
        let state = given(&[logged_in(), revoked_because(RevocationReason::Logout)]);
        let revoke = SessionCommand::Revoke {
            reason: RevocationReason::Admin,
        };
        assert_eq!(decide(&state, revoke, T0), Ok(vec![]));
    }

    #[test]
    fn applying_a_refresh_moves_the_current_token_and_last_use() {
        let later = T0 + Duration::minutes(5);
        let state = apply(given(&[logged_in()]), &refreshed(2, 2), at(2, later));
        let SessionState::Active(session) = state else {
            panic!("not active")
        };
        assert_eq!(session.refresh_token_id, token(2));
        assert_eq!(session.previous_refresh_token_id, Some(token(1)));
        assert_eq!(session.generation, 2);
        assert_eq!(session.created_at, T0);
        assert_eq!(session.opened_at, 1);
        assert_eq!(session.last_used_at, later);
    }

    #[test]
    fn applying_revoked_keeps_the_session_facts() {
        let state = given(&[logged_in(), revoked_because(RevocationReason::RefreshReuse)]);
        assert!(state.is_revoked());
        assert_eq!(state.session().map(|s| s.id), Some(sid()));
    }
}
