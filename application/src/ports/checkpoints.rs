//! Where a subscriber of the log stands, kept in the database for the subscribers that one
//! runner across every instance runs ([`crate::subscribers::Scope::Cluster`]): its position,
//! the version of the subscriber that reached it, and a lease that says which instance runs it.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoreError;

/// A subscriber's checkpoint as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub name: String,
    /// The last log position it handled.
    pub position: u64,
    /// The instance that runs it, while its lease lasts.
    pub holder: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Checkpoints: Send + Sync {
    /// Takes, or renews, `holder`'s lease on the checkpoint of subscriber `name` until `until`,
    /// unless another holder's lease lasts past `now`; answers its position when this holder
    /// holds it. A checkpoint not kept yet starts at 0, and one kept by another `version` of
    /// the subscriber starts again at 0 (a replay).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn lease(
        &self,
        name: &str,
        version: u32,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<u64>, StoreError>;

    /// Moves the checkpoint of `name` to `position`, if `holder` still holds its lease;
    /// answers whether it did.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn advance(&self, name: &str, holder: &str, position: u64) -> Result<bool, StoreError>;

    /// Gives up `holder`'s lease on `name`, if it holds it: another instance may take the
    /// subscriber at once rather than when the lease lapses (a graceful stop).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Every checkpoint kept, by name.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
}
