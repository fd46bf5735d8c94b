use authlog_domain::SessionId;
use time::OffsetDateTime;

use super::RecentRevocation;

/// The sessions revoked recently enough that one of their access tokens may still be unexpired.
/// Consulted on every authenticated request, so it answers from memory, never from the store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RevocationView: Send + Sync {
    fn is_revoked(&self, session: SessionId) -> bool;

    /// Records that `session` was revoked at `at` (from this process or from the log).
    fn record(&self, session: SessionId, at: OffsetDateTime);

    /// Records every revocation of `recent` (a start-up's fill): one update, not one per entry.
    fn record_all(&self, recent: &[RecentRevocation]);

    /// Forgets the sessions revoked before `before`: their access tokens have expired.
    fn prune(&self, before: OffsetDateTime);
}
