//! Following the log: what this process must learn from events that other processes (other
//! instances, the CLI) append. Revocations go into the revocation view; a key rotation makes
//! the token service load the new key set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use authlog_domain::Event;
use time::{Duration, OffsetDateTime};

use crate::ports::{Clock, EventStore, KeyStore, RevocationView, StoreError, TokenService};

/// How many events one read takes at most before handing back control.
const BATCH: u32 = 1_000;

/// Why a poll did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot load the rotated signing keys: {0}")]
    Keys(String),
}

pub struct LogFeed {
    store: Arc<dyn EventStore>,
    revocations: Arc<dyn RevocationView>,
    keys: Arc<dyn KeyStore>,
    tokens: Arc<dyn TokenService>,
    clock: Arc<dyn Clock>,
    /// The last log position seen.
    position: AtomicU64,
}

impl LogFeed {
    /// Fills the revocation view with the sessions revoked since `now - window` and starts
    /// following the log from its current head. The head is read first, so an event committed
    /// during the start is either in the recent read or after the head, seen by the next poll.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    pub async fn start(
        store: Arc<dyn EventStore>,
        revocations: Arc<dyn RevocationView>,
        keys: Arc<dyn KeyStore>,
        tokens: Arc<dyn TokenService>,
        clock: Arc<dyn Clock>,
        window: Duration,
    ) -> Result<Self, StoreError> {
        let head = store.head().await?;
        let since: OffsetDateTime = clock.now() - window;
        for recorded in store.read_type_since("Revoked", since).await? {
            if let Event::Revoked(revoked) = &recorded.event {
                revocations.record(revoked.session_id, recorded.recorded_at);
            }
        }
        Ok(Self {
            store,
            revocations,
            keys,
            tokens,
            clock,
            position: AtomicU64::new(head),
        })
    }

    /// Reads what the log gained since the last poll and acts on it; answers how many events
    /// were read.
    ///
    /// # Errors
    /// [`FeedError`] when the store cannot be read or rotated keys cannot be loaded; the
    /// position does not move past what was not acted on.
    pub async fn poll(&self) -> Result<usize, FeedError> {
        let mut read = 0;
        loop {
            let after = self.position.load(Ordering::Acquire);
            let events = self.store.read_all(after, BATCH).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(read);
            };
            let mut rotated = false;
            for recorded in &events {
                match &recorded.event {
                    Event::Revoked(revoked) => {
                        self.revocations
                            .record(revoked.session_id, recorded.recorded_at);
                    }
                    Event::SigningKeyRotated(_) => rotated = true,
                    _ => {}
                }
            }
            if rotated {
                let keys = self.keys.signing_keys().await?;
                self.tokens
                    .replace_keys(keys, self.clock.now())
                    .map_err(|e| FeedError::Keys(e.to_string()))?;
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
    use crate::ports::{MockEventStore, MockKeyStore, MockRevocationView, MockTokenService};
    use crate::testing::{clock, recorded, NOW};
    use authlog_domain::event::{Revoked, SigningKeyRotated};
    use authlog_domain::{RevocationReason, SessionId, StreamId, UserId};
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

    fn at_position(position: u64, event: Event) -> Vec<crate::ports::RecordedEvent> {
        let mut events = recorded(&StreamId::from_stored("s".into()), &[event]);
        events[0].position = position;
        events
    }

    #[tokio::test]
    async fn start_loads_recent_revocations_and_poll_follows_from_the_head() {
        let mut store = MockEventStore::new();
        store.expect_head().return_once(|| Ok(7));
        store
            .expect_read_type_since()
            .withf(|t, since| t == "Revoked" && *since == NOW - Duration::minutes(16))
            .return_once(|_, _| Ok(at_position(3, revoked(1))));
        store
            .expect_read_all()
            .withf(|after, _| *after == 7)
            .return_once(|_, _| Ok(at_position(8, revoked(2))));
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

        let feed = LogFeed::start(
            Arc::new(store),
            Arc::new(view),
            Arc::new(MockKeyStore::new()),
            Arc::new(MockTokenService::new()),
            clock(),
            Duration::minutes(16),
        )
        .await
        .unwrap();
        assert_eq!(feed.poll().await, Ok(1));
        assert_eq!(feed.poll().await, Ok(0));
    }

    #[tokio::test]
    async fn a_key_rotation_in_the_log_reloads_the_token_keys() {
        let mut store = MockEventStore::new();
        store.expect_head().return_once(|| Ok(0));
        store
            .expect_read_type_since()
            .return_once(|_, _| Ok(vec![]));
        let rotation = Event::SigningKeyRotated(SigningKeyRotated {
            kid: "k2".into(),
            algorithm: "EdDSA".into(),
            public_key: "x".into(),
        });
        store
            .expect_read_all()
            .withf(|after, _| *after == 0)
            .return_once(move |_, _| Ok(at_position(1, rotation)));
        let mut keys = MockKeyStore::new();
        keys.expect_signing_keys().times(1).returning(|| Ok(vec![]));
        let mut tokens = MockTokenService::new();
        tokens
            .expect_replace_keys()
            .times(1)
            .returning(|_, _| Ok(()));

        let feed = LogFeed::start(
            Arc::new(store),
            Arc::new(MockRevocationView::new()),
            Arc::new(keys),
            Arc::new(tokens),
            clock(),
            Duration::minutes(16),
        )
        .await
        .unwrap();
        assert_eq!(feed.poll().await, Ok(1));
    }
}
