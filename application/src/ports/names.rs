//! Names typed at password checks that are no account's: the log never holds them in clear.
//!
//! Such a name (a typo, a probe, sometimes a password typed into the name box) is recorded as a
//! keyed hash under the key of the day it was typed. Keys are kept for a retention period and
//! then forgotten, after which nobody, not even with the database and the master key, can tell
//! which name a recorded hash was.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoreError;

/// The keys that conceal names, each serving one UTC day (`2026-11-24`), as the store keeps
/// them: sealed under the master key.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NameKeyStore: Send + Sync {
    /// The sealed key of `day`, if one is kept.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn name_key(&self, day: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Keeps `sealed` as the key of `day`, unless another instance kept one first; answers the
    /// key kept, so that every instance conceals a day's names alike.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written.
    async fn add_name_key(&self, day: &str, sealed: Vec<u8>) -> Result<Vec<u8>, StoreError>;

    /// Every kept key, by day.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read.
    async fn name_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    /// Forgets the keys of the days before `day`; answers how many it forgot.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written.
    async fn forget_name_keys_before(&self, day: &str) -> Result<u64, StoreError>;
}

/// Conceals names that are no account's, for the subject and stream of a password check.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NameConcealer: Send + Sync {
    /// The form a check for `canonical` is recorded under at `now`: a keyed hash under the key
    /// of `now`'s day, which names the day (`name:2026-11-24:…`).
    ///
    /// # Errors
    /// [`StoreError`] when the day's key cannot be read or kept.
    async fn conceal(&self, canonical: &str, now: OffsetDateTime) -> Result<String, StoreError>;

    /// Every form a check for `canonical` may have been recorded under that can still be
    /// recognised: one per kept key. Audit by name asks for these.
    ///
    /// # Errors
    /// [`StoreError`] when the keys cannot be read.
    async fn recognisable(&self, canonical: &str) -> Result<Vec<String>, StoreError>;
}
