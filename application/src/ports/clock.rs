use time::OffsetDateTime;

/// The time. A port so that tests can fix it; the adapter reads the system clock.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}
