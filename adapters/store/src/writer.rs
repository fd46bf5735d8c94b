//! The single writer: every append of this process goes through one task.
//!
//! Why one writer: the database admits one appender at a time anyway (SQLite's write lock,
//! PostgreSQL's advisory lock, both held for the transaction), and serialising appends gives
//! three things at once. Positions are handed out in commit order, so a follower reading
//! `position > n` never misses a row that commits late: no transaction with a lower position
//! can still be in flight. Appends that arrive while a commit is in flight are batched into the
//! next transaction (group commit: one fsync for many requests). And each expected-version check
//! and its insert happen inside that one exclusive transaction.
//!
//! A request is atomic across streams: every part's version is checked before any of its events
//! is inserted, and a request that fails a check writes nothing (the other requests of the batch
//! are unaffected). A request may also carry a change to the signing keys, stored with its
//! events.
//!
//! A batch costs a fixed number of statements, whatever its size. Each backend is a
//! [`Writer`]: SQLite reads the head and the batch's stream versions in two queries, works the
//! batch out here ([`plan`]) and inserts it in multi-row statements; PostgreSQL sends the whole
//! batch to a function that does the same in the database, in one round trip, so that the
//! cluster-wide append lock is never held across the network.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use authlog_application::ports::{
    AppendError, Appended, Beside, ExpectedVersion, StoreError, StreamWrite,
};
use authlog_domain::StreamId;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::beside::Written;
use crate::chain::{self, RowContent};
use crate::personal::Keyring;
use crate::rows::{format_timestamp, to_i64, to_u64};

/// Appends taken into one transaction at most.
const MAX_BATCH: usize = 256;

/// An event serialised for its row.
pub struct PreparedEvent {
    pub event_type: String,
    pub schema_version: i64,
    pub subject: Option<String>,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: String,
}

/// One stream's part of a request, serialised.
pub struct PreparedWrite {
    pub stream: StreamId,
    pub expected: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
}

pub struct AppendRequest {
    pub writes: Vec<PreparedWrite>,
    /// What it writes besides its events, in the same transaction (signing keys, a name claim,
    /// an erasure, a user's secret): see [`crate::beside`].
    pub beside: Vec<Written>,
    pub reply: oneshot::Sender<Result<Appended, AppendError>>,
}

impl AppendRequest {
    /// Whether the request writes more than events: such a request is committed in a batch of
    /// its own (see [`run`]), so that what it writes besides needs no per-request undo in the
    /// backends (a claimed name undoes the whole transaction).
    pub fn alone(&self) -> bool {
        !self.beside.is_empty()
    }
}

/// What became of one request of a batch.
pub type Outcome = Result<Appended, AppendError>;

/// How a backend commits a batch, on a connection of the writer's own (no pool checkout, and
/// no ping, per batch; [`run`] opens it and, after any error, opens a fresh one).
pub trait Writer: Send + Sync + 'static {
    type Connection: Send;

    fn connect(&self) -> impl Future<Output = Result<Self::Connection, StoreError>> + Send;

    /// Commits every request of `batch` whose version checks all pass, in one transaction that
    /// excludes every other appender (in this process or another) until it ends. A request
    /// that fails a check gets its conflict and writes nothing; the others are unaffected. A
    /// request that changes the signing keys or claims a name comes alone ([`AppendRequest::alone`]):
    /// its key change is written only if its events are, and its events and claim both or
    /// neither ([`AppendError::NameTaken`] when the name or its skeleton is taken). Answers one
    /// outcome per request, in order.
    fn commit(
        &self,
        connection: &mut Self::Connection,
        batch: &[AppendRequest],
    ) -> impl Future<Output = Result<Vec<Outcome>, StoreError>> + Send;
}

/// A row about to be inserted, hash included.
pub struct NewRow<'a> {
    pub position: i64,
    pub stream_id: &'a str,
    pub stream_version: i64,
    pub event: &'a PreparedEvent,
    pub hash: [u8; 32],
}

/// What a batch writes, worked out in this process from the log's head and the current
/// versions of the batch's streams (SQLite; PostgreSQL works the same out in the database).
pub struct Plan<'a> {
    pub rows: Vec<NewRow<'a>>,
    pub outcomes: Vec<Outcome>,
}

/// The streams `batch` writes to, each once: what [`plan`] needs the versions of.
pub fn streams(batch: &[AppendRequest]) -> Vec<&str> {
    let mut streams: Vec<&str> = batch
        .iter()
        .flat_map(|r| r.writes.iter().map(|w| w.stream.as_str()))
        .collect();
    streams.sort_unstable();
    streams.dedup();
    streams
}

/// Checks every request of `batch` in order against `versions` (each stream of [`streams`]
/// with its current version; 0: no stream), as the batch's earlier requests leave them, and
/// assigns the positions, stream versions and chain hashes of the requests that pass, after
/// `head` (the last row's position and hash).
pub fn plan<'a>(
    batch: &'a [AppendRequest],
    head: Option<(i64, Vec<u8>)>,
    mut versions: HashMap<&'a str, u64>,
) -> Result<Plan<'a>, StoreError> {
    let (mut position, mut previous) = match head {
        Some((position, hash)) => (to_u64(position)?, hash),
        None => (0, chain::GENESIS.to_vec()),
    };
    let mut rows = Vec::new();
    let mut outcomes = Vec::with_capacity(batch.len());
    'requests: for request in batch {
        for write in &request.writes {
            let current = versions.get(write.stream.as_str()).copied().unwrap_or(0);
            if !write.expected.holds_at(current) {
                outcomes.push(Err(AppendError::Conflict {
                    stream: write.stream.clone(),
                    expected: write.expected,
                    actual: current,
                }));
                continue 'requests;
            }
        }
        let first = position + 1;
        for write in &request.writes {
            let version = versions.entry(write.stream.as_str()).or_insert(0);
            for event in &write.events {
                position += 1;
                *version += 1;
                let hash = chain::link(
                    &previous,
                    &RowContent {
                        position,
                        stream_id: write.stream.as_str(),
                        stream_version: *version,
                        event_type: &event.event_type,
                        subject: event.subject.as_deref(),
                        payload: &event.payload,
                        metadata: &event.metadata,
                        recorded_at: &event.recorded_at,
                        schema_version: Some(to_u64(event.schema_version)?),
                    },
                );
                rows.push(NewRow {
                    position: to_i64(position)?,
                    stream_id: write.stream.as_str(),
                    stream_version: to_i64(*version)?,
                    event,
                    hash,
                });
                previous = hash.to_vec();
            }
        }
        outcomes.push(Ok(Appended { first, position }));
    }
    Ok(Plan { rows, outcomes })
}

/// What the writer tells the rest of the store.
pub struct Signals {
    /// The highest position this process appended: a read of a projection waits for it.
    pub last_appended: Arc<AtomicU64>,
    /// Signalled after every commit, so the projector runs at once.
    pub committed: Arc<Notify>,
}

/// Runs until every sender is dropped. Takes up to [`MAX_BATCH`] waiting requests into each
/// transaction, except that a request changing the signing keys is committed alone: a key
/// change is rare, and alone it needs no per-request undo in the backends.
pub async fn run<W: Writer>(
    writer: W,
    mut requests: mpsc::Receiver<AppendRequest>,
    signals: Signals,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut carried = None;
    let mut connection = None;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None => match requests.recv().await {
                Some(request) => request,
                None => return,
            },
        };
        let alone = first.alone();
        batch.push(first);
        while !alone && batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(next) if next.alone() => {
                    carried = Some(next);
                    break;
                }
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let committed = commit_on(&writer, &mut connection, &batch).await;
        metrics::histogram!("authlog_append_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("authlog_append_batch_size").record(batch.len() as f64);
        match committed {
            Ok(outcomes) => {
                if let Some(head) = outcomes.iter().flatten().map(|a| a.position).max() {
                    signals.last_appended.fetch_max(head, Ordering::AcqRel);
                    signals.committed.notify_one();
                }
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

/// Commits `batch` on `connection`, opening it first if there is none. Whatever went wrong,
/// the next batch starts on a fresh connection.
async fn commit_on<W: Writer>(
    writer: &W,
    connection: &mut Option<W::Connection>,
    batch: &[AppendRequest],
) -> Result<Vec<Outcome>, StoreError> {
    let open = match connection {
        Some(open) => open,
        None => connection.insert(writer.connect().await?),
    };
    let committed = writer.commit(open, batch).await;
    if committed.is_err() {
        *connection = None;
    }
    committed
}

/// Serialises `writes` (sealing their personal data with `keyring`, outside the writer so that
/// it does not hold up the batch) and what they write `beside` (sealing a user's secret under
/// their data key alike), hands them to the writer task, and waits for the outcome.
pub async fn submit(
    writer: &mpsc::Sender<AppendRequest>,
    keyring: &Keyring,
    writes: Vec<StreamWrite>,
    beside: Vec<Beside>,
) -> Result<Appended, AppendError> {
    let mut prepared = Vec::with_capacity(writes.len());
    for w in writes {
        prepared.push(PreparedWrite {
            stream: w.stream,
            expected: w.expected,
            events: keyring.seal(w.events).await?,
        });
    }
    let mut written = Vec::with_capacity(beside.len());
    for beside in beside {
        written.push(prepare(keyring, beside).await?);
    }
    let (reply, outcome) = oneshot::channel();
    let request = AppendRequest {
        writes: prepared,
        beside: written,
        reply,
    };
    let gone = || StoreError::Unavailable("the writer task has stopped".into());
    writer.send(request).await.map_err(|_| gone())?;
    outcome.await.map_err(|_| gone())?
}

/// `beside` ready to be written.
async fn prepare(keyring: &Keyring, beside: Beside) -> Result<Written, StoreError> {
    Ok(match beside {
        Beside::ClaimName(claim) => Written::ClaimName(claim),
        Beside::EraseUser(user) => Written::EraseUser(user.to_string()),
        Beside::AddSigningKey(key) => Written::AddSigningKey(key),
        Beside::RevokeSigningKey {
            kid,
            at,
            tombstone,
            replacement,
        } => Written::RevokeSigningKey {
            kid,
            at: format_timestamp(at),
            tombstone,
            replacement,
        },
        Beside::PutSecret(secret) => Written::PutSecret {
            user_id: secret.user_id.to_string(),
            kind: secret.kind.as_str(),
            sealed: keyring
                .seal_secret(secret.user_id, secret.kind, &secret.id, &secret.secret)
                .await?,
            id: secret.id,
        },
        Beside::DeleteSecret { user_id, kind, id } => Written::DeleteSecret {
            user_id: user_id.to_string(),
            kind: kind.as_str(),
            id,
        },
    })
}
