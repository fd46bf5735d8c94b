use async_trait::async_trait;
use authlog_domain::{Password, PasswordHash};

/// The hasher could not do its work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(pub String);

/// Slow, salted password hashing (Argon2id in production).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password.
    ///
    /// # Errors
    /// [`HashError`] when the hasher fails (out of memory, worker pool gone).
    async fn hash(&self, password: Password) -> Result<PasswordHash, HashError>;

    /// Whether `password` matches `hash`. With no hash (the user does not exist) it still does
    /// the full work against a dummy hash and answers `false`, so that the time taken does not
    /// tell an attacker which usernames exist.
    ///
    /// # Errors
    /// [`HashError`] when the hasher fails or the stored hash is not one it can read.
    async fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashError>;
}
