//! Choosing the event store from the database URL.

use anyhow::{bail, Context};
use authlog_store::SqliteStore;

/// Opens the store `url` names, creating and migrating it as needed.
///
/// # Errors
/// An unsupported scheme, or a database that cannot be opened or migrated.
pub async fn open(url: &str) -> anyhow::Result<SqliteStore> {
    if url.starts_with("sqlite:") {
        return SqliteStore::open(url)
            .await
            .context("cannot open the event store");
    }
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    bail!("unsupported database URL scheme {scheme:?}: this build supports sqlite://PATH")
}
