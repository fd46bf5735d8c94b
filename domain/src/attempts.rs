//! Password checks for one name: the login throttle, decided from the name's login stream.
//!
//! "After `max_failures` failed logins within `window`, refuse": counted naively (look, hash,
//! then record the failure) that lets N parallel guesses all pass the look before any failure
//! is recorded. So a check is *reserved* first: `LoginAttempted` is appended at the stream's
//! version before the password is hashed, and a reservation counts as a failure until
//! `LoginSucceeded` concludes it. Parallel reservations conflict on the version; each retry sees
//! the others, so at most `max_failures` checks are ever in the window. A reservation whose
//! process died before concluding stays counted: refusing too much is the safe side.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::event::LoginAttempted;
use crate::{AttemptId, Event};

/// When password checks for one name are refused: after `max_failures` unsuccessful checks
/// within `window` (0 turns throttling off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::minutes(15),
        }
    }
}

/// Too many recent unsuccessful checks; the next is allowed after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed login attempts; retry after {retry_after}")]
pub struct Throttled {
    pub retry_after: Duration,
}

/// How long a reserved check may stay open before it counts as failed: hashing takes well under
/// a second, so a check still open after this has lost its process.
pub const IN_FLIGHT: Duration = Duration::minutes(1);

/// How long a client is asked to wait when the limit is taken up by checks still in flight,
/// which may yet succeed.
pub const IN_FLIGHT_RETRY: Duration = Duration::seconds(1);

/// Every check of one name that may still count: the fold of its stream, not yet seen from any
/// moment. It grows by [`CheckLog::apply`] and is bounded by [`CheckLog::forget_before`], so it
/// can be kept beside the stream as a snapshot and brought up to date with the events after
/// it: what a check reads then follows the checks that count, never the name's history (an
/// account logged into thousands of times in the window reads as one logged into once).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckLog {
    /// Reserved and not concluded, by when each was reserved.
    open: BTreeMap<AttemptId, OffsetDateTime>,
    /// Failed, by when each was reserved (recorded, for failures before reservations).
    failed: Vec<OffsetDateTime>,
}

impl CheckLog {
    /// Takes in one event of the stream (oldest first), recorded at `at`.
    pub fn apply(&mut self, event: &Event, at: OffsetDateTime) {
        match event {
            Event::LoginAttempted(e) => {
                self.open.insert(e.attempt_id, at);
            }
            Event::LoginSucceeded(e) => {
                self.open.remove(&e.attempt_id);
            }
            // The right password, for an account that may not log in: not a guess.
            Event::LoginRefused(e) => {
                self.open.remove(&e.attempt_id);
            }
            Event::LoginFailed(e) => match e.attempt_id {
                // A conclusion of a reservation no longer kept (older than anything that
                // counts) changes nothing.
                Some(attempt) => self.failed.extend(self.open.remove(&attempt)),
                // Recorded before reservations existed: it counts by itself.
                None => self.failed.push(at),
            },
            _ => {}
        }
    }

    /// Forgets the checks reserved before `since`: no window that ends now reaches them.
    pub fn forget_before(&mut self, since: OffsetDateTime) {
        self.open.retain(|_, at| *at >= since);
        self.failed.retain(|at| *at >= since);
    }

    /// How many checks it holds, open and failed: what keeping it costs.
    pub fn len(&self) -> usize {
        self.open.len() + self.failed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The checks that count at `now`: those reserved within `window` that failed or were left
    /// open for longer than [`IN_FLIGHT`], and those still in flight.
    pub fn at(&self, now: OffsetDateTime, window: Duration) -> Attempts {
        let since = now - window;
        let mut failed: Vec<OffsetDateTime> = self
            .failed
            .iter()
            .copied()
            .filter(|at| *at >= since)
            .collect();
        let mut in_flight = 0;
        for at in self.open.values().filter(|at| **at >= since) {
            if *at <= now - IN_FLIGHT {
                failed.push(*at);
            } else {
                in_flight += 1;
            }
        }
        failed.sort_unstable();
        Attempts { failed, in_flight }
    }
}

/// The checks of one name that count against it now, each by the time it was reserved: those
/// within the window that failed (or were left open too long), and those still in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempts {
    failed: Vec<OffsetDateTime>,
    in_flight: usize,
}

impl Attempts {
    /// Folds a stream's events (oldest first, each with its time) as they stand at `now`;
    /// anything reserved before `now - window` no longer counts.
    pub fn fold<'a>(
        events: impl IntoIterator<Item = (&'a Event, OffsetDateTime)>,
        now: OffsetDateTime,
        window: Duration,
    ) -> Self {
        let mut log = CheckLog::default();
        for (event, at) in events {
            log.apply(event, at);
        }
        log.at(now, window)
    }

    /// How many checks count against the name, failed and in flight.
    pub fn unsuccessful(&self) -> usize {
        self.failed.len() + self.in_flight
    }

    /// Reserves a check (`LoginAttempted`) if the name is under its limit.
    ///
    /// # Errors
    /// [`Throttled`] when `max_failures` checks already count: until enough failures leave
    /// the window for one more, or [`IN_FLIGHT_RETRY`] when checks in flight fill the limit.
    pub fn reserve(
        &self,
        attempt_id: AttemptId,
        now: OffsetDateTime,
        throttle: Throttle,
    ) -> Result<Event, Throttled> {
        let limit = throttle.max_failures as usize;
        if limit > 0 && self.failed.len() >= limit {
            // With n failed and a limit of l, n - l + 1 of them must leave the window.
            let frees_one = self.failed[self.failed.len() - limit];
            return Err(Throttled {
                retry_after: (frees_one + throttle.window - now).max(Duration::ZERO),
            });
        }
        if limit > 0 && self.unsuccessful() >= limit {
            return Err(Throttled {
                retry_after: IN_FLIGHT_RETRY,
            });
        }
        Ok(Event::LoginAttempted(LoginAttempted { attempt_id }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LoginFailed, LoginFailure, LoginSucceeded};
    use crate::SessionId;
    use time::macros::datetime;
    use uuid::Uuid;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn attempt(n: u128) -> AttemptId {
        AttemptId::from_uuid(Uuid::from_u128(n))
    }
    fn attempted(n: u128) -> Event {
        Event::LoginAttempted(LoginAttempted {
            attempt_id: attempt(n),
        })
    }
    fn succeeded(n: u128) -> Event {
        Event::LoginSucceeded(LoginSucceeded {
            attempt_id: attempt(n),
            session_id: SessionId::from_uuid(Uuid::from_u128(1000 + n)),
        })
    }
    fn failed(n: Option<u128>) -> Event {
        Event::LoginFailed(LoginFailed {
            reason: LoginFailure::WrongPassword,
            attempt_id: n.map(attempt),
        })
    }
    fn minutes_ago(m: i64) -> OffsetDateTime {
        NOW - Duration::minutes(m)
    }

    fn given(events: &[(Event, OffsetDateTime)]) -> Attempts {
        Attempts::fold(
            events.iter().map(|(e, at)| (e, *at)),
            NOW,
            Throttle::default().window,
        )
    }

    #[test]
    fn given_the_limit_taken_by_checks_in_flight_when_reserve_then_throttled_for_a_moment() {
        let attempts = given(&[
            (attempted(1), minutes_ago(10)),
            (failed(Some(1)), minutes_ago(10)),
            (attempted(2), NOW),
            (attempted(3), NOW),
            (attempted(4), NOW),
            (attempted(5), NOW),
        ]);
        assert_eq!(
            attempts.reserve(attempt(6), NOW, Throttle::default()),
            Err(Throttled {
                retry_after: IN_FLIGHT_RETRY
            })
        );
    }

    #[test]
    fn open_and_failed_checks_count_and_successful_ones_do_not() {
        let attempts = given(&[
            (attempted(1), minutes_ago(10)),
            (failed(Some(1)), minutes_ago(10)),
            (attempted(2), minutes_ago(5)),
            (succeeded(2), minutes_ago(5)),
            (attempted(3), minutes_ago(1)),
        ]);
        assert_eq!(
            attempts.unsuccessful(),
            2,
            "the failed one and the open one"
        );
    }

    #[test]
    fn failures_recorded_before_reservations_existed_count_by_themselves() {
        let attempts = given(&[
            (failed(None), minutes_ago(3)),
            (failed(None), minutes_ago(2)),
        ]);
        assert_eq!(attempts.unsuccessful(), 2);
    }

    #[test]
    fn given_five_unsuccessful_checks_in_the_window_when_reserve_then_throttled_until_the_oldest_leaves(
    ) {
        let attempts = given(&[
            (attempted(1), minutes_ago(14)),
            (attempted(2), minutes_ago(10)),
            (failed(Some(2)), minutes_ago(10)),
            (attempted(3), minutes_ago(5)),
            (attempted(4), minutes_ago(2)),
            (failed(None), minutes_ago(2)),
        ]);
        // 1, 3 and 4 were left open over a minute: failed too.
        assert_eq!(
            attempts.reserve(attempt(6), NOW, Throttle::default()),
            Err(Throttled {
                retry_after: Duration::minutes(1)
            })
        );
    }

    #[test]
    fn given_checks_older_than_the_window_when_reserve_then_reserved() {
        let attempts = given(&[
            (attempted(1), minutes_ago(16)),
            (attempted(2), minutes_ago(10)),
            (attempted(3), minutes_ago(5)),
            (attempted(4), minutes_ago(2)),
            (attempted(5), minutes_ago(1)),
        ]);
        assert_eq!(
            attempts.reserve(attempt(6), NOW, Throttle::default()),
            Ok(attempted(6))
        );
    }

    #[test]
    fn a_log_kept_as_a_snapshot_and_brought_up_to_date_counts_as_the_whole_stream_does() {
        let events = [
            (attempted(1), minutes_ago(40)),
            (failed(Some(1)), minutes_ago(40)),
            (attempted(2), minutes_ago(14)),
            (attempted(3), minutes_ago(10)),
            (succeeded(3), minutes_ago(10)),
            (failed(Some(2)), minutes_ago(9)),
            (failed(None), minutes_ago(3)),
            (attempted(4), NOW),
        ];
        let whole = given(&events);
        for cut in 0..events.len() {
            let mut kept = CheckLog::default();
            for (event, at) in &events[..cut] {
                kept.apply(event, *at);
            }
            // Kept some minutes ago: what no window ending then reached is forgotten.
            kept.forget_before(minutes_ago(2) - Throttle::default().window);
            let stored = serde_json::to_string(&kept).unwrap();
            let mut log: CheckLog = serde_json::from_str(&stored).unwrap();
            for (event, at) in &events[cut..] {
                log.apply(event, *at);
            }
            assert_eq!(
                log.at(NOW, Throttle::default().window),
                whole,
                "cut at {cut}"
            );
        }
        assert_eq!(
            whole.unsuccessful(),
            3,
            "2 (failed), the old failure, 4 in flight"
        );
    }

    #[test]
    fn successful_checks_leave_nothing_to_keep() {
        let mut log = CheckLog::default();
        for n in 0..3_000 {
            log.apply(&attempted(n), NOW);
            log.apply(&succeeded(n), NOW);
        }
        assert!(log.is_empty());
    }

    #[test]
    fn no_limit_never_throttles() {
        let many: Vec<_> = (0..50).map(|n| (attempted(n), minutes_ago(1))).collect();
        let off = Throttle {
            max_failures: 0,
            ..Throttle::default()
        };
        assert!(given(&many).reserve(attempt(99), NOW, off).is_ok());
    }
}
