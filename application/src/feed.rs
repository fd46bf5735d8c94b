//! Following the log: what this process must learn from what other processes (other
//! instances, the CLI) record. Revocations come from the revocations projection, which has
//! already expanded a wholesale revocation into its sessions; key rotations and revocations come
//! from the log, read by type so that nothing else is read. A follower never stops on a row it
//! cannot read: it reads only the types it needs, and the store passes over the rest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use authlog_domain::EventType;
use time::{Duration, OffsetDateTime};

use crate::ports::{
    Clock, EventLog, KeyStore, ReadModels, RevocationView, StoreError, TokenService,
};

/// How many events one read takes at most before handing back control.
const BATCH: u32 = 1_000;

/// The log events the follower acts on itself: each changes the set of signing keys.
const KEY_CHANGES: &[EventType] = &[EventType::SigningKeyRotated, EventType::SigningKeyRevoked];

/// Why a poll did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot load the rotated signing keys: {0}")]
    Keys(String),
}

pub struct LogFeed {
    log: Arc<dyn EventLog>,
    read_models: Arc<dyn ReadModels>,
    revocations: Arc<dyn RevocationView>,
    keys: Arc<dyn KeyStore>,
    tokens: Arc<dyn TokenService>,
    clock: Arc<dyn Clock>,
    /// How long a revocation matters: the access-token lifetime and leeway.
    window: Duration,
    /// The last log position whose key changes were acted on.
    position: AtomicU64,
    /// The position of the last revocation recorded.
    revoked_to: AtomicU64,
    /// The log's head at the previous poll, and when the projections last had all of it.
    progress: Mutex<Progress>,
}

struct Progress {
    head: u64,
    current_at: OffsetDateTime,
    /// Why a projection is halted, if one is ([`crate::ports::ProjectionStatus::halted`]).
    halted: Option<String>,
}

impl LogFeed {
    /// Fills the revocation view with the sessions revoked since `now - window` (a read of the
    /// recent revocations only, however long the log) and starts following from the log's
    /// current head. The head is read first and the projections caught up to it, so a
    /// revocation committed during the start is either in the recent read or after the head.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        log: Arc<dyn EventLog>,
        read_models: Arc<dyn ReadModels>,
        revocations: Arc<dyn RevocationView>,
        keys: Arc<dyn KeyStore>,
        tokens: Arc<dyn TokenService>,
        clock: Arc<dyn Clock>,
        window: Duration,
    ) -> Result<Self, StoreError> {
        let head = log.head().await?;
        match read_models.wait_for(head).await {
            // A halted read model waits for an operator's rebuild. What the revocations
            // projection holds then is more than the log does (it applied events since cut
            // away), never less: the view is filled from it, and readiness says why the
            // instance is not ready.
            Err(StoreError::Halted(reason)) => tracing::error!("{reason}"),
            waited => waited?,
        }
        let halted = read_models
            .status()
            .await?
            .into_iter()
            .find_map(|p| p.halted);
        let now = clock.now();
        let recent = read_models.revocations_since(now - window).await?;
        revocations.record_all(&recent);
        Ok(Self {
            log,
            read_models,
            revocations,
            keys,
            tokens,
            clock,
            window,
            position: AtomicU64::new(head),
            // The projections hold everything up to the head: what follows comes after it.
            revoked_to: AtomicU64::new(head),
            progress: Mutex::new(Progress {
                head,
                current_at: now,
                halted,
            }),
        })
    }

    /// Acts on what the log and the revocations projection gained since the last poll; answers
    /// how many session revocations and key changes it read.
    ///
    /// # Errors
    /// [`FeedError`] when the store cannot be read or rotated keys cannot be loaded; nothing is
    /// marked read that was not acted on.
    pub async fn poll(&self) -> Result<usize, FeedError> {
        let now = self.clock.now();
        self.revocations.prune(now - self.window);
        let head = self.log.head().await?;
        let mut read = 0;
        let revoked = self
            .read_models
            .revocations_after(self.revoked_to.load(Ordering::Acquire))
            .await?;
        for session in &revoked {
            self.revocations
                .record(session.session_id, session.revoked_at);
            self.revoked_to
                .fetch_max(session.position, Ordering::AcqRel);
        }
        read += revoked.len();
        loop {
            let after = self.position.load(Ordering::Acquire);
            let changes = self.log.read_after(after, BATCH, KEY_CHANGES).await?;
            let Some(last) = changes.last().map(|e| e.position) else {
                break;
            };
            let keys = self.keys.signing_keys().await?;
            self.tokens
                .replace_keys(keys, now)
                .map_err(|e| FeedError::Keys(e.to_string()))?;
            read += changes.len();
            self.position.store(last, Ordering::Release);
        }
        self.position.fetch_max(head, Ordering::AcqRel);
        let applied = self.read_models.status().await?;
        let projected = applied.iter().map(|p| p.position).min().unwrap_or(head);
        let halted = applied.into_iter().find_map(|p| p.halted);
        if let Ok(mut progress) = self.progress.lock() {
            // Current when the projections hold everything the log held at the last poll
            // (a halted one holds what the log no longer does: never current).
            if projected >= progress.head && halted.is_none() {
                progress.current_at = now;
            }
            progress.head = head;
            progress.halted = halted;
        }
        Ok(read)
    }

    /// Why a projection is halted, as the last poll found (its checkpoint is no longer borne
    /// out by the log, and it waits for a rebuild): what the readiness probe says.
    pub fn halted(&self) -> Option<String> {
        self.progress.lock().ok()?.halted.clone()
    }

    /// How long ago this process last held everything the log did (a few poll intervals at
    /// most while it keeps up): what the readiness probe reports.
    pub fn behind(&self) -> Duration {
        let now = self.clock.now();
        self.progress
            .lock()
            .map_or(Duration::MAX, |progress| now - progress.current_at)
    }
}
