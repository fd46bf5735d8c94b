//! Admission control in front of password hashing.
//!
//! A password check costs tens of milliseconds of a core and 19 MiB, so a few hundred
//! concurrent logins queue for seconds behind one another, and whoever floods the queue decides
//! how long everyone else waits. [`Admission`] bounds the queue twice: per client address, so
//! one address cannot fill it, and in total, so that the wait stays short. A request over either
//! bound is refused at once ([`Busy`], which HTTP answers 503 with `Retry-After`) instead of
//! waiting without bound. Login, registration and password change pass through it; password
//! reset and second-factor checks will too.
//!
//! Counts are per instance: behind a load balancer each instance protects its own cores, which
//! is what the bound is for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// How long a refused client is told to wait: the queue drains in well under that.
pub const RETRY_AFTER: time::Duration = time::Duration::seconds(1);

/// The bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Password operations admitted at once (running or queued), all clients together.
    pub total: usize,
    /// Password operations admitted at once from one client address.
    pub per_client: usize,
}

/// The queue is full, in total or for this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Server busy; try again later")]
pub struct Busy {
    pub retry_after: time::Duration,
}

/// The counts of admitted operations.
pub struct Admission {
    limits: AdmissionLimits,
    admitted: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_client: HashMap<ClientKey, usize>,
}

/// Who is counted: an IPv4 address, or an IPv6 address's /64 (one subscriber's allocation,
/// which an attacker holds whole); requests with no known address share one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6Prefix(u64),
    Unknown,
}

impl ClientKey {
    fn of(client_addr: Option<&str>) -> Self {
        match client_addr.and_then(|a| a.parse::<IpAddr>().ok()) {
            Some(IpAddr::V4(v4)) => Self::V4(u32::from(v4)),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                None => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            },
            None => Self::Unknown,
        }
    }
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            admitted: Mutex::new(Counts::default()),
        })
    }

    /// Admits one password operation from `client_addr` (as recorded in the event metadata),
    /// counted until the returned [`Admitted`] is dropped.
    ///
    /// # Errors
    /// [`Busy`] when the total or this client's bound is reached.
    pub fn admit(self: &Arc<Self>, client_addr: Option<&str>) -> Result<Admitted, Busy> {
        let key = ClientKey::of(client_addr);
        let mut counts = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = counts.by_client.get(&key).copied().unwrap_or(0);
        if counts.total >= self.limits.total || mine >= self.limits.per_client {
            metrics::counter!("authlog_admission_refused_total").increment(1);
            return Err(Busy {
                retry_after: RETRY_AFTER,
            });
        }
        counts.total += 1;
        counts.by_client.insert(key, mine + 1);
        Ok(Admitted {
            admission: self.clone(),
            key,
        })
    }

    fn release(&self, key: ClientKey) {
        let mut counts = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        // Emptied entries go, so the map holds only clients with operations in flight.
        if let Some(mine) = counts.by_client.get_mut(&key) {
            *mine -= 1;
            if *mine == 0 {
                counts.by_client.remove(&key);
            }
        }
    }
}

/// One admitted operation; dropping it frees its place.
#[must_use = "the operation is admitted only while this is held"]
pub struct Admitted {
    admission: Arc<Admission>,
    key: ClientKey,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.release(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(total: usize, per_client: usize) -> Arc<Admission> {
        Admission::new(AdmissionLimits { total, per_client })
    }

    #[test]
    fn one_client_is_bounded_while_another_is_admitted() {
        let admission = admission(10, 2);
        let first = admission.admit(Some("192.0.2.1")).unwrap();
        let _second = admission.admit(Some("192.0.2.1")).unwrap();
        assert!(admission.admit(Some("192.0.2.1")).is_err());
        let _other = admission.admit(Some("192.0.2.2")).unwrap();
        drop(first);
        assert!(admission.admit(Some("192.0.2.1")).is_ok());
    }

    #[test]
    fn the_total_bounds_every_client_together() {
        let admission = admission(3, 2);
        let held: Vec<_> = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
            .iter()
            .map(|a| admission.admit(Some(a)).unwrap())
            .collect();
        let busy = admission.admit(Some("192.0.2.4")).err().unwrap();
        assert_eq!(busy.retry_after, RETRY_AFTER);
        drop(held);
        assert!(admission.admit(Some("192.0.2.4")).is_ok());
    }

    #[test]
    fn an_ipv6_subscriber_is_counted_by_its_64_and_a_mapped_ipv4_as_itself() {
        let admission = admission(10, 1);
        let _a = admission.admit(Some("2001:db8:1:2::1")).unwrap();
        assert!(admission.admit(Some("2001:db8:1:2:ffff::9")).is_err());
        assert!(admission.admit(Some("2001:db8:1:3::1")).is_ok());
        let _v4 = admission.admit(Some("192.0.2.7")).unwrap();
        assert!(admission.admit(Some("::ffff:192.0.2.7")).is_err());
    }

    #[test]
    fn released_places_leave_no_entry_behind() {
        let admission = admission(10, 5);
        for i in 0..100 {
            drop(admission.admit(Some(&format!("10.0.0.{i}"))).unwrap());
        }
        let counts = admission.admitted.lock().unwrap();
        assert_eq!((counts.total, counts.by_client.len()), (0, 0));
    }
}
