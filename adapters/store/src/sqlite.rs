//! The SQLite event store.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a commit is on disk (the WAL is
//! fsynced) before the append is acknowledged; an acknowledged write survives a crash or power
//! loss. Readers use a small pool and, thanks to WAL, never wait for the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use authlog_application::ports::{
    AppendError, Appended, AuditFilter, EventStore, ExpectedVersion, KeyStore, NewEvent,
    RecordedEvent, SigningKey, StoreError,
};
use authlog_domain::StreamId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Sqlite, Transaction};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::rows::{
    decode_all, insert_key, parse_timestamp, read_query, to_i64, to_u64, unavailable, RawEvent,
    Read, COLUMNS, SELECT_KEYS,
};
use crate::verify::{require_guards, ChainWalk, HashedRow, Intact, VerifyError, BATCH};
use crate::writer::{self, AppendRequest, NewRow, WriteTx, Writer};

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Appends queued for the writer before callers wait for room.
const QUEUE: usize = 4_096;
/// The triggers that make `events` append-only.
const GUARDS: &[&str] = &["events_refuse_update", "events_refuse_delete"];

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
            .map_err(|source| OpenError::Migrate { path, source })?;
        let (writer, requests) = mpsc::channel(QUEUE);
        tokio::spawn(writer::run(SqliteWriter(pool.clone()), requests));
        Ok(Self { pool, writer })
    }

    /// Runs one read of the event log (its SQL is shared with the other backend).
    async fn read(&self, read: Read<'_>) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut query = read_query::<Sqlite>(read)?;
        let rows: Vec<RawEvent> = query
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode_all(rows)
    }

    /// Walks the whole hash chain and checks that the append-only triggers are installed.
    ///
    /// # Errors
    /// [`VerifyError`] naming the first bad position or the missing guard.
    pub async fn verify(&self) -> Result<Intact, VerifyError> {
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        require_guards(GUARDS, &present)?;
        let mut walk = ChainWalk::default();
        let sql = format!(
            "SELECT {COLUMNS}, hash FROM events WHERE position >= ? ORDER BY position LIMIT ?"
        );
        loop {
            let rows: Vec<HashedRow> = sqlx::query_as(&sql)
                .bind(to_i64(walk.next_position())?)
                .bind(BATCH)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
            for row in &rows {
                walk.check(row)?;
            }
            if rows.len() < BATCH as usize {
                return Ok(walk.finish());
            }
        }
    }
}

/// SQLite's writer: `BEGIN IMMEDIATE` takes the database's write lock at once, so the version
/// checks and inserts of a batch see no other writer, in this process or another.
struct SqliteWriter(SqlitePool);

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
        .bind(row.event.event_type)
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

    async fn commit(self) -> Result<(), StoreError> {
        Transaction::commit(self).await.map_err(unavailable)
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
        writer::submit(&self.writer, stream, expected, events).await
    }

    async fn read_stream(&self, stream: StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(Read::Stream(&stream)).await
    }

    async fn read_stream_tail(
        &self,
        stream: StreamId,
        count: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(Read::Tail(&stream, count)).await
    }

    async fn read_stream_edges(
        &self,
        stream: StreamId,
        tail: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(Read::Edges(&stream, tail)).await
    }

    async fn read_subject(&self, subject: String) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(Read::Subject(subject)).await
    }

    async fn read_all(&self, after: u64, limit: u32) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(Read::After(after, limit)).await
    }

    async fn read_type_since(
        &self,
        event_type: &'static str,
        since: OffsetDateTime,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(Read::TypeSince(event_type, since)).await
    }

    async fn query(&self, filter: AuditFilter) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read(Read::Audit(&filter)).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        to_u64(head)
    }
}

/// A `signing_keys` row.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    algorithm: String,
    private_key: Vec<u8>,
    public_key: Vec<u8>,
    created_at: String,
}

impl KeyRow {
    pub(crate) fn decode(self) -> Result<SigningKey, StoreError> {
        Ok(SigningKey {
            kid: self.kid,
            algorithm: self.algorithm,
            private_der: self.private_key,
            public_key: self.public_key,
            created_at: parse_timestamp(&self.created_at)?,
        })
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(SELECT_KEYS)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.into_iter().map(KeyRow::decode).collect()
    }

    async fn add_first_signing_key(&self, key: SigningKey) -> Result<bool, StoreError> {
        let inserted = insert_key::<Sqlite>(&key, true)
            .build()
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn add_signing_key(&self, key: SigningKey) -> Result<(), StoreError> {
        insert_key::<Sqlite>(&key, false)
            .build()
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
