//! Opening the store a `--database-url` names.

use anyhow::{bail, Context};
use authlog_store::Store;

/// Opens the store `url` names (`sqlite://PATH` or `postgres://...`), creating the SQLite file,
/// applying migrations and building the read models as needed.
///
/// # Errors
/// An unsupported scheme, or a database that cannot be reached, opened or migrated.
pub async fn open(url: &str) -> anyhow::Result<Store> {
    let supported = url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://");
    if !supported {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        bail!("unsupported database URL scheme {scheme:?}: use sqlite://PATH or postgres://...");
    }
    Store::open(url)
        .await
        .context("cannot open the event store")
}
