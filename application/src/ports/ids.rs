use uuid::Uuid;

/// Fresh identifiers.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new id. The adapter makes UUIDv7, so ids sort by creation time; they are unique, not
    /// secret.
    fn new_id(&self) -> Uuid;
}
