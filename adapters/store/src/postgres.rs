//! What is PostgreSQL's own: connecting, the exclusive write transaction, and learning of
//! other instances' commits. This is how authlog scales out: many stateless instances on one
//! database.
//!
//! Order: every append transaction first takes one transaction-scoped advisory lock, so
//! appends from all instances are serialised and positions are handed out in commit order. A
//! follower reading `position > n` therefore never misses a row that commits late (with
//! sequence-assigned positions, a transaction holding position 7 could commit after one holding
//! 8, and a reader at 8 would skip 7 for good). The cost is one appender at a time across the
//! cluster, which group commit amortises: each lock holder writes a whole batch, in one
//! statement ([`PostgresWriter`]), so the lock is held for the database's work and its commit,
//! never for a round trip to an instance.
//!
//! Following: each commit (of events, or of the projections) sends `NOTIFY authlog_events`;
//! every instance LISTENs and runs its projector and follower at once, with a slow periodic
//! poll as the safety net for missed notifications.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use authlog_application::ports::{AppendError, Appended, ExpectedVersion, StoreError};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{watch, Notify};

use crate::beside;
use crate::rows::{to_i64, to_u64, unavailable};
use crate::store::OpenError;
use crate::verify::Guard;
use crate::writer::{AppendRequest, Outcome, Writer};

/// The advisory lock that serialises appends across instances ("authlog" in ASCII).
pub const APPEND_LOCK: i64 = 0x61_7574_686c_6f67;
/// How long an append waits for that lock before it gives up (`lock_timeout`): the request
/// then answers 503 and nothing is written. An append holds the lock for one statement, a few
/// milliseconds, so only a wedged or misbehaving holder makes anyone wait this long.
pub const APPEND_LOCK_WAIT: &str = "5s";
/// How long any authlog session may sit idle inside a transaction before PostgreSQL ends it
/// (`idle_in_transaction_session_timeout`), releasing its locks: an instance that stalls
/// mid-transaction cannot hold up the others for longer.
const IDLE_IN_TRANSACTION: &str = "10s";
/// The channel commits are announced on.
pub const CHANNEL: &str = "authlog_events";
/// The safety-net poll: NOTIFY announces commits.
pub const POLL: Duration = Duration::from_secs(2);
/// The triggers that make `events` append-only, each with its definition as [`guards`] spells
/// it: the trigger as PostgreSQL prints it, then the language and body of the function it
/// calls (a guard is only as good as that function).
pub const GUARDS: &[(&str, &str)] = &[
    (
        "events_refuse_update",
        "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events FOR EACH ROW \
         EXECUTE FUNCTION events_refuse_change() LANGUAGE plpgsql AS BEGIN \
         RAISE EXCEPTION 'events is append-only: % refused', TG_OP; END",
    ),
    (
        "events_refuse_delete",
        "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events FOR EACH ROW \
         EXECUTE FUNCTION events_refuse_change() LANGUAGE plpgsql AS BEGIN \
         RAISE EXCEPTION 'events is append-only: % refused', TG_OP; END",
    ),
    (
        "events_refuse_truncate",
        "CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT \
         EXECUTE FUNCTION events_refuse_change() LANGUAGE plpgsql AS BEGIN \
         RAISE EXCEPTION 'events is append-only: % refused', TG_OP; END",
    ),
];

/// `url` without its credentials, for messages: no user and password before the host, and no
/// `password` parameter in the query (libpq and sqlx accept one there too).
pub fn redacted(url: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &base[..scheme + 3], &base[at + 1..])
        }
        _ => base.to_owned(),
    };
    let Some(query) = query else {
        return base;
    };
    let kept: Vec<&str> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => "password=redacted",
            _ => pair,
        })
        .collect();
    format!("{base}?{}", kept.join("&"))
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
        .options([("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION)])
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

/// The triggers on `events` that fire in ordinary sessions (enabled, and not for replicas
/// only), each with its definition: the trigger as PostgreSQL prints it (the table's schema
/// left out, since authlog's tables may live in any), then the language and body of its
/// function.
pub async fn guards(pool: &PgPool) -> Result<Vec<Guard>, StoreError> {
    sqlx::query_as(
        "SELECT t.tgname::text AS name, \
                replace(pg_get_triggerdef(t.oid), \
                        ' ON ' || quote_ident(n.nspname) || '.events ', ' ON events ') \
                || ' LANGUAGE ' || l.lanname || ' AS ' || p.prosrc AS definition \
         FROM pg_trigger t \
         JOIN pg_class c ON c.oid = t.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_proc p ON p.oid = t.tgfoid \
         JOIN pg_language l ON l.oid = p.prolang \
         WHERE t.tgrelid = 'events'::regclass AND NOT t.tgisinternal \
           AND t.tgenabled IN ('O', 'A')",
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

/// PostgreSQL's writer, on a connection of its own. A batch is one call of the
/// `authlog_append` function (migrations `20261126000001_append_function` and
/// `20261127000002_versioned_append`): one statement, so one round trip, that takes the append
/// lock, checks every version, assigns the positions, computes the hash chain, inserts and
/// notifies. The lock is held only while the database works, never across a round trip to this
/// process, except for a request that also writes signing keys or claims a name: rare, and
/// committed alone.
pub struct PostgresWriter(PgConnectOptions);

impl PostgresWriter {
    /// A writer that connects as `pool` does.
    pub fn new(pool: &PgPool) -> Self {
        Self((*pool.connect_options()).clone())
    }
}

impl Writer for PostgresWriter {
    type Connection = PgConnection;

    async fn connect(&self) -> Result<PgConnection, StoreError> {
        self.0.connect().await.map_err(unavailable)
    }

    async fn commit(
        &self,
        connection: &mut PgConnection,
        batch: &[AppendRequest],
    ) -> Result<Vec<Outcome>, StoreError> {
        commit(connection, batch).await
    }
}

async fn commit(
    connection: &mut PgConnection,
    batch: &[AppendRequest],
) -> Result<Vec<Outcome>, StoreError> {
    let arguments = Flattened::of(batch)?;
    match batch {
        // What the request writes beside its events is written in the same transaction, and
        // only if the events are; the events stand only if a name claim does. The append lock, taken by
        // `authlog_append`, is held until the commit, so no other claim runs in between.
        [request] if request.alone() => {
            let mut tx = connection.begin().await.map_err(unavailable)?;
            let outcomes = append(&mut tx, batch, &arguments).await?;
            if let [Ok(appended)] = outcomes.as_slice() {
                if let Err(refused) = beside::write(&mut tx, &request.beside, *appended).await? {
                    tx.rollback().await.map_err(unavailable)?;
                    return Ok(vec![Err(refused)]);
                }
            }
            tx.commit().await.map_err(unavailable)?;
            Ok(outcomes)
        }
        // Otherwise the call is a transaction of its own.
        _ => append(connection, batch, &arguments).await,
    }
}

/// A batch as the arrays `authlog_append` takes.
struct Flattened<'a> {
    write_request: Vec<i32>,
    write_stream: Vec<&'a str>,
    write_expected: Vec<i64>,
    write_first_event: Vec<i32>,
    write_events: Vec<i32>,
    event_type: Vec<&'a str>,
    event_subject: Vec<Option<&'a str>>,
    event_payload: Vec<&'a str>,
    event_metadata: Vec<&'a str>,
    event_recorded_at: Vec<&'a str>,
    event_version: Vec<i64>,
}

impl<'a> Flattened<'a> {
    fn of(batch: &'a [AppendRequest]) -> Result<Self, StoreError> {
        let too_many = |_| StoreError::Unavailable("an append batch too large to index".into());
        let mut flat = Flattened {
            write_request: vec![],
            write_stream: vec![],
            write_expected: vec![],
            write_first_event: vec![],
            write_events: vec![],
            event_type: vec![],
            event_subject: vec![],
            event_payload: vec![],
            event_metadata: vec![],
            event_recorded_at: vec![],
            event_version: vec![],
        };
        for (index, request) in batch.iter().enumerate() {
            for write in &request.writes {
                flat.write_request
                    .push(i32::try_from(index).map_err(too_many)?);
                flat.write_stream.push(write.stream.as_str());
                flat.write_expected.push(match write.expected {
                    ExpectedVersion::Any => -1,
                    ExpectedVersion::NoStream => 0,
                    ExpectedVersion::Exactly(version) => to_i64(version)?,
                });
                // 1-based, as SQL arrays are.
                flat.write_first_event
                    .push(i32::try_from(flat.event_type.len() + 1).map_err(too_many)?);
                flat.write_events
                    .push(i32::try_from(write.events.len()).map_err(too_many)?);
                for event in &write.events {
                    flat.event_type.push(&event.event_type);
                    flat.event_subject.push(event.subject.as_deref());
                    flat.event_payload.push(&event.payload);
                    flat.event_metadata.push(&event.metadata);
                    flat.event_recorded_at.push(&event.recorded_at);
                    flat.event_version.push(event.schema_version);
                }
            }
        }
        Ok(flat)
    }
}

/// One row of `authlog_append`'s answer.
#[derive(sqlx::FromRow)]
struct Answer {
    request: i32,
    first_position: Option<i64>,
    last_position: Option<i64>,
    conflict_stream: Option<String>,
    actual_version: Option<i64>,
}

/// Calls `authlog_append` on `connection` and reads its answer as one outcome per request.
async fn append(
    connection: &mut PgConnection,
    batch: &[AppendRequest],
    arguments: &Flattened<'_>,
) -> Result<Vec<Outcome>, StoreError> {
    let answers: Vec<Answer> = sqlx::query_as(
        "SELECT request, first_position, last_position, conflict_stream, actual_version \
         FROM authlog_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(APPEND_LOCK)
    .bind(APPEND_LOCK_WAIT)
    .bind(i32::try_from(batch.len()).unwrap_or(i32::MAX))
    .bind(&arguments.write_request)
    .bind(&arguments.write_stream)
    .bind(&arguments.write_expected)
    .bind(&arguments.write_first_event)
    .bind(&arguments.write_events)
    .bind(&arguments.event_type)
    .bind(&arguments.event_subject)
    .bind(&arguments.event_payload)
    .bind(&arguments.event_metadata)
    .bind(&arguments.event_recorded_at)
    .bind(&arguments.event_version)
    .fetch_all(connection)
    .await
    .map_err(|e| match lock_not_available(&e) {
        true => StoreError::Unavailable(format!(
            "another appender held the append lock for more than {APPEND_LOCK_WAIT}"
        )),
        false => unavailable(e),
    })?;
    if answers.len() != batch.len() {
        return Err(StoreError::Corrupt(format!(
            "authlog_append answered {} rows for {} requests",
            answers.len(),
            batch.len()
        )));
    }
    batch
        .iter()
        .zip(answers)
        .enumerate()
        .map(|(index, (request, answer))| {
            if usize::try_from(answer.request).ok() != Some(index) {
                return Err(StoreError::Corrupt(format!(
                    "authlog_append answered request {} in place of {index}",
                    answer.request
                )));
            }
            Ok(match (answer.first_position, answer.last_position) {
                (Some(first), Some(position)) => Ok(Appended {
                    first: to_u64(first)?,
                    position: to_u64(position)?,
                }),
                _ => {
                    let stream = answer.conflict_stream.unwrap_or_default();
                    let write = request
                        .writes
                        .iter()
                        .find(|w| w.stream.as_str() == stream)
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "authlog_append named stream {stream:?}, not in the request"
                            ))
                        })?;
                    Err(AppendError::Conflict {
                        stream: write.stream.clone(),
                        expected: write.expected,
                        actual: to_u64(answer.actual_version.unwrap_or_default())?,
                    })
                }
            })
        })
        .collect()
}

/// Whether `e` is PostgreSQL's `lock_not_available` (55P03): `lock_timeout` ran out.
fn lock_not_available(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "55P03")
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
        assert_eq!(
            redacted("postgres://app@db/authlog?sslmode=require&password=s3cret"),
            "postgres://db/authlog?sslmode=require&password=redacted"
        );
        assert_eq!(
            redacted("postgres://db/authlog?options[search_path]=a@b"),
            "postgres://db/authlog?options[search_path]=a@b"
        );
    }
}
