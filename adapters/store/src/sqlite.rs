//! What is SQLite's own: opening the file, and the exclusive write transaction.
//!
//! Durability: WAL journal with `synchronous = FULL`, so a commit is on disk (the WAL is
//! fsynced) before the append is acknowledged; an acknowledged write survives a crash or power
//! loss. Readers use a small pool and, thanks to WAL, never wait for the writer.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use authlog_application::ports::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Sqlite};

use crate::beside;
use crate::rows::{to_u64, unavailable};
use crate::store::OpenError;
use crate::verify::Guard;
use crate::writer::{plan, streams, AppendRequest, Outcome, Writer};

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to look for what other processes (the CLI) appended: nothing announces it.
pub const POLL: Duration = Duration::from_millis(250);
/// The triggers that make `events` append-only, each with its definition as the migration
/// installed it (SQLite keeps the `CREATE TRIGGER` text, and runs what the text says).
pub const GUARDS: &[(&str, &str)] = &[
    (
        "events_refuse_update",
        "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events BEGIN \
         SELECT RAISE(ABORT, 'events is append-only: UPDATE refused'); END",
    ),
    (
        "events_refuse_delete",
        "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events BEGIN \
         SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END",
    ),
];

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
        // Deleted and overwritten content is zeroed in the file, not merely unlinked: an
        // erased user's rows in the read models, their destroyed key, and a freed name leave
        // no bytes behind (the WAL's copies go at the checkpoint that follows an erasure).
        .pragma("secure_delete", "ON")
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
    keep_database_private(std::path::Path::new(&path));
    Ok(pool)
}

/// Makes the database file and its WAL and shared-memory files readable by their owner only
/// (0600). They hold password hashes, the log's personal data and the signing keys. The binary
/// creates new files so ([`umask`](https://man7.org/linux/man-pages/man2/umask.2.html) 077);
/// this tightens files that an older release, or another tool, made readable to every local
/// user. SQLite gives the WAL and shared-memory files the database file's mode, so they stay
/// private from then on.
fn keep_database_private(database: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        keep_private(std::path::Path::new(&name), "database file");
    }
}

/// Makes `file` (the `what` of a message: a database file, the master key file) readable and
/// writable by its owner only, if others could read it, with a warning that says so; a file
/// that cannot be tightened is warned about. An absent file is fine: nothing to protect.
pub fn keep_private(file: &std::path::Path, what: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(metadata) = std::fs::metadata(file) else {
        return;
    };
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    let private = mode & 0o700;
    match std::fs::set_permissions(file, std::fs::Permissions::from_mode(private)) {
        Ok(()) => tracing::warn!(
            file = %file.display(),
            was = format!("{mode:o}"),
            now = format!("{private:o}"),
            "the {what} was readable by other users; it is now private to its owner"
        ),
        Err(e) => tracing::warn!(
            file = %file.display(),
            mode = format!("{mode:o}"),
            error = %e,
            "the {what} is readable by other users and cannot be made private"
        ),
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

/// The triggers on `events`, with the text that defines each.
pub async fn guards(pool: &SqlitePool) -> Result<Vec<Guard>, StoreError> {
    sqlx::query_as(
        "SELECT name, sql AS definition FROM sqlite_master \
         WHERE type = 'trigger' AND tbl_name = 'events'",
    )
    .fetch_all(pool)
    .await
    .map_err(unavailable)
}

/// SQLite's writer, on a connection of its own. `BEGIN IMMEDIATE` takes the database's write
/// lock at once, so the version checks and inserts of a batch see no other writer, in this
/// process or another. A batch costs the same few statements whatever its size: the head, the
/// versions of all its streams, and multi-row inserts.
pub struct SqliteWriter(SqliteConnectOptions);

impl SqliteWriter {
    /// A writer that connects as `pool` does.
    pub fn new(pool: &SqlitePool) -> Self {
        Self((*pool.connect_options()).clone())
    }
}

/// Rows per INSERT statement: 10 bound values each, well under SQLite's limit on variables.
const ROWS_PER_INSERT: usize = 100;

impl Writer for SqliteWriter {
    type Connection = SqliteConnection;

    async fn connect(&self) -> Result<SqliteConnection, StoreError> {
        self.0.connect().await.map_err(unavailable)
    }

    async fn commit(
        &self,
        connection: &mut SqliteConnection,
        batch: &[AppendRequest],
    ) -> Result<Vec<Outcome>, StoreError> {
        commit(connection, batch).await
    }
}

async fn commit(
    connection: &mut SqliteConnection,
    batch: &[AppendRequest],
) -> Result<Vec<Outcome>, StoreError> {
    let mut tx = connection
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let head = sqlx::query_as("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
    let streams = streams(batch);
    let listed = serde_json::to_string(&streams)
        .map_err(|e| StoreError::Unavailable(format!("stream list: {e}")))?;
    // Each stream's last version by one descent of the (stream_id, stream_version) index: a
    // `MAX ... GROUP BY stream_id` over the same index read every entry of each stream, so a
    // login cost more with every earlier login of its account (6,000 entries: about 1 ms).
    let current: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT j.value, (SELECT e.stream_version FROM events e WHERE e.stream_id = j.value \
         ORDER BY e.stream_version DESC LIMIT 1) FROM json_each(?) j",
    )
    .bind(listed)
    .fetch_all(&mut *tx)
    .await
    .map_err(unavailable)?;
    let mut versions = HashMap::with_capacity(streams.len());
    for (stream, version) in &current {
        // Look each up to borrow from the batch; a stream with no event yet is at 0.
        if let (Ok(i), Some(version)) = (streams.binary_search(&stream.as_str()), version) {
            versions.insert(streams[i], to_u64(*version)?);
        }
    }
    let plan = plan(batch, head, versions)?;
    for rows in plan.rows.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (position, stream_id, stream_version, event_type, subject, \
             payload, metadata, recorded_at, hash, schema_version) ",
        );
        insert.push_values(rows, |mut values, row| {
            values
                .push_bind(row.position)
                .push_bind(row.stream_id)
                .push_bind(row.stream_version)
                .push_bind(&row.event.event_type)
                .push_bind(row.event.subject.as_deref())
                .push_bind(&row.event.payload)
                .push_bind(&row.event.metadata)
                .push_bind(&row.event.recorded_at)
                .push_bind(&row.hash[..])
                .push_bind(row.event.schema_version);
        });
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    for (request, outcome) in batch.iter().zip(&plan.outcomes) {
        if let Ok(appended) = outcome {
            // Alone in its batch when it writes anything beside (`AppendRequest::alone`):
            // undoing it undoes the batch.
            if let Err(refused) = beside::write(&mut tx, &request.beside, *appended).await? {
                tx.rollback().await.map_err(unavailable)?;
                return Ok(vec![Err(refused)]);
            }
        }
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(plan.outcomes)
}
