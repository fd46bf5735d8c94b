//! The single writer: every append of this process goes through one task and one connection.
//!
//! Why one writer: SQLite admits one writer at a time anyway, and serialising appends here
//! gives three things at once. Positions are handed out in commit order (a follower reading
//! `position > n` never misses a row that commits late). Appends that arrive while a commit is
//! in flight are batched into the next transaction (group commit: one fsync for many
//! requests). And the expected-version check and the insert happen inside one `BEGIN
//! IMMEDIATE` transaction, which also excludes other processes (the CLI) for its duration.

use authlog_application::ports::{AppendError, Appended, ExpectedVersion, StoreError};
use authlog_domain::StreamId;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::chain::{self, RowContent};
use crate::rows::{to_i64, to_u64, unavailable};

/// Appends taken into one transaction at most.
const MAX_BATCH: usize = 256;

/// An event serialised for its row.
pub struct PreparedEvent {
    pub event_type: &'static str,
    pub subject: Option<String>,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: String,
}

pub struct AppendRequest {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
    pub reply: oneshot::Sender<Result<Appended, AppendError>>,
}

/// Runs until every sender is dropped.
pub async fn run(mut conn: SqliteConnection, mut requests: mpsc::Receiver<AppendRequest>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = requests.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let outcomes = commit(&mut conn, &batch).await;
        match outcomes {
            Ok(outcomes) => {
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    // The requester may have gone (client hung up); the append stands anyway.
                    let _ = request.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = batch.len(), "append batch failed");
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(AppendError::Store(e.clone())));
                }
            }
        }
    }
}

/// Commits every request of `batch` that passes its version check, in one transaction.
/// A request that fails its check gets its conflict; the others are unaffected.
async fn commit(
    conn: &mut SqliteConnection,
    batch: &[AppendRequest],
) -> Result<Vec<Result<Appended, AppendError>>, StoreError> {
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
    let (mut position, mut previous) = match head {
        Some((position, hash)) => (to_u64(position)?, hash),
        None => (0, chain::GENESIS.to_vec()),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        let current: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?",
        )
        .bind(request.stream.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let current = to_u64(current)?;
        let expected_ok = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::Exactly(v) => current == v,
        };
        if !expected_ok {
            outcomes.push(Err(AppendError::Conflict {
                stream: request.stream.clone(),
                expected: request.expected,
                actual: current,
            }));
            continue;
        }
        let mut version = current;
        for event in &request.events {
            position += 1;
            version += 1;
            let hash = chain::link(
                &previous,
                &RowContent {
                    position,
                    stream_id: request.stream.as_str(),
                    stream_version: version,
                    event_type: event.event_type,
                    subject: event.subject.as_deref(),
                    payload: &event.payload,
                    metadata: &event.metadata,
                    recorded_at: &event.recorded_at,
                },
            );
            sqlx::query(
                "INSERT INTO events (position, stream_id, stream_version, event_type, subject, \
                 payload, metadata, recorded_at, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(to_i64(position)?)
            .bind(request.stream.as_str())
            .bind(to_i64(version)?)
            .bind(event.event_type)
            .bind(event.subject.as_deref())
            .bind(&event.payload)
            .bind(&event.metadata)
            .bind(&event.recorded_at)
            .bind(hash.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            previous = hash.to_vec();
        }
        outcomes.push(Ok(Appended {
            stream_version: version,
            position,
        }));
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(outcomes)
}
