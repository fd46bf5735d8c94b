use uuid::Uuid;

/// Fresh identifiers. The adapter makes UUIDv7, so ids sort by creation time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    fn new_id(&self) -> Uuid;
}
