//! The real clock and id source behind the application's `Clock` and `IdGenerator` ports.

use authlog_application::ports::{Clock, IdGenerator};
use time::OffsetDateTime;
use uuid::Uuid;

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// UUIDv7: time-ordered, so ids sort by creation and index well.
pub struct UuidV7Ids;

impl IdGenerator for UuidV7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
