//! What is PostgreSQL's own: connecting, the exclusive write transaction, and learning of
//! other instances' commits. This is how authlog scales out: many stateless instances on one
//! database.
//!
//! Order: every append transaction first takes one transaction-scoped advisory lock, so
//! appends from all instances are serialised and positions are handed out in commit order. A
//! follower reading `position > n` therefore never misses a row that commits late (with
//! sequence-assigned positions, a transaction holding position 7 could commit after one holding
//! 8, and a reader at 8 would skip 7 for good). The cost is one appender at a time across the
//! cluster, which group commit amortises: each lock holder writes a whole batch.
//!
//! Following: each commit (of events, or of the projections) sends `NOTIFY authlog_events`;
//! every instance LISTENs and runs its projector and follower at once, with a slow periodic
//! poll as the safety net for missed notifications.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use authlog_application::ports::{SigningKey, StoreError};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Postgres, Transaction};
use tokio::sync::{watch, Notify};

use crate::rows::{insert_key, revoke_key, unavailable};
use crate::store::OpenError;
use crate::writer::{NewRow, WriteTx, Writer};

/// The advisory lock that serialises appends across instances ("authlog" in ASCII).
const APPEND_LOCK: i64 = 0x61_7574_686c_6f67;
/// The channel commits are announced on.
pub const CHANNEL: &str = "authlog_events";
/// The safety-net poll: NOTIFY announces commits.
pub const POLL: Duration = Duration::from_secs(2);
/// The triggers that make `events` append-only.
pub const GUARDS: &[&str] = &[
    "events_refuse_update",
    "events_refuse_delete",
    "events_refuse_truncate",
];

/// `url` without its password, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Connects to the database at `url` (`postgres://...`) and applies the migrations. The
/// database itself must exist.
pub async fn open(url: &str) -> Result<PgPool, OpenError> {
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
    Ok(pool)
}

/// The enabled triggers on `events`.
pub async fn guards(pool: &PgPool) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar(
        "SELECT tgname::text FROM pg_trigger \
         WHERE tgrelid = 'events'::regclass AND NOT tgisinternal AND tgenabled <> 'D'",
    )
    .fetch_all(pool)
    .await
    .map_err(unavailable)
}

/// Relays `NOTIFY authlog_events` to `announced`, reconnecting after failures, until `stopped`.
pub async fn listen(pool: PgPool, announced: Arc<Notify>, mut stopped: watch::Receiver<()>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(CHANNEL).await {
                    tracing::warn!(error = %e, "cannot LISTEN; relying on polling");
                } else {
                    // Whatever happened while not listening is caught by the next run.
                    announced.notify_one();
                    loop {
                        tokio::select! {
                            received = listener.recv() => match received {
                                Ok(_) => announced.notify_one(),
                                Err(_) => break,
                            },
                            _ = stopped.changed() => return,
                        }
                    }
                    tracing::warn!("LISTEN connection lost; reconnecting");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect to LISTEN; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.changed() => return,
        }
    }
}

pub struct PostgresWriter(pub PgPool);

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
        insert_key::<Postgres>(key)
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
        revoke_key::<Postgres>(kid, at, tombstone)
            .build()
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
