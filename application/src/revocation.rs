//! Which sessions are revoked, answered from memory on every request.
//!
//! Only sessions revoked within the last access-token lifetime (plus the verifier's leeway)
//! matter here: any access token of an older revoked session has expired by itself, and
//! refresh tokens are always checked against the session stream. So the set stays small, is
//! rebuilt at start from recent `Revoked` events, and is kept current by following the log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use authlog_domain::{Event, SessionId};
use time::{Duration, OffsetDateTime};

use crate::ports::{EventStore, RevocationView, StoreError};

/// The in-memory revocation view.
pub struct RevocationSet {
    /// Session id to revocation time.
    revoked: RwLock<HashMap<SessionId, OffsetDateTime>>,
    /// How long an entry can matter: access-token lifetime plus leeway.
    window: Duration,
}

impl RevocationSet {
    pub fn new(window: Duration) -> Self {
        Self {
            revoked: RwLock::new(HashMap::new()),
            window,
        }
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.revoked.read().map_or(0, |set| set.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevocationView for RevocationSet {
    fn is_revoked(&self, session: SessionId) -> bool {
        // A poisoned lock means a writer panicked mid-update; refusing every token is the safe
        // answer to not knowing.
        self.revoked
            .read()
            .map_or(true, |set| set.contains_key(&session))
    }

    fn record(&self, session: SessionId, at: OffsetDateTime) {
        if let Ok(mut set) = self.revoked.write() {
            set.insert(session, at);
            // Pruning on write keeps the set bounded without a timer; the newest revocation
            // time stands in for "now", which the log's order makes safe.
            let horizon = at - self.window;
            set.retain(|_, revoked_at| *revoked_at >= horizon);
        }
    }
}

/// Keeps a [`RevocationView`] current from the log.
pub struct RevocationFeed {
    store: Arc<dyn EventStore>,
    view: Arc<dyn RevocationView>,
    /// The last log position seen.
    position: AtomicU64,
}

/// How many events one poll reads at most before handing back control.
const BATCH: u32 = 1_000;

impl RevocationFeed {
    /// Fills `view` with the sessions revoked since `now - window` and starts following the log
    /// from its current head. The head is read first, so an event committed during the start
    /// is either in the recent read, or after the head and so seen by the next poll.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    pub async fn start(
        store: Arc<dyn EventStore>,
        view: Arc<dyn RevocationView>,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<Self, StoreError> {
        let head = store.head().await?;
        for recorded in store.read_type_since("Revoked", now - window).await? {
            if let Event::Revoked(revoked) = &recorded.event {
                view.record(revoked.session_id, recorded.recorded_at);
            }
        }
        Ok(Self {
            store,
            view,
            position: AtomicU64::new(head),
        })
    }

    /// Reads what the log gained since the last poll and records its revocations; answers how
    /// many events were read.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read; the position does not move.
    pub async fn poll(&self) -> Result<usize, StoreError> {
        let mut read = 0;
        loop {
            let after = self.position.load(Ordering::Acquire);
            let events = self.store.read_all(after, BATCH).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(read);
            };
            for recorded in &events {
                if let Event::Revoked(revoked) = &recorded.event {
                    self.view.record(revoked.session_id, recorded.recorded_at);
                }
            }
            read += events.len();
            self.position.store(last, Ordering::Release);
            if events.len() < BATCH as usize {
                return Ok(read);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockEventStore, MockRevocationView};
    use crate::testing::{recorded, NOW};
    use authlog_domain::event::Revoked;
    use authlog_domain::{RevocationReason, StreamId, UserId};
    use uuid::Uuid;

    fn sid(n: u128) -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(n))
    }

    fn revoked(n: u128) -> Event {
        Event::Revoked(Revoked {
            session_id: sid(n),
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            reason: RevocationReason::Logout,
        })
    }

    #[test]
    fn a_recorded_session_is_revoked_and_others_are_not() {
        let set = RevocationSet::new(Duration::minutes(16));
        set.record(sid(1), NOW);
        assert!(set.is_revoked(sid(1)));
        assert!(!set.is_revoked(sid(2)));
    }

    #[test]
    fn entries_older_than_the_window_are_dropped() {
        let set = RevocationSet::new(Duration::minutes(16));
        set.record(sid(1), NOW);
        set.record(sid(2), NOW + Duration::minutes(17));
        assert!(!set.is_revoked(sid(1)));
        assert!(set.is_revoked(sid(2)));
        assert_eq!(set.len(), 1);
    }

    #[tokio::test]
    async fn start_loads_recent_revocations_and_poll_follows_from_the_head() {
        let mut store = MockEventStore::new();
        store.expect_head().return_once(|| Ok(7));
        store
            .expect_read_type_since()
            .withf(|t, since| t == "Revoked" && *since == NOW - Duration::minutes(16))
            .return_once(|_, _| Ok(recorded(&StreamId::from_stored("s".into()), &[revoked(1)])));
        store
            .expect_read_all()
            .withf(|after, _| *after == 7)
            .return_once(|_, _| {
                let mut events = recorded(&StreamId::from_stored("s".into()), &[revoked(2)]);
                events[0].position = 8;
                Ok(events)
            });
        store
            .expect_read_all()
            .withf(|after, _| *after == 8)
            .returning(|_, _| Ok(vec![]));
        let mut view = MockRevocationView::new();
        view.expect_record()
            .withf(|s, _| *s == sid(1))
            .times(1)
            .return_const(());
        view.expect_record()
            .withf(|s, _| *s == sid(2))
            .times(1)
            .return_const(());

        let feed =
            RevocationFeed::start(Arc::new(store), Arc::new(view), NOW, Duration::minutes(16))
                .await
                .unwrap();
        assert_eq!(feed.poll().await, Ok(1));
        assert_eq!(feed.poll().await, Ok(0));
    }
}
