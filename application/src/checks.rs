//! Checks of a secret under the login throttle, shared by login and password change: a check
//! is admitted into the hashing queue ([`crate::admission`]), reserved on its login stream
//! before the secret is checked, then concluded (see [`authlog_domain::attempts`] for why).
//!
//! The reservation does not know what is checked: the caller checks between
//! [`ThrottledChecks::reserve`] and the conclusion ([`ThrottledChecks::failed`] or
//! [`ThrottledChecks::succeeded`]). A password is checked so today; a second-factor code will
//! be checked the same way, counted against the same limit, with the same atomic reservation.
//!
//! Whose checks they are ([`Whom`]) is an account's id, or for a name that is no account its
//! concealed form ([`NameConcealer`]): neither the stream, nor the subject, nor the events
//! hold a name typed at a login.

use std::sync::Arc;

use authlog_domain::attempts::{Attempts, CheckLog, Throttle};
use authlog_domain::event::{
    LoginFailed, LoginFailure, LoginRefusal, LoginRefused, LoginSucceeded,
};
use authlog_domain::{AttemptId, Event, SessionId, StreamId, UserId, Username};
use time::{Duration, OffsetDateTime};

use crate::admission::{Admission, Admitted, Busy};
use crate::ports::{
    Account, Clock, EventStore, ExpectedVersion, IdGenerator, Metadata, NameConcealer,
    RecordedEvent, Snapshot, StoreError, StreamWrite,
};
use crate::streams::{settled, to_append, until_settled};

/// Why a check was not reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// Too many recent unsuccessful checks for this name; try again after `retry_after`.
    #[error("Too many failed login attempts; try again later")]
    Throttled { retry_after: Duration },
    /// The hashing queue is full, for this client or in total.
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whose password checks these are: the login stream's key and the checks' subject. An
/// account's id, or a name that is no account's, concealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whom(String);

impl Whom {
    fn stream(&self) -> StreamId {
        StreamId::login_attempts(&self.0)
    }
}

/// A reserved check, to be concluded by [`ThrottledChecks::failed`] or by appending
/// [`ThrottledChecks::succeeded`] with whatever the right password allows.
pub struct Reserved {
    whom: Whom,
    /// `None` when throttling is off: nothing was reserved, so nothing is concluded.
    attempt: Option<AttemptId>,
    /// The check's place in the hashing queue, held until the check is done with.
    _admitted: Admitted,
}

pub struct ThrottledChecks {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    throttle: Throttle,
    admission: Arc<Admission>,
    names: Arc<dyn NameConcealer>,
}

impl ThrottledChecks {
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        throttle: Throttle,
        admission: Arc<Admission>,
        names: Arc<dyn NameConcealer>,
    ) -> Self {
        Self {
            store,
            clock,
            ids,
            throttle,
            admission,
            names,
        }
    }

    /// Admits a check into the hashing queue: first, so that a refused request costs no
    /// database work.
    ///
    /// # Errors
    /// [`Busy`] when the queue is full, for this client or in total.
    pub fn admit(&self, metadata: &Metadata) -> Result<Admitted, Busy> {
        self.admission.admit(metadata.client_addr.as_deref())
    }

    /// Whose checks a login as `username` makes: `account`'s (the account the name is, if
    /// any), or the name's, concealed.
    ///
    /// # Errors
    /// A store failure reading or keeping the day's concealing key.
    pub async fn whom(
        &self,
        username: &Username,
        account: Option<&Account>,
    ) -> Result<Whom, StoreError> {
        Ok(match account {
            Some(account) => Self::of_user(account.user_id),
            None => Whom(
                self.names
                    .conceal(username.canonical(), self.clock.now())
                    .await?,
            ),
        })
    }

    /// Whose checks the account `user_id` makes (a password change).
    pub fn of_user(user_id: UserId) -> Whom {
        Whom(user_id.to_string())
    }

    /// Reserves a check (`LoginAttempted`) for `whom`, already `admitted`, unless too many of
    /// its checks failed or are in flight. Concurrent reservations race on the stream's
    /// version; each loser decides again on what the winner recorded.
    ///
    /// # Errors
    /// [`CheckError::Throttled`] at the limit; a store failure.
    pub async fn reserve(
        &self,
        admitted: Admitted,
        whom: Whom,
        metadata: &Metadata,
    ) -> Result<Reserved, CheckError> {
        if self.throttle.max_failures == 0 {
            return Ok(Reserved {
                whom,
                attempt: None,
                _admitted: admitted,
            });
        }
        let stream = &whom.stream();
        let subject = whom.0.as_str();
        let contended = CheckError::Throttled {
            retry_after: authlog_domain::attempts::IN_FLIGHT_RETRY,
        };
        let attempt = until_settled(contended, move || async move {
            let (attempts, version) = self.attempts(stream).await?;
            let attempt = AttemptId::from_uuid(self.ids.new_id());
            let now = self.clock.now();
            let reserved = attempts.reserve(attempt, now, self.throttle).map_err(|t| {
                CheckError::Throttled {
                    retry_after: t.retry_after,
                }
            })?;
            let write = StreamWrite::new(
                stream.clone(),
                ExpectedVersion::after(version),
                to_append(vec![reserved], subject, metadata, now),
            );
            Ok(settled(self.store.append(vec![write]).await)?.map(|_| attempt))
        })
        .await;
        if matches!(attempt, Err(CheckError::Throttled { .. })) {
            metrics::counter!("authlog_logins_total", "outcome" => "throttled").increment(1);
        }
        Ok(Reserved {
            whom,
            attempt: Some(attempt?),
            _admitted: admitted,
        })
    }

    /// Concludes `reserved` as failed (`LoginFailed`, which audit and the analysts' queries
    /// read; the throttle counted the reservation already).
    ///
    /// # Errors
    /// A store failure.
    pub async fn failed(
        &self,
        reserved: &Reserved,
        reason: LoginFailure,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let event = Event::LoginFailed(LoginFailed {
            reason,
            attempt_id: reserved.attempt,
        });
        self.conclude(reserved, event, metadata).await
    }

    /// Concludes `reserved` as a right password that opened no session, for `reason`
    /// (`LoginRefused`): it does not count against the throttle. A check reserved before
    /// reservations existed has nothing to conclude.
    ///
    /// # Errors
    /// A store failure.
    pub async fn refused(
        &self,
        reserved: &Reserved,
        reason: LoginRefusal,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let Some(attempt_id) = reserved.attempt else {
            return Ok(());
        };
        let event = Event::LoginRefused(LoginRefused { attempt_id, reason });
        self.conclude(reserved, event, metadata).await
    }

    /// Appends `event`, which concludes `reserved`, to the name's stream on its own: nothing
    /// else commits with a failed or refused check.
    async fn conclude(
        &self,
        reserved: &Reserved,
        event: Event,
        metadata: &Metadata,
    ) -> Result<(), StoreError> {
        let write = StreamWrite::new(
            reserved.whom.stream(),
            ExpectedVersion::Any,
            to_append(vec![event], &reserved.whom.0, metadata, self.clock.now()),
        );
        self.store
            .append(vec![write])
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(())
    }

    /// The append that concludes `reserved` as successful, for the session `session` that
    /// checked the password: to go in one transaction with what the right password allows.
    pub fn succeeded(
        &self,
        reserved: &Reserved,
        session: SessionId,
        metadata: &Metadata,
        now: OffsetDateTime,
    ) -> Option<StreamWrite> {
        let attempt_id = reserved.attempt?;
        let event = Event::LoginSucceeded(LoginSucceeded {
            attempt_id,
            session_id: session,
        });
        Some(StreamWrite::new(
            reserved.whom.stream(),
            ExpectedVersion::Any,
            to_append(vec![event], &reserved.whom.0, metadata, now),
        ))
    }

    /// The name's checks that count now, and the stream version they were read at.
    ///
    /// The read starts from the snapshot kept beside the stream ([`CheckLog`], which forgets
    /// concluded successes) and takes the events after it; without a usable one, the stream's
    /// tail, larger until it reaches back past the window. When it had to read more than
    /// [`SNAPSHOT_EVERY`] events, it keeps a new snapshot. Either way its cost follows the
    /// checks that count and those since the last snapshot, never the name's successes: an
    /// account logged into 3,000 times in the window reads as one logged into once.
    async fn attempts(&self, stream: &StreamId) -> Result<(Attempts, u64), StoreError> {
        let now = self.clock.now();
        let kept = self.store.snapshot(stream.clone()).await?.and_then(|kept| {
            let state: KeptChecks = serde_json::from_str(&kept.state).ok()?;
            state
                .serves(self.throttle)
                .then_some((kept.version, state.log))
        });
        let after = match &kept {
            Some((version, _)) => {
                let after = self
                    .store
                    .read_stream_after(stream.clone(), *version, AFTER_SNAPSHOT)
                    .await?;
                // Far behind (a snapshot of long ago): the window's tail is the shorter read.
                (after.len() < AFTER_SNAPSHOT as usize).then_some(after)
            }
            None => None,
        };
        let (mut log, from, events) = match (kept, after) {
            (Some((version, log)), Some(after)) => (log, version, after),
            _ => (CheckLog::default(), 0, self.window_tail(stream, now).await?),
        };
        for event in &events {
            log.apply(&event.event, event.recorded_at);
        }
        let version = events.last().map_or(from, |e| e.stream_version);
        if events.len() > SNAPSHOT_EVERY {
            log.forget_before(now - self.throttle.window - SNAPSHOT_MARGIN);
            let state = KeptChecks {
                version: KeptChecks::VERSION,
                window_seconds: (self.throttle.window + SNAPSHOT_MARGIN).whole_seconds(),
                log: log.clone(),
            };
            if let Ok(state) = serde_json::to_string(&state) {
                // A cache: failing to keep it costs the next check a longer read, nothing else.
                if let Err(e) = self
                    .store
                    .keep_snapshot(stream.clone(), Snapshot { version, state })
                    .await
                {
                    tracing::warn!(error = %e, "cannot keep a snapshot of a login stream");
                }
            }
        }
        Ok((log.at(now, self.throttle.window), version))
    }

    /// The stream's tail from before the window on (or the whole stream): larger reads until
    /// it reaches back past the window, so it costs what the window holds.
    async fn window_tail(
        &self,
        stream: &StreamId,
        now: OffsetDateTime,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let since = now - self.throttle.window;
        let mut count = self
            .throttle
            .max_failures
            .saturating_mul(4)
            .saturating_add(8);
        loop {
            let tail = self.store.read_stream_tail(stream.clone(), count).await?;
            let whole_window =
                tail.len() < count as usize || tail.first().is_some_and(|e| e.recorded_at < since);
            if whole_window {
                return Ok(tail);
            }
            count = count.saturating_mul(4);
        }
    }
}

/// A read that took more events than this after the kept snapshot keeps a new one: at most one
/// snapshot write in so many checks of a busy name.
const SNAPSHOT_EVERY: usize = 32;

/// The most events read after a snapshot; more, and the window's tail is read instead.
const AFTER_SNAPSHOT: u32 = 1_024;

/// How much longer than the window a snapshot remembers: instances' clocks differ a little,
/// and one whose clock is behind must still find what its window reaches.
const SNAPSHOT_MARGIN: Duration = Duration::minutes(5);

/// The snapshot of a login stream as it is kept ([`crate::ports::Snapshot::state`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptChecks {
    /// Of this shape; another is passed over (read as no snapshot).
    version: u32,
    /// How far back the log remembers: a snapshot kept under a shorter window (a setting
    /// raised since) has forgotten checks that count now, and is passed over.
    window_seconds: i64,
    log: CheckLog,
}

impl KeptChecks {
    const VERSION: u32 = 1;

    /// Whether the snapshot holds everything `throttle` counts.
    fn serves(&self, throttle: Throttle) -> bool {
        self.version == Self::VERSION && self.window_seconds >= throttle.window.whole_seconds()
    }
}
