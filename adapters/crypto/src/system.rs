//! The real clock and id source behind the application's `Clock` and `IdGenerator` ports.
//!
//! This is the one place that reads the system's time (`clippy.toml` refuses
//! `OffsetDateTime::now_utc` everywhere else): every other piece of authlog is handed a `Clock`.

use authlog_application::ports::{Clock, IdGenerator};
use time::OffsetDateTime;
use uuid::Uuid;

pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the clock adapter itself
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The system clock plus an offset that tests move forward: time passes as usual, and a test of
/// an expiry or a throttling window jumps past it instead of sleeping.
#[cfg(feature = "testing")]
#[derive(Default)]
pub struct AdjustableClock {
    offset_ms: std::sync::atomic::AtomicI64,
}

#[cfg(feature = "testing")]
impl AdjustableClock {
    /// Moves this clock `by` into the future (for every holder of it).
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(feature = "testing")]
impl Clock for AdjustableClock {
    fn now(&self) -> OffsetDateTime {
        let offset = self.offset_ms.load(std::sync::atomic::Ordering::SeqCst);
        SystemClock.now() + time::Duration::milliseconds(offset)
    }
}

/// UUIDv7 ids: time-ordered, so they sort by creation and index well.
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
