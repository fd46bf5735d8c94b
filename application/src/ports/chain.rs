//! The log's hash chain as checkpoints see it, and the key that signs them.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoreError;

/// One link of the hash chain: a position and the chain's hash up to and including it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub position: u64,
    pub hash: Vec<u8>,
    pub recorded_at: OffsetDateTime,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Chain: Send + Sync {
    /// The link at `position`, or the head's when `None`. `None` when the log holds no such
    /// position (or no event at all).
    async fn link(&self, position: Option<u64>) -> Result<Option<ChainLink>, StoreError>;
}

/// The Ed25519 key that signs checkpoints. It lives outside the database (the crypto adapter
/// derives it from the master key), so whoever can write the database cannot sign one.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait CheckpointKey: Send + Sync {
    /// Its name: the RFC 7638 thumbprint of its public half.
    fn kid(&self) -> String;
    /// Its public half, 32 bytes.
    fn public_key(&self) -> Vec<u8>;
    /// The Ed25519 signature of `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
    /// Whether `signature` is this key's signature of `message`.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool;
}
