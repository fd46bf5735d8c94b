use authlog_domain::{Role, SessionId, UserId};
use time::OffsetDateTime;

use super::{Claims, RecentRevocation};

/// The sessions revoked recently enough that one of their access tokens may still be unexpired,
/// and the roles revoked as recently (a token issued before a role was revoked no longer
/// carries it). Consulted on every authenticated request, so it answers from memory, never
/// from the store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RevocationView: Send + Sync {
    fn is_revoked(&self, session: SessionId) -> bool;

    /// Records that `session` was revoked at `at` (from this process or from the log).
    fn record(&self, session: SessionId, at: OffsetDateTime);

    /// Records every revocation of `recent` (a start-up's fill): one update, not one per entry.
    fn record_all(&self, recent: &[RecentRevocation]);

    /// Records that `role` was revoked from `user` at `at` (from this process or the log).
    fn record_role(&self, user: UserId, role: Role, at: OffsetDateTime);

    /// The roles of `claims` still in effect when some were revoked from its user after the
    /// token was issued; `None` when all of them are (nearly always: no allocation then).
    fn roles_in_effect(&self, claims: &Claims) -> Option<Vec<Role>>;

    /// Forgets the sessions and roles revoked before `before`: the access tokens issued before
    /// have expired.
    fn prune(&self, before: OffsetDateTime);
}
