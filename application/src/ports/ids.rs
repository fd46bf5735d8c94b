use uuid::Uuid;

/// Fresh identifiers and secrets.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new id. The adapter makes UUIDv7, so ids sort by creation time; they are unique, not
    /// secret.
    fn new_id(&self) -> Uuid;

    /// A new unguessable value (at least 128 random bits, URL-safe text), such as a CSRF token.
    fn new_secret(&self) -> String;
}
