//! The real clock, id source and code source behind the application's `Clock`, `IdGenerator`
//! and `CodeGenerator` ports.
//!
//! This is the one place that reads the system's time (`clippy.toml` refuses
//! `OffsetDateTime::now_utc` everywhere else): every other piece of authlog is handed a `Clock`.

use authlog_application::ports::{Clock, CodeGenerator, IdGenerator, CODE_DIGITS};
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

/// Mailed codes from the operating system's randomness, each digit uniform.
pub struct RandomCodes;

impl CodeGenerator for RandomCodes {
    fn mail_code(&self) -> String {
        use rand::Rng as _;
        let mut rng = rand::rngs::OsRng;
        (0..CODE_DIGITS)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_differ() {
        let codes: std::collections::HashSet<String> =
            (0..100).map(|_| RandomCodes.mail_code()).collect();
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 90, "{} distinct of 100", codes.len());
    }
}
