//! The keys that seal each user's personal data in the log (crypto-shredding): one data key per
//! user, kept sealed under the master key; erasing the user destroys it.
//!
//! The store applies them: it seals an event's personal fields
//! ([`authlog_domain::Event::personal_fields`], and the metadata's client address and user
//! agent) as it appends, and opens them as it reads, so the use cases only ever see them open,
//! or [`authlog_domain::Personal::Erased`]. What a user's key seals is bound to the user and to
//! what it is (`purpose`), so a sealed field copied into another user's row does not open.

use authlog_domain::UserId;

/// Sealing or opening failed: a key or a sealed field that is not what it claims to be (the
/// master key is the wrong one, or the bytes were altered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SealFailed(pub String);

/// One user's data key, open.
pub trait DataKey: Send + Sync {
    /// `clear`, sealed for `purpose` (which must be given again to open it).
    ///
    /// # Errors
    /// [`SealFailed`] for a plaintext beyond the cipher's limit.
    fn seal(&self, purpose: &[u8], clear: &[u8]) -> Result<Vec<u8>, SealFailed>;

    /// What [`DataKey::seal`] sealed for `purpose`.
    ///
    /// # Errors
    /// [`SealFailed`] when `sealed` was sealed under another key or for another purpose, or
    /// was altered.
    fn open(&self, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealFailed>;
}

/// Makes and opens users' data keys, under the master key.
pub trait PersonalData: Send + Sync {
    /// A fresh data key for `user`, open, and sealed for the store to keep.
    ///
    /// # Errors
    /// [`SealFailed`] when no randomness or no sealing is to be had.
    fn new_key(&self, user: UserId) -> Result<(Box<dyn DataKey>, Vec<u8>), SealFailed>;

    /// Opens the data key of `user` that [`PersonalData::new_key`] sealed.
    ///
    /// # Errors
    /// [`SealFailed`] when `sealed` is not that user's key under this master key.
    fn open_key(&self, user: UserId, sealed: &[u8]) -> Result<Box<dyn DataKey>, SealFailed>;
}
