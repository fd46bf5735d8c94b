//! The PostgreSQL event store: how authlog scales out, many stateless instances on one
//! database.
//!
//! Order: every append transaction first takes one transaction-scoped advisory lock, so
//! appends from all instances are serialised and positions are handed out in commit order. A
//! follower reading `position > n` therefore never misses a row that commits late (with
//! sequence-assigned positions, a transaction holding position 7 could commit after one holding
//! 8, and a reader at 8 would skip 7 for good). The cost is one appender at a time across the
//! cluster, which group commit amortises: each lock holder writes a whole batch.
//!
//! Following: each commit sends `NOTIFY authlog_events`; every instance LISTENs and polls the log
//! at once, with a slow periodic poll as the safety net for missed notifications.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use authlog_application::ports::{
    AppendError, Appended, AuditFilter, EventStore, ExpectedVersion, KeyStore, NewEvent,
    RecordedEvent, SigningKey, StoreError,
};
use authlog_domain::StreamId;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres, Transaction};
use time::OffsetDateTime;
use tokio::sync::{mpsc, Notify};

use crate::rows::{
    decode_all, insert_key, read_query, to_i64, to_u64, unavailable, RawEvent, Read, COLUMNS,
    SELECT_KEYS,
};
use crate::sqlite::{KeyRow, OpenError};
use crate::verify::{require_guards, ChainWalk, HashedRow, Intact, VerifyError, BATCH};
use crate::writer::{self, AppendRequest, NewRow, WriteTx, Writer};

/// The advisory lock that serialises appends across instances ("authlog" in ASCII).
const APPEND_LOCK: i64 = 0x61_7574_686c_6f67;
/// The channel commits are announced on.
const CHANNEL: &str = "authlog_events";
/// Appends queued for the writer before callers wait for room.
const QUEUE: usize = 4_096;
/// The triggers that make `events` append-only.
const GUARDS: &[&str] = &[
    "events_refuse_update",
    "events_refuse_delete",
    "events_refuse_truncate",
];

pub struct PostgresStore {
    pool: PgPool,
    writer: mpsc::Sender<AppendRequest>,
    appended: Arc<Notify>,
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://...`), applies the migrations, and starts
    /// the writer and the listener. The database itself must exist.
    ///
    /// # Errors
    /// [`OpenError`] for a malformed URL, an unreachable server or database, or a failed
    /// migration.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        let shown = redacted(url);
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| OpenError::BadUrl {
                url: shown.clone(),
                reason: e.to_string(),
            })?
            .disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|source| OpenError::Open {
                path: shown.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| OpenError::Migrate {
                path: shown,
                source,
            })?;
        let (writer, requests) = mpsc::channel(QUEUE);
        tokio::spawn(writer::run(PostgresWriter(pool.clone()), requests));
        let appended = Arc::new(Notify::new());
        tokio::spawn(listen(pool.clone(), appended.clone()));
        Ok(Self {
            pool,
            writer,
            appended,
        })
    }

    /// Signalled whenever any instance commits an append (a permit is stored if nobody waits).
    pub fn appended(&self) -> Arc<Notify> {
        self.appended.clone()
    }

    /// Runs one read of the event log (its SQL is shared with the other backend).
    async fn read(&self, read: Read<'_>) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut query = read_query::<Postgres>(read)?;
        let rows: Vec<RawEvent> = query
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        decode_all(rows)
    }

    /// Walks the whole hash chain and checks that the append-only triggers are installed and
    /// enabled.
    ///
    /// # Errors
    /// [`VerifyError`] naming the first bad position or the missing guard.
    pub async fn verify(&self) -> Result<Intact, VerifyError> {
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT tgname::text FROM pg_trigger \
             WHERE tgrelid = 'events'::regclass AND NOT tgisinternal AND tgenabled <> 'D'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        require_guards(GUARDS, &present)?;
        let mut walk = ChainWalk::default();
        let sql = format!(
            "SELECT {COLUMNS}, hash FROM events WHERE position >= $1 ORDER BY position LIMIT $2"
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

/// Relays `NOTIFY authlog_events` to `appended`, reconnecting after failures.
async fn listen(pool: PgPool, appended: Arc<Notify>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %e, "cannot LISTEN; relying on polling");
                } else {
                    // Whatever happened while not listening is caught by the next poll.
                    appended.notify_one();
                    while listener.recv().await.is_ok() {
                        appended.notify_one();
                    }
                    tracing::warn!("LISTEN connection lost; reconnecting");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect to LISTEN; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

struct PostgresWriter(PgPool);

impl Writer for PostgresWriter {
    type Tx = Transaction<'static, Postgres>;

    async fn begin(&self) -> Result<Self::Tx, StoreError> {
        let mut tx = self.0.begin().await.map_err(unavailable)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        Ok(tx)
    }
}

impl WriteTx for Transaction<'static, Postgres> {
    async fn head(&mut self) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(&mut **self)
            .await
            .map_err(unavailable)
    }

    async fn stream_version(&mut self, stream: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0)::BIGINT FROM events WHERE stream_id = $1",
        )
        .bind(stream)
        .fetch_one(&mut **self)
        .await
        .map_err(unavailable)
    }

    async fn insert(&mut self, row: &NewRow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (position, stream_id, stream_version, event_type, subject, \
             payload, metadata, recorded_at, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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

    async fn commit(mut self) -> Result<(), StoreError> {
        // Delivered to listeners only if, and when, the transaction commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *self)
            .await
            .map_err(unavailable)?;
        Transaction::commit(self).await.map_err(unavailable)
    }
}

#[async_trait]
impl EventStore for PostgresStore {
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
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::BIGINT FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        to_u64(head)
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let rows: Vec<KeyRow> = sqlx::query_as(SELECT_KEYS)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.into_iter().map(KeyRow::decode).collect()
    }

    async fn add_first_signing_key(&self, key: SigningKey) -> Result<bool, StoreError> {
        // The advisory lock makes "insert unless any key exists" atomic between instances that
        // start at the same moment on an empty database.
        let mut tx = PostgresWriter(self.pool.clone()).begin().await?;
        let inserted = insert_key::<Postgres>(&key, true)
            .build()
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        Transaction::commit(tx).await.map_err(unavailable)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn add_signing_key(&self, key: SigningKey) -> Result<(), StoreError> {
        insert_key::<Postgres>(&key, false)
            .build()
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_are_kept_out_of_messages() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/authlog"),
            "postgres://db:5432/authlog"
        );
        assert_eq!(redacted("postgres://db/authlog"), "postgres://db/authlog");
    }
}
