//! What is SQLite's own: opening the file, and the exclusive write transaction.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a commit is on disk (the WAL is
//! fsynced) before the append is acknowledged; an acknowledged write survives a crash or power
//! loss. Readers use a small pool and, thanks to WAL, never wait for the writer.

use std::str::FromStr;
use std::time::Duration;

use authlog_application::ports::{SigningKey, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Sqlite, Transaction};

use crate::rows::{insert_key, revoke_key, unavailable};
use crate::store::OpenError;
use crate::writer::{NewRow, WriteTx, Writer};

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to look for what other processes (the CLI) appended: nothing announces it.
pub const POLL: Duration = Duration::from_millis(250);
/// The triggers that make `events` append-only.
pub const GUARDS: &[&str] = &["events_refuse_update", "events_refuse_delete"];

/// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite:path`) and
/// applies the migrations.
pub async fn open(url: &str) -> Result<SqlitePool, OpenError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| OpenError::BadUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .disable_statement_logging();
    let path = options.get_filename().display().to_string();
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|source| OpenError::Open {
            path: path.clone(),
            source,
        })?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .map_err(|source| OpenError::Migrate {
            path: path.clone(),
            source,
        })?;
    keep_private(std::path::Path::new(&path));
    Ok(pool)
}

/// Makes the database file and its WAL and shared-memory files readable by their owner only
/// (0600). They hold password hashes, the log's personal data and the signing keys. The binary
/// creates new files so ([`umask`](https://man7.org/linux/man-pages/man2/umask.2.html) 077);
/// this tightens files that an older release, or another tool, made readable to every local
/// user. SQLite gives the WAL and shared-memory files the database file's mode, so they stay
/// private from then on.
fn keep_private(database: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut files = vec![database.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    for file in files {
        // Absent (an in-memory database, no WAL yet) is fine: nothing to protect.
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => tracing::warn!(
                file = %file.display(),
                was = format!("{mode:o}"),
                now = format!("{:o}", mode & 0o700),
                "the database file was readable by other users; it is now private to its owner"
            ),
            Err(e) => tracing::warn!(
                file = %file.display(),
                mode = format!("{mode:o}"),
                error = %e,
                "the database file is readable by other users and cannot be made private"
            ),
        }
    }
}

/// The connection the projector writes through: the same file, with `synchronous = NORMAL`, so
/// its commits do not wait for an fsync (see [`crate::sql::Pool::begin`]). In WAL mode that is
/// safe beside the writer's `FULL` commits: the log is written in order, and the writer's next
/// fsync makes everything before it durable.
///
/// It also writes in bulk (a rebuild replays the whole log), so it keeps a larger page cache
/// (64 MiB: the projections' indexes stay in memory), stages batches in memory, and lets the WAL
/// grow to 64 MiB before it checkpoints.
pub async fn projector_pool(pool: &SqlitePool) -> Result<SqlitePool, OpenError> {
    let options = (*pool.connect_options())
        .clone()
        .synchronous(SqliteSynchronous::Normal)
        .pragma("cache_size", "-65536")
        .pragma("temp_store", "MEMORY")
        .pragma("wal_autocheckpoint", "16384");
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|source| OpenError::Open {
            path: path(pool),
            source,
        })
}

/// The file the pool is on, for messages.
pub fn path(pool: &SqlitePool) -> String {
    pool.connect_options().get_filename().display().to_string()
}

/// The triggers on `events`.
pub async fn guards(pool: &SqlitePool) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'",
    )
    .fetch_all(pool)
    .await
    .map_err(unavailable)
}

/// SQLite's writer: `BEGIN IMMEDIATE` takes the database's write lock at once, so the version
/// checks and inserts of a batch see no other writer, in this process or another.
pub struct SqliteWriter(pub SqlitePool);

impl Writer for SqliteWriter {
    type Tx = Transaction<'static, Sqlite>;

    async fn begin(&self) -> Result<Self::Tx, StoreError> {
        self.0
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)
    }
}

impl WriteTx for Transaction<'static, Sqlite> {
    async fn head(&mut self) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(&mut **self)
            .await
            .map_err(unavailable)
    }

    async fn stream_version(&mut self, stream: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?",
        )
        .bind(stream)
        .fetch_one(&mut **self)
        .await
        .map_err(unavailable)
    }

    async fn insert(&mut self, row: &NewRow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (position, stream_id, stream_version, event_type, subject, \
             payload, metadata, recorded_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.position)
        .bind(row.stream_id)
        .bind(row.stream_version)
        .bind(&row.event.event_type)
        .bind(row.event.subject.as_deref())
        .bind(&row.event.payload)
        .bind(&row.event.metadata)
        .bind(&row.event.recorded_at)
        .bind(row.hash)
        .execute(&mut **self)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn insert_key(&mut self, key: &SigningKey) -> Result<(), StoreError> {
        insert_key::<Sqlite>(key)
            .build()
            .execute(&mut **self)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke_key(
        &mut self,
        kid: &str,
        at: &str,
        tombstone: &[u8],
    ) -> Result<(), StoreError> {
        revoke_key::<Sqlite>(kid, at, tombstone)
            .build()
            .execute(&mut **self)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        Transaction::commit(self).await.map_err(unavailable)
    }
}
