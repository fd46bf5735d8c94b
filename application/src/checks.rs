//! Password checks under the login throttle, shared by login and password change: a check is
//! admitted into the hashing queue ([`crate::admission`]), reserved on the name's login stream
//! before the password is hashed, then concluded (see [`authlog_domain::attempts`] for why).

use std::sync::Arc;

use authlog_domain::attempts::{Attempts, Throttle};
use authlog_domain::event::{LoginFailed, LoginFailure, LoginSucceeded};
use authlog_domain::{AttemptId, Event, SessionId, StreamId, Username};
use time::{Duration, OffsetDateTime};

use crate::admission::{Admission, Admitted, Busy};
use crate::ports::{
    Clock, EventStore, ExpectedVersion, IdGenerator, Metadata, StoreError, StreamWrite,
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

/// A reserved check, to be concluded by [`PasswordChecks::failed`] or by appending
/// [`PasswordChecks::succeeded`] with whatever the right password allows.
pub struct Reserved {
    username: Username,
    /// `None` when throttling is off: nothing was reserved, so nothing is concluded.
    attempt: Option<AttemptId>,
    /// The check's place in the hashing queue, held until the check is done with.
    _admitted: Admitted,
}

pub struct PasswordChecks {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    throttle: Throttle,
    admission: Arc<Admission>,
}

impl PasswordChecks {
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        throttle: Throttle,
        admission: Arc<Admission>,
    ) -> Self {
        Self {
            store,
            clock,
            ids,
            throttle,
            admission,
        }
    }

    /// Admits the check into the hashing queue, then reserves it for `username`
    /// (`LoginAttempted`), unless too many checks for it failed or are in flight. Concurrent
    /// reservations race on the stream's version; each loser decides again on what the winner
    /// recorded. Admission comes first: a refused request costs no database work.
    ///
    /// # Errors
    /// [`CheckError::Busy`] when the queue is full; [`CheckError::Throttled`] at the limit; a
    /// store failure.
    pub async fn reserve(
        &self,
        username: &Username,
        metadata: &Metadata,
    ) -> Result<Reserved, CheckError> {
        let admitted = self.admission.admit(metadata.client_addr.as_deref())?;
        if self.throttle.max_failures == 0 {
            return Ok(Reserved {
                username: username.clone(),
                attempt: None,
                _admitted: admitted,
            });
        }
        let stream = &StreamId::login_attempts(username);
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
                to_append(vec![reserved], username.canonical(), metadata, now),
            );
            Ok(settled(self.store.append(vec![write]).await)?.map(|_| attempt))
        })
        .await;
        if matches!(attempt, Err(CheckError::Throttled { .. })) {
            metrics::counter!("authlog_logins_total", "outcome" => "throttled").increment(1);
        }
        Ok(Reserved {
            username: username.clone(),
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
            username: reserved.username.canonical().to_owned(),
            reason,
            attempt_id: reserved.attempt,
        });
        let write = StreamWrite::new(
            StreamId::login_attempts(&reserved.username),
            ExpectedVersion::Any,
            to_append(
                vec![event],
                reserved.username.canonical(),
                metadata,
                self.clock.now(),
            ),
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
            StreamId::login_attempts(&reserved.username),
            ExpectedVersion::Any,
            to_append(vec![event], reserved.username.canonical(), metadata, now),
        ))
    }

    /// The name's checks that count now, and the stream version they were read at. The read
    /// takes the stream's tail, larger until it reaches back past the window: its cost follows
    /// the checks in the window, not the name's history.
    async fn attempts(&self, stream: &StreamId) -> Result<(Attempts, u64), StoreError> {
        let now = self.clock.now();
        let since = now - self.throttle.window;
        let mut count = self
            .throttle
            .max_failures
            .saturating_mul(4)
            .saturating_add(8);
        loop {
            let tail = self.store.read_stream_tail(stream.clone(), count).await?;
            let version = tail.last().map_or(0, |e| e.stream_version);
            let whole_window =
                tail.len() < count as usize || tail.first().is_some_and(|e| e.recorded_at < since);
            if whole_window {
                let events = tail.iter().map(|e| (&e.event, e.recorded_at));
                return Ok((Attempts::fold(events, now, self.throttle.window), version));
            }
            count = count.saturating_mul(4);
        }
    }
}
