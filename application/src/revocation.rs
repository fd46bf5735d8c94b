//! Which sessions are revoked, answered from memory on every request.
//!
//! Only sessions revoked within the last access-token lifetime (plus the verifier's leeway)
//! matter here: any access token of an older revoked session has expired by itself, and
//! refresh tokens are always checked against the session stream. So the set stays small, is
//! rebuilt at start from recent `Revoked` events, and is kept current by the [`crate::feed`].

use std::collections::HashMap;
use std::sync::RwLock;

use authlog_domain::SessionId;
use time::{Duration, OffsetDateTime};

use crate::ports::RevocationView;

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
            metrics::gauge!("authlog_revocation_set_size").set(set.len() as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::NOW;
    use uuid::Uuid;

    fn sid(n: u128) -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(n))
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
}
