use async_trait::async_trait;
use time::OffsetDateTime;

use super::{AppendError, Appended, StoreError, StreamWrite};

/// A signing key as stored. The private half never leaves the key store and the token adapter;
/// the log and the JWKS see only the public half.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub algorithm: String,
    /// PKCS#8 DER of the private key; empty once revoked.
    pub private_der: Vec<u8>,
    /// The raw public key; once revoked, a tombstone (see [`KeyStore::revoke_signing_key`]).
    pub public_key: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// When it was revoked. A revoked key signs and verifies nothing, and its key material is
    /// erased; it stays listed so that the keys after it keep their places in the rotation
    /// history (a key is retired when the next one is made).
    pub revoked_at: Option<OffsetDateTime>,
}

impl SigningKey {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
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

    /// Revokes key `kid` at `at`, stores `replacement`, and appends `events` (the
    /// `SigningKeyRevoked` and the replacement's `SigningKeyRotated`), in one transaction: all
    /// or nothing. The revoked key's private key is erased and its public key replaced by
    /// `tombstone`, the public half of a key whose private half nobody kept: a release that
    /// does not know revocation loads it as an ordinary key that verifies nothing. A key
    /// already revoked keeps its first revocation.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when `events`' expectation fails (nothing is stored);
    /// [`AppendError::Store`] when the store cannot be written.
    async fn revoke_signing_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
        tombstone: Vec<u8>,
        replacement: SigningKey,
        events: StreamWrite,
    ) -> Result<Appended, AppendError>;

    /// Stores key `kid`'s private half as `replacement` where it is still stored as `current`:
    /// the same key, kept differently (sealed under the master key where an older release kept
    /// it in clear). Answers whether the row changed; a key revoked meanwhile does not.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written.
    async fn replace_private_key(
        &self,
        kid: &str,
        current: Vec<u8>,
        replacement: Vec<u8>,
    ) -> Result<bool, StoreError>;
}

/// Makes new signing keys.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KeyGenerator: Send + Sync {
    /// # Errors
    /// [`KeyError`] when no key can be made (no randomness).
    fn generate(&self, now: OffsetDateTime) -> Result<SigningKey, KeyError>;
}
