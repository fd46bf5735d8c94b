use async_trait::async_trait;
use time::OffsetDateTime;

use super::{AppendError, Appended, StoreError, StreamWrite};

/// A signing key as stored. The private half never leaves the key store and the token adapter;
/// the log and the JWKS see only the public half.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: String,
    /// PKCS#8 DER of the private key.
    pub private_der: Vec<u8>,
    /// The raw public key.
    pub public_key: Vec<u8>,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Key generation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing key generation failed: {0}")]
pub struct KeyError(pub String);

/// Where signing keys live, shared by every instance on one database.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every stored key, oldest first.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError>;

    /// Stores `key` and appends `rotated` (its `SigningKeyRotated`) in one transaction: both or
    /// neither. The first key is appended expecting no keys stream, so two instances starting
    /// at once on an empty database agree on one first key.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when `rotated`'s expectation fails (nothing is stored);
    /// [`AppendError::Store`] when the store cannot be written.
    async fn add_signing_key(
        &self,
        key: SigningKey,
        rotated: StreamWrite,
    ) -> Result<Appended, AppendError>;
}

/// Makes new signing keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KeyGenerator: Send + Sync {
    /// # Errors
    /// [`KeyError`] when no key can be made (no randomness).
    fn generate(&self, now: OffsetDateTime) -> Result<SigningKey, KeyError>;
}
