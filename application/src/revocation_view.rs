//! Which sessions are revoked, answered from memory on every request.
//!
//! Only sessions revoked within the last access-token lifetime (plus the verifier's leeway)
//! matter here: any access token of an older revoked session has expired by itself, and
//! refresh tokens are always checked against the session stream. So the set stays small, is
//! rebuilt at start from recent revocations, and is kept current and pruned by the
//! [`crate::instance::RevokedSessions`] subscriber.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use authlog_domain::{Role, SessionId, UserId};
use time::OffsetDateTime;

use crate::ports::{Claims, RecentRevocation, RevocationView};

/// The in-memory revocation view.
#[derive(Default)]
pub struct RevocationSet {
    inner: RwLock<Inner>,
    /// Each user's roles revoked within the window, with when: few (an admin's act), so a
    /// plain map, pruned by a scan.
    roles: RwLock<HashMap<UserId, Vec<(Role, OffsetDateTime)>>>,
}

/// The same entries twice: by session for the lookup on every request, by time for pruning,
/// which then costs O(log n) per entry dropped instead of a scan of the whole set.
#[derive(Default)]
struct Inner {
    by_session: HashMap<SessionId, OffsetDateTime>,
    by_time: BTreeSet<(OffsetDateTime, SessionId)>,
}

impl RevocationSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |set| set.by_session.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Holds `session` as revoked at `at`, or at its earlier revocation's time if that is later.
    fn insert(&mut self, session: SessionId, at: OffsetDateTime) {
        match self.by_session.get(&session).copied() {
            Some(known) if known >= at => {}
            known => {
                if let Some(known) = known {
                    self.by_time.remove(&(known, session));
                }
                self.by_session.insert(session, at);
                self.by_time.insert((at, session));
            }
        }
    }
}

impl RevocationView for RevocationSet {
    fn is_revoked(&self, session: SessionId) -> bool {
        // A poisoned lock means a writer panicked mid-update; refusing every token is the safe
        // answer to not knowing.
        self.inner
            .read()
            .map_or(true, |set| set.by_session.contains_key(&session))
    }

    fn record(&self, session: SessionId, at: OffsetDateTime) {
        if let Ok(mut set) = self.inner.write() {
            // A session revoked twice is kept under its latest time, so it is pruned last.
            set.insert(session, at);
            metrics::gauge!("authlog_revocation_set_size").set(set.by_session.len() as f64);
        }
    }

    fn record_all(&self, recent: &[RecentRevocation]) {
        if let Ok(mut set) = self.inner.write() {
            if set.by_session.is_empty() {
                // A start's fill: the map first (each session at its latest time), then the
                // tree in one bulk build, from entries that come oldest first.
                set.by_session.reserve(recent.len());
                for r in recent {
                    let at = set.by_session.entry(r.session_id).or_insert(r.revoked_at);
                    *at = (*at).max(r.revoked_at);
                }
                let Inner {
                    by_session,
                    by_time,
                } = &mut *set;
                *by_time = recent
                    .iter()
                    .filter(|r| by_session.get(&r.session_id) == Some(&r.revoked_at))
                    .map(|r| (r.revoked_at, r.session_id))
                    .collect();
            } else {
                for r in recent {
                    set.insert(r.session_id, r.revoked_at);
                }
            }
            metrics::gauge!("authlog_revocation_set_size").set(set.by_session.len() as f64);
        }
    }

    fn record_role(&self, user: UserId, role: Role, at: OffsetDateTime) {
        if let Ok(mut roles) = self.roles.write() {
            let revoked = roles.entry(user).or_default();
            match revoked.iter_mut().find(|(known, _)| *known == role) {
                Some((_, when)) => *when = (*when).max(at),
                None => revoked.push((role, at)),
            }
        }
    }

    fn roles_in_effect(&self, claims: &Claims) -> Option<Vec<Role>> {
        if claims.roles.is_empty() {
            return None;
        }
        // A poisoned lock: no role is known to be in effect (the safe answer).
        let Ok(roles) = self.roles.read() else {
            return Some(Vec::new());
        };
        let revoked = roles.get(&claims.user_id)?;
        // `iat` has whole seconds: a token of the second of the revocation counts as issued
        // before it (a role granted again within that second waits for the next refresh).
        let stale = |role: &Role| {
            revoked
                .iter()
                .any(|(r, at)| r == role && claims.issued_at <= *at)
        };
        if !claims.roles.iter().any(stale) {
            return None;
        }
        Some(claims.roles.iter().filter(|r| !stale(r)).cloned().collect())
    }

    fn prune(&self, before: OffsetDateTime) {
        if let Ok(mut roles) = self.roles.write() {
            roles.retain(|_, revoked| {
                revoked.retain(|(_, at)| *at >= before);
                !revoked.is_empty()
            });
        }
        if let Ok(mut set) = self.inner.write() {
            let Inner {
                by_session,
                by_time,
            } = &mut *set;
            while let Some(&(at, session)) = by_time.first() {
                if at >= before {
                    break;
                }
                by_time.pop_first();
                by_session.remove(&session);
            }
            metrics::gauge!("authlog_revocation_set_size").set(by_session.len() as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::NOW;
    use time::Duration;
    use uuid::Uuid;

    fn sid(n: u128) -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn a_role_revoked_after_a_token_was_issued_is_not_in_effect_for_it() {
        let set = RevocationSet::new();
        let mut claims =
            crate::testing::claims_of(&[Role::admin(), Role::parse("auditor").unwrap()]);
        claims.issued_at = NOW;
        assert_eq!(set.roles_in_effect(&claims), None, "nothing revoked");
        set.record_role(claims.user_id, Role::admin(), NOW + Duration::seconds(3));
        assert_eq!(
            set.roles_in_effect(&claims),
            Some(vec![Role::parse("auditor").unwrap()])
        );
        // A token issued after the revocation carries what the user holds then.
        claims.issued_at = NOW + Duration::seconds(4);
        assert_eq!(set.roles_in_effect(&claims), None);
        // Another user's token is untouched.
        claims.issued_at = NOW;
        claims.user_id = authlog_domain::UserId::from_uuid(Uuid::from_u128(99));
        assert_eq!(set.roles_in_effect(&claims), None);
    }

    #[test]
    fn a_token_of_the_second_of_the_revocation_counts_as_issued_before_it() {
        let set = RevocationSet::new();
        let mut claims = crate::testing::claims_of(&[Role::admin()]);
        claims.issued_at = NOW;
        set.record_role(claims.user_id, Role::admin(), NOW);
        assert_eq!(set.roles_in_effect(&claims), Some(vec![]));
        set.prune(NOW + Duration::seconds(1));
        assert_eq!(
            set.roles_in_effect(&claims),
            None,
            "pruned: tokens that old expired"
        );
    }

    #[test]
    fn a_recorded_session_is_revoked_and_others_are_not() {
        let set = RevocationSet::new();
        set.record(sid(1), NOW);
        assert!(set.is_revoked(sid(1)));
        assert!(!set.is_revoked(sid(2)));
    }

    #[test]
    fn pruning_drops_the_entries_recorded_before_the_horizon() {
        let set = RevocationSet::new();
        set.record(sid(1), NOW);
        set.record(sid(2), NOW + Duration::minutes(17));
        set.prune(NOW + Duration::minutes(1));
        assert!(!set.is_revoked(sid(1)));
        assert!(set.is_revoked(sid(2)));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_fill_holds_every_session_once_under_its_latest_time() {
        let set = RevocationSet::new();
        let at = |minutes| NOW + Duration::minutes(minutes);
        let revocation = |n, minutes| RecentRevocation {
            session_id: sid(n),
            revoked_at: at(minutes),
        };
        set.record_all(&[revocation(1, 0), revocation(2, 1), revocation(1, 5)]);
        assert_eq!(set.len(), 2);
        set.prune(at(2));
        assert!(set.is_revoked(sid(1)) && !set.is_revoked(sid(2)));
        set.prune(at(6));
        assert!(set.is_empty());
    }

    #[test]
    fn a_session_revoked_twice_is_kept_until_its_latest_revocation_is_old() {
        let set = RevocationSet::new();
        set.record(sid(1), NOW + Duration::minutes(10));
        set.record(sid(1), NOW);
        set.prune(NOW + Duration::minutes(5));
        assert!(set.is_revoked(sid(1)), "the later time stands");
        set.prune(NOW + Duration::minutes(11));
        assert!(set.is_empty());
    }
}
