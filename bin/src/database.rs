//! Choosing the event store from the database URL.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use authlog_application::ports::{EventStore, KeyStore};
use authlog_store::{Intact, PostgresStore, SqliteStore, VerifyError};
use tokio::sync::Notify;

/// The opened event store, whichever backend the URL named.
#[derive(Clone)]
pub enum Database {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl Database {
    /// Opens the store `url` names (`sqlite://PATH` or `postgres://...`), creating the SQLite
    /// file and applying migrations as needed.
    ///
    /// # Errors
    /// An unsupported scheme, or a database that cannot be reached, opened or migrated.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let store = SqliteStore::open(url)
                .await
                .context("cannot open the event store")?;
            return Ok(Self::Sqlite(Arc::new(store)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = PostgresStore::open(url)
                .await
                .context("cannot open the event store")?;
            return Ok(Self::Postgres(Arc::new(store)));
        }
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        bail!("unsupported database URL scheme {scheme:?}: use sqlite://PATH or postgres://...")
    }

    pub fn events(&self) -> Arc<dyn EventStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    pub fn keys(&self) -> Arc<dyn KeyStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// Signalled when any instance appends (PostgreSQL's LISTEN/NOTIFY); SQLite has no such
    /// signal and is polled.
    pub fn appended(&self) -> Option<Arc<Notify>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(store) => Some(store.appended()),
        }
    }

    /// How often to poll the log when the flag does not say: often on SQLite (a CLI process may
    /// append at any time and nothing announces it), rarely on PostgreSQL, where NOTIFY wakes
    /// the follower and the poll is only a safety net.
    pub fn default_poll_interval(&self) -> Duration {
        match self {
            Self::Sqlite(_) => Duration::from_millis(250),
            Self::Postgres(_) => Duration::from_secs(2),
        }
    }

    /// Checks the hash chain, gap-free positions and the append-only guards.
    ///
    /// # Errors
    /// [`VerifyError`] with the first bad position or the missing guard.
    pub async fn verify(&self) -> Result<Intact, VerifyError> {
        match self {
            Self::Sqlite(store) => store.verify().await,
            Self::Postgres(store) => store.verify().await,
        }
    }
}
