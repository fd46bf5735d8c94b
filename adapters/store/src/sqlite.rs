//! The SQLite event store.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a commit is on disk (the WAL is
//! fsynced) before the append is acknowledged; an acknowledged write survives a crash or power
//! loss. Readers use a small pool and, thanks to WAL, never wait for the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use authlog_application::ports::{
    AppendError, Appended, EventStore, ExpectedVersion, KeyStore, NewEvent, RecordedEvent,
    SigningKey, StoreError,
};
use authlog_domain::StreamId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::rows::{decode, format_timestamp, parse_timestamp, to_i64, unavailable, COLUMNS};
use crate::writer::{self, AppendRequest, PreparedEvent};

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Appends queued for the writer before callers wait for room.
const QUEUE: usize = 4_096;

/// Why the store could not be opened. Each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid database URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot open database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot apply migrations to {path}: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// The event log (and signing keys) in one SQLite file.
pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<AppendRequest>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite:path`),
    /// applies the migrations, and starts the writer task. Needs a tokio runtime.
    ///
    /// # Errors
    /// [`OpenError`] for a malformed URL, a file that cannot be opened or created, or a
    /// migration that fails.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        if !url.starts_with("sqlite:") {
            return Err(OpenError::BadUrl {
                url: url.to_owned(),
                reason: "expected sqlite://PATH".into(),
            });
        }
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
        let open_error = |source| OpenError::Open {
            path: path.clone(),
            source,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| OpenError::Migrate {
                path: path.clone(),
                source,
            })?;
        let conn = options.connect().await.map_err(open_error)?;
        let (writer, requests) = mpsc::channel(QUEUE);
        tokio::spawn(writer::run(conn, requests));
        Ok(Self { pool, writer })
    }

    async fn fetch<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        query
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(decode)
            .collect()
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream: StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, AppendError> {
        let events = events
            .into_iter()
            .map(|e| {
                let metadata = serde_json::to_string(&e.metadata)
                    .map_err(|e| StoreError::Unavailable(format!("metadata: {e}")))?;
                Ok(PreparedEvent {
                    event_type: e.event.event_type(),
                    subject: e.subject,
                    payload: e.event.payload().to_string(),
                    metadata,
                    recorded_at: format_timestamp(e.occurred_at),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let (reply, outcome) = oneshot::channel();
        let request = AppendRequest {
            stream,
            expected,
            events,
            reply,
        };
        let gone = || StoreError::Unavailable("the writer task has stopped".into());
        self.writer.send(request).await.map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }

    async fn read_stream(&self, stream: StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE stream_id = ? ORDER BY stream_version");
        self.fetch(sqlx::query(&sql).bind(stream.as_str())).await
    }

    async fn read_stream_tail(
        &self,
        stream: StreamId,
        count: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT * FROM (SELECT {COLUMNS} FROM events WHERE stream_id = ? \
             ORDER BY stream_version DESC LIMIT ?) ORDER BY stream_version"
        );
        self.fetch(sqlx::query(&sql).bind(stream.as_str()).bind(count))
            .await
    }

    async fn read_subject(&self, subject: String) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE subject = ? ORDER BY position");
        self.fetch(sqlx::query(&sql).bind(subject)).await
    }

    async fn read_all(&self, after: u64, limit: u32) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?");
        self.fetch(sqlx::query(&sql).bind(to_i64(after)?).bind(limit))
            .await
    }

    async fn read_type_since(
        &self,
        event_type: &'static str,
        since: OffsetDateTime,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE event_type = ? AND recorded_at >= ? ORDER BY position"
        );
        self.fetch(
            sqlx::query(&sql)
                .bind(event_type)
                .bind(format_timestamp(since)),
        )
        .await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        crate::rows::to_u64(head)
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, public_key, created_at FROM signing_keys \
             ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(SigningKey {
                    kid: row.try_get("kid").map_err(unavailable)?,
                    algorithm: row.try_get("algorithm").map_err(unavailable)?,
                    private_der: row.try_get("private_key").map_err(unavailable)?,
                    public_key: row.try_get("public_key").map_err(unavailable)?,
                    created_at: parse_timestamp(
                        &row.try_get::<String, _>("created_at")
                            .map_err(unavailable)?,
                    )?,
                })
            })
            .collect()
    }

    async fn add_first_signing_key(&self, key: SigningKey) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at) \
             SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM signing_keys)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_der)
        .bind(&key.public_key)
        .bind(format_timestamp(key.created_at))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn add_signing_key(&self, key: SigningKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.private_der)
        .bind(&key.public_key)
        .bind(format_timestamp(key.created_at))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}
