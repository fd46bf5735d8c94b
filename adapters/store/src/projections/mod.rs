//! Projections: tables derived from the log and kept current from it, the read side.
//!
//! Each projection keeps a checkpoint in `projections` (name, version, position) that is
//! written in the same transaction as its rows, so an event applies exactly once, whatever
//! crashes. A projection reads only the event types it names: the follower reads
//! `position > checkpoint AND position <= head AND event_type IN (...)`, and since positions are
//! handed out in commit order, no event at or below the head can still commit.
//!
//! Across instances on PostgreSQL, one projector at a time runs each projection: it locks the
//! projection's checkpoint row (`FOR UPDATE SKIP LOCKED`) and the others skip it. That gives
//! exactly-once application with no wasted work and no leader to elect; a projector that dies
//! releases its lock with its connection. Idempotent upserts would have let every instance
//! apply every event, at N times the work, and would have needed every statement to be
//! idempotent forever. On SQLite, `BEGIN IMMEDIATE` excludes every other writer.
//!
//! A projection whose stored version differs from the code's (or that was never built) is
//! rebuilt: replayed into fresh tables while the live ones keep serving, then swapped in one
//! transaction that first applies what arrived during the replay.
//!
//! - [`sessions`]: live sessions per user with their device, and the revoked sessions (what
//!   the revocation view is filled from at start and follows).
//! - [`users`]: the user directory.
//! - [`audit`]: `audit_events`, the analysts' table of every event with its personal data open,
//!   which erasure cleans.

mod audit;
mod batch;
mod sessions;
mod users;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authlog_application::ports::{ProjectionStatus, RecordedEvent, StoreError};
use authlog_domain::EventType;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::personal::{Device, Keyring};
use crate::rows::{format_timestamp, to_i64, to_u64, Read};
use crate::sql::{Arg, Pool, Statement, Tx};
use crate::Progress;

use audit::AuditProjection;
use batch::Staged;
pub use sessions::{RevokedRow, SessionRow, SessionsProjection};
pub use users::{RoleRow, UserRow, UsersProjection};

/// Log positions read at a time while following.
const BATCH: u32 = 1_000;
/// Log positions replayed per transaction while rebuilding.
const REBUILD_BATCH: u32 = 10_000;
/// How long a read waits for the projections to reach a position before giving up.
const WAIT: Duration = Duration::from_secs(5);
/// How often a projection that may lag ([`Projection::eager`]) is brought up to date.
pub const LAGGING_EVERY: Duration = Duration::from_millis(250);

/// A table a projection owns: its columns and constraints, and its secondary indexes as
/// (name suffix, indexed columns). In `columns`, `{bytewise}` stands for the backend's
/// byte-order collation (SQLite's `BINARY`, PostgreSQL's `"C"`): a column compared by range
/// for prefixes needs it, whatever collation the PostgreSQL database has.
pub struct Table {
    pub name: &'static str,
    pub columns: &'static str,
    pub indexes: &'static [(&'static str, &'static str)],
}

/// Which copy of a projection's tables statements go to: the live ones, or the fresh ones a
/// rebuild fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Live,
    Next,
}

impl Target {
    /// The name of `table` in this copy.
    pub fn of(self, table: &str) -> String {
        match self {
            Self::Live => table.to_owned(),
            Self::Next => format!("{table}_next"),
        }
    }
}

/// A read model kept from the log.
pub trait Projection: Send + Sync + 'static {
    /// Its name in `projections` and on the command line.
    fn name(&self) -> &'static str;

    /// Bumped whenever its tables or what it keeps change: a stored version that differs
    /// makes it rebuild.
    fn version(&self) -> i64;

    /// The event types it reads; it never sees any other.
    fn event_types(&self) -> &'static [EventType];

    /// What it keeps of the device (client address, user agent) a request came from: every
    /// event's, none, or those of some types. Only these are opened when it reads.
    fn device(&self) -> Device {
        Device::None
    }

    /// Whether it is kept up to the log at every run, and reads wait for it (read your writes).
    /// One that is not (the analysts' table) is brought up to date every [`LAGGING_EVERY`]
    /// instead, so that it costs the writers one transaction in many, not one more statement
    /// set per commit; only [`Projector::wait_for_all`] waits for it.
    fn eager(&self) -> bool {
        true
    }

    fn tables(&self) -> &'static [Table];

    /// The row `recorded` (one of its types) puts in the staged batch, if any.
    fn stage(&self, recorded: &RecordedEvent) -> Option<Staged>;

    /// The statements that apply the staged batch (`projection_batch`, see [`batch`]) to the
    /// tables of `target`, with the same outcome as applying its events one by one in
    /// position order. They may also drop rows no read can see any more after `last_at`, the
    /// time of the batch's last event, but must not change what any read answers.
    fn apply(&self, target: Target, last_at: OffsetDateTime, out: &mut Vec<Statement>);
}

/// How the projections read the log: with the keys that open its personal data, noting when
/// they applied an erasure.
struct Reading {
    keyring: Arc<Keyring>,
    /// Set when a batch applied a `UserErased`: the rows it cleaned may still have copies in
    /// SQLite's WAL, which [`Projector::run`] then checkpoints away.
    erasures: AtomicBool,
}

/// How a rebuild went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Events of the projection's types replayed.
    pub events: u64,
    /// The log position it now stands at.
    pub position: u64,
}

/// Runs the projections of one store.
pub struct Projector {
    pool: Pool,
    reading: Reading,
    projections: Vec<Arc<dyn Projection>>,
    /// One run at a time in this process.
    running: Mutex<()>,
    /// The lowest checkpoint this process knows every eager projection has reached.
    applied: AtomicU64,
    /// The same of the projections that may lag.
    lagging_applied: AtomicU64,
    /// When the projections that may lag were last brought up to date.
    lagging_ran: std::sync::Mutex<Instant>,
    /// The projections whose checkpoint the log no longer bears out, with why: nothing is
    /// applied to them until a rebuild (see [`Projector::refusal`]).
    halted: std::sync::Mutex<HashMap<&'static str, String>>,
}

#[derive(sqlx::FromRow)]
struct Checkpoint {
    position: i64,
    version: i64,
    /// The hash of the event at `position` when the checkpoint was set (none at 0, or for a
    /// checkpoint an older release set).
    hash: Option<Vec<u8>>,
}

#[derive(sqlx::FromRow)]
struct Head {
    head: i64,
}

#[derive(sqlx::FromRow)]
struct NamedCheckpoint {
    name: String,
    position: i64,
}

impl Projector {
    pub fn new(pool: Pool, keyring: Arc<Keyring>) -> Self {
        Self {
            pool,
            reading: Reading {
                keyring,
                erasures: AtomicBool::new(false),
            },
            projections: vec![
                Arc::new(SessionsProjection),
                Arc::new(UsersProjection),
                Arc::new(AuditProjection),
            ],
            running: Mutex::new(()),
            applied: AtomicU64::new(0),
            lagging_applied: AtomicU64::new(0),
            lagging_ran: std::sync::Mutex::new(Instant::now()),
            halted: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Why a projection is halted, if one is: its checkpoint names a position the log no longer
    /// holds, or holds another event at (rows deleted behind the service's back, or a restore
    /// of an older backup under newer read models). Applying on from there would skip every
    /// event written at the reused positions, for good; so nothing more is applied to it, its
    /// reads fail with this, and readiness reports it, until `authlog projections rebuild`
    /// replays it from the log as the log now is.
    pub fn refusal(&self) -> Option<String> {
        let halted = self.halted.lock().ok()?;
        let mut reasons: Vec<&String> = halted.values().collect();
        reasons.sort();
        reasons.first().map(|reason| (*reason).clone())
    }

    /// Whether the log still bears out `checkpoint` of `projection`, with the log's `head`:
    /// the refusal when it does not. `hashed` also compares the event at the checkpoint with
    /// the one it was set at (one indexed read), beyond the free check against the head.
    async fn bears_out(
        tx: &mut Tx,
        projection: &dyn Projection,
        checkpoint: &Checkpoint,
        head: u64,
        hashed: bool,
    ) -> Result<Option<String>, StoreError> {
        let position = to_u64(checkpoint.position)?;
        let name = projection.name();
        let refusal = |what: String| {
            format!(
                "projection {name} has applied the log up to position {position}, but {what}: \
                 events it applied are gone (rows deleted behind the service's back, or a \
                 restore of an older backup). Nothing more is applied to it: check the log \
                 with `authlog verify`, then run `authlog projections rebuild {name}`"
            )
        };
        if position > head {
            return Ok(Some(refusal(format!("the log's head is {head}"))));
        }
        if !hashed || position == 0 {
            return Ok(None);
        }
        let Some(expected) = &checkpoint.hash else {
            return Ok(Some(refusal(format!(
                "the log held no event at {position} when it was set"
            ))));
        };
        let stored: Vec<(Vec<u8>,)> = tx
            .fetch(&Statement::new(
                "SELECT hash FROM events WHERE position = ?",
                vec![checkpoint.position.into()],
            ))
            .await?;
        Ok(match stored.first() {
            Some((hash,)) if hash == expected => None,
            Some(_) => Some(refusal(format!(
                "the log holds another event at {position}"
            ))),
            None => Some(refusal(format!("the log holds no event at {position}"))),
        })
    }

    /// Records whether `projection` is halted (`refusal`), logging a new halt once.
    fn set_halted(&self, projection: &dyn Projection, refusal: Option<String>) {
        let Ok(mut halted) = self.halted.lock() else {
            return;
        };
        match refusal {
            Some(reason) => {
                if halted.get(projection.name()) != Some(&reason) {
                    tracing::error!(projection = projection.name(), "{reason}");
                }
                halted.insert(projection.name(), reason);
            }
            None => {
                if halted.remove(projection.name()).is_some() {
                    tracing::info!(
                        projection = projection.name(),
                        "projection rebuilt: it follows the log again"
                    );
                }
            }
        }
    }

    fn is_halted(&self, projection: &dyn Projection) -> bool {
        self.halted
            .lock()
            .is_ok_and(|halted| halted.contains_key(projection.name()))
    }

    /// Builds every projection that was never built or whose version changed, then catches up.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn start(&self) -> Result<(), StoreError> {
        for projection in &self.projections {
            let current = self.checkpoint(projection.name()).await?;
            match current {
                Some(checkpoint) if checkpoint.version == projection.version() => {
                    // Once at start, the checkpoint against the event it was set at: a log
                    // cut and written again to the same length since is caught here.
                    let mut tx = self.pool.begin().await?;
                    let head = head_in(&mut tx).await?;
                    let refusal =
                        Self::bears_out(&mut tx, projection.as_ref(), &checkpoint, head, true)
                            .await?;
                    tx.commit().await?;
                    self.set_halted(projection.as_ref(), refusal);
                }
                _ => self.rebuild_or_await(projection.as_ref()).await?,
            }
        }
        self.run_with(true).await
    }

    /// Applies what the log gained to every projection this process can lock (on PostgreSQL,
    /// another instance may be running one; it is skipped).
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; nothing of the failed transaction is kept.
    pub async fn run(&self) -> Result<(), StoreError> {
        let due = self
            .lagging_ran
            .lock()
            .is_ok_and(|ran| ran.elapsed() >= LAGGING_EVERY);
        self.run_with(due).await
    }

    /// [`Projector::run`], the projections that may lag included or not.
    async fn run_with(&self, lagging: bool) -> Result<(), StoreError> {
        let _running = self.running.lock().await;
        let head = self.head().await?;
        let lagging = lagging && self.lagging_applied.load(Ordering::Acquire) < head;
        // Applied beyond the head is a log that shrank: every checkpoint is looked at below.
        if self.applied.load(Ordering::Acquire) == head && !lagging {
            return Ok(());
        }
        if lagging {
            if let Ok(mut ran) = self.lagging_ran.lock() {
                *ran = Instant::now();
            }
        }
        let mut tx = self.pool.begin().await?;
        // The head again, now that this run excludes the other projectors: one that ran
        // between the read above and the lock may have moved a checkpoint past it.
        let head = head_in(&mut tx).await?;
        let (mut lowest, mut lowest_lagging) = (head, head);
        let mut changed = false;
        for projection in &self.projections {
            if !projection.eager() && !lagging {
                continue;
            }
            let lowest = if projection.eager() {
                &mut lowest
            } else {
                &mut lowest_lagging
            };
            let Some(checkpoint) = lock_checkpoint(&mut tx, projection.name()).await? else {
                // Another instance holds it; it will move the checkpoint.
                *lowest = 0;
                continue;
            };
            if checkpoint.version != projection.version() {
                *lowest = 0;
                continue;
            }
            // On PostgreSQL (read committed) another instance may have moved this checkpoint
            // between the head's read and the lock: the head is read again, now that the lock
            // holds it still, before a checkpoint ahead of it is called a log that shrank.
            let head = match to_u64(checkpoint.position)? {
                position if position > head => head_in(&mut tx).await?,
                _ => head,
            };
            // Against the head at every run (free); a halted one against its event too, so
            // that a rebuild elsewhere lets it go on.
            let halted = self.is_halted(projection.as_ref());
            let refusal =
                Self::bears_out(&mut tx, projection.as_ref(), &checkpoint, head, halted).await?;
            let stopped = refusal.is_some();
            self.set_halted(projection.as_ref(), refusal);
            if stopped {
                *lowest = 0;
                continue;
            }
            let from = to_u64(checkpoint.position)?;
            let reached = follow(
                &mut tx,
                &self.reading,
                projection.as_ref(),
                Target::Live,
                from,
                head,
                BATCH,
            )
            .await?;
            if reached > from {
                if !set_checkpoint(&mut tx, projection.name(), reached, None).await? {
                    // Rolled back with the transaction: the next run refuses it, with the
                    // event at its checkpoint compared.
                    let refusal =
                        Self::bears_out(&mut tx, projection.as_ref(), &checkpoint, head, true)
                            .await?
                            .unwrap_or_else(|| {
                                format!(
                                "projection {} cannot move its checkpoint: the event at {from} \
                                 is not the one it was set at; rebuild it",
                                projection.name()
                            )
                            });
                    self.set_halted(projection.as_ref(), Some(refusal.clone()));
                    return Err(StoreError::Halted(refusal));
                }
                changed = true;
            }
            *lowest = (*lowest).min(reached);
        }
        if changed {
            announce(&mut tx).await?;
        }
        tx.commit().await?;
        if self.reading.erasures.swap(false, Ordering::AcqRel) {
            self.pool.scrub().await;
        }
        self.applied.fetch_max(lowest, Ordering::AcqRel);
        if lagging {
            self.lagging_applied
                .fetch_max(lowest_lagging, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Waits until every projection has applied the log up to `position`, running them here
    /// if no other process is.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when they do not get there within 5 seconds.
    pub async fn wait_for(&self, position: u64) -> Result<(), StoreError> {
        self.wait(position, false).await
    }

    /// [`Projector::wait_for`] every projection, those that may lag too (what an erasure
    /// waits for before it says it is done).
    ///
    /// # Errors
    /// As [`Projector::wait_for`].
    pub async fn wait_for_all(&self, position: u64) -> Result<(), StoreError> {
        self.wait(position, true).await
    }

    async fn wait(&self, position: u64, all: bool) -> Result<(), StoreError> {
        let reached = |applied: &AtomicU64| applied.load(Ordering::Acquire) >= position;
        if reached(&self.applied) && (!all || reached(&self.lagging_applied)) {
            return Ok(());
        }
        let deadline = Instant::now() + WAIT;
        loop {
            self.run_with(all).await?;
            if let Some(refusal) = self.refusal() {
                return Err(StoreError::Halted(refusal));
            }
            let lowest = self.lowest_checkpoint(all).await?;
            if !all {
                self.applied.fetch_max(lowest, Ordering::AcqRel);
            }
            if lowest >= position {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StoreError::Unavailable(format!(
                    "the projections are at {lowest}, still short of {position}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Where each projection stands.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, StoreError> {
        let head = self.head().await?;
        let halted = self.halted.lock().map(|h| h.clone()).unwrap_or_default();
        let rows: Vec<NamedCheckpoint> = self
            .pool
            .fetch(&Statement::new(
                "SELECT name, position FROM projections ORDER BY name",
                vec![],
            ))
            .await?;
        rows.into_iter()
            .filter(|row| self.projections.iter().any(|p| p.name() == row.name))
            .map(|row| {
                Ok(ProjectionStatus {
                    halted: halted.get(row.name.as_str()).cloned(),
                    name: row.name,
                    position: to_u64(row.position)?,
                    head,
                })
            })
            .collect()
    }

    /// The projections' names.
    pub fn names(&self) -> Vec<&'static str> {
        self.projections.iter().map(|p| p.name()).collect()
    }

    /// Replays the log into fresh tables for projection `name` while the live ones keep
    /// serving, then swaps them in, in one transaction that first applies what arrived during
    /// the replay.
    ///
    /// # Errors
    /// [`StoreError`] for an unknown name, a rebuild already under way, or a store failure.
    pub async fn rebuild(&self, name: &str, progress: Progress<'_>) -> Result<Rebuilt, StoreError> {
        let projection = self
            .projections
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| {
                StoreError::Unavailable(format!(
                    "no projection {name:?}; there are: {}",
                    self.names().join(", ")
                ))
            })?;
        if !self.claim(projection.as_ref()).await? {
            return Err(StoreError::Unavailable(format!(
                "projection {name} is being rebuilt by another process"
            )));
        }
        let rebuilt = self.replay_and_swap(projection.as_ref(), progress).await;
        if rebuilt.is_err() {
            // Let the next attempt start at once rather than wait for the claim to go stale.
            self.release(projection.as_ref()).await?;
        }
        rebuilt
    }

    /// Rebuilds `projection` if this process wins the claim, or waits for the process that did.
    async fn rebuild_or_await(&self, projection: &dyn Projection) -> Result<(), StoreError> {
        if self.claim(projection).await? {
            // A start says how a long rebuild goes in the log, every 10 seconds.
            let last = std::sync::Mutex::new(Instant::now());
            let logged = |done: u64, total: u64| {
                if let Ok(mut last) = last.lock() {
                    if last.elapsed() >= Duration::from_secs(10) {
                        *last = Instant::now();
                        tracing::info!(projection = projection.name(), done, total, "rebuilding");
                    }
                }
            };
            let rebuilt = self.replay_and_swap(projection, &logged).await;
            if rebuilt.is_err() {
                self.release(projection).await?;
            }
            rebuilt?;
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let current = self.checkpoint(projection.name()).await?;
            if current.is_some_and(|c| c.version == projection.version()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StoreError::Unavailable(format!(
                    "projection {} is still being rebuilt by another process",
                    projection.name()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Marks `projection` as being rebuilt by this process, unless another process marked it
    /// in the last 10 minutes (an older mark is a dead process's); answers whether this process
    /// may rebuild it.
    ///
    /// The claim is stamped with the database's clock: its age is about processes, not events,
    /// and every process sees the same database.
    async fn claim(&self, projection: &dyn Projection) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        tx.execute(&Statement::new(
            "INSERT INTO projections (name, version, position) VALUES (?, 0, 0) \
             ON CONFLICT (name) DO NOTHING",
            vec![projection.name().into()],
        ))
        .await?;
        let (now, stale) = match tx {
            Tx::Sqlite(_) => (
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-10 minutes')",
            ),
            Tx::Postgres(_) => (
                "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
                "to_char((clock_timestamp() - interval '10 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
            ),
        };
        let claimed = tx
            .execute(&Statement::new(
                format!(
                    "UPDATE projections SET rebuilding = {now} \
                     WHERE name = ? AND (rebuilding IS NULL OR rebuilding < {stale})"
                ),
                vec![projection.name().into()],
            ))
            .await?;
        tx.commit().await?;
        Ok(claimed == 1)
    }

    async fn release(&self, projection: &dyn Projection) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        tx.execute(&Statement::new(
            "UPDATE projections SET rebuilding = NULL WHERE name = ?",
            vec![projection.name().into()],
        ))
        .await?;
        tx.commit().await
    }

    async fn replay_and_swap(
        &self,
        projection: &dyn Projection,
        progress: Progress<'_>,
    ) -> Result<Rebuilt, StoreError> {
        let started = Instant::now();
        let mut tx = self.pool.begin().await?;
        for table in projection.tables() {
            tx.execute(&Statement::new(
                format!("DROP TABLE IF EXISTS {}", Target::Next.of(table.name)),
                vec![],
            ))
            .await?;
            create(&mut tx, table, Target::Next).await?;
        }
        tx.commit().await?;

        // The replay: batch after batch, each in its own transaction, while the live tables
        // keep serving and the writers keep appending.
        let mut position = 0;
        let mut events = 0;
        loop {
            let head = self.head().await?;
            let mut tx = self.pool.begin().await?;
            let (reached, applied) = replay_batch(
                &mut tx,
                &self.reading,
                projection,
                position,
                head,
                REBUILD_BATCH,
            )
            .await?;
            tx.commit().await?;
            events += applied;
            position = reached;
            progress(position, head);
            if reached >= head {
                break;
            }
        }

        // The swap: what arrived meanwhile, then the tables, in one transaction that holds
        // the checkpoint (no live run of this projection can interleave).
        let mut tx = self.pool.begin().await?;
        lock_checkpoint_waiting(&mut tx, projection.name()).await?;
        let head = head_in(&mut tx).await?;
        loop {
            let (reached, applied) = replay_batch(
                &mut tx,
                &self.reading,
                projection,
                position,
                head,
                REBUILD_BATCH,
            )
            .await?;
            events += applied;
            position = reached;
            if reached >= head {
                break;
            }
        }
        for table in projection.tables() {
            let next = Target::Next.of(table.name);
            for statement in [
                format!("DROP TABLE IF EXISTS {}", table.name),
                format!("ALTER TABLE {next} RENAME TO {}", table.name),
            ] {
                tx.execute(&Statement::new(statement, vec![])).await?;
            }
            // Index names are per schema, so the fresh table's are renamed by re-creating
            // them (SQLite cannot rename an index).
            for (suffix, columns) in table.indexes {
                tx.execute(&Statement::new(
                    format!("DROP INDEX IF EXISTS {next}_{suffix}"),
                    vec![],
                ))
                .await?;
                tx.execute(&Statement::new(
                    format!(
                        "CREATE INDEX {table}_{suffix} ON {table} ({columns})",
                        table = table.name
                    ),
                    vec![],
                ))
                .await?;
            }
        }
        set_checkpoint(
            &mut tx,
            projection.name(),
            position,
            Some(projection.version()),
        )
        .await?;
        announce(&mut tx).await?;
        tx.commit().await?;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            projection = projection.name(),
            events,
            position,
            seconds,
            "projection rebuilt"
        );
        Ok(Rebuilt { events, position })
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        let rows: Vec<Checkpoint> = self
            .pool
            .fetch(&Statement::new(
                "SELECT position, version, hash FROM projections WHERE name = ?",
                vec![name.into()],
            ))
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The lowest checkpoint of the eager projections (of all of them, with `all`).
    async fn lowest_checkpoint(&self, all: bool) -> Result<u64, StoreError> {
        let mut lowest = u64::MAX;
        for projection in self.projections.iter().filter(|p| all || p.eager()) {
            let position = self
                .checkpoint(projection.name())
                .await?
                .filter(|c| c.version == projection.version())
                .map_or(Ok(0), |c| to_u64(c.position))?;
            lowest = lowest.min(position);
        }
        Ok(lowest)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        let rows: Vec<Head> = self.pool.fetch(&head_statement()).await?;
        rows.first().map_or(Ok(0), |row| to_u64(row.head))
    }
}

fn head_statement() -> Statement {
    Statement::new(
        "SELECT CAST(COALESCE(MAX(position), 0) AS BIGINT) AS head FROM events",
        vec![],
    )
}

async fn head_in(tx: &mut Tx) -> Result<u64, StoreError> {
    let rows: Vec<Head> = tx.fetch(&head_statement()).await?;
    rows.first().map_or(Ok(0), |row| to_u64(row.head))
}

/// Creates `table` (and its indexes) in `target`.
async fn create(tx: &mut Tx, table: &Table, copy: Target) -> Result<(), StoreError> {
    let name = copy.of(table.name);
    let bytewise = match tx {
        Tx::Sqlite(_) => "COLLATE BINARY",
        Tx::Postgres(_) => "COLLATE \"C\"",
    };
    let columns = table.columns.replace("{bytewise}", bytewise);
    tx.execute(&Statement::new(
        format!("CREATE TABLE {name} ({columns})"),
        vec![],
    ))
    .await?;
    for (suffix, columns) in table.indexes {
        tx.execute(&Statement::new(
            format!("CREATE INDEX {name}_{suffix} ON {name} ({columns})"),
            vec![],
        ))
        .await?;
    }
    Ok(())
}

/// The checkpoint of `name`, locked for this transaction; `None` when another instance holds
/// it (PostgreSQL) or it does not exist yet.
async fn lock_checkpoint(tx: &mut Tx, name: &str) -> Result<Option<Checkpoint>, StoreError> {
    let sql = match tx {
        // `BEGIN IMMEDIATE` already excludes every other writer.
        Tx::Sqlite(_) => "SELECT position, version, hash FROM projections WHERE name = ?",
        Tx::Postgres(_) => {
            "SELECT position, version, hash FROM projections WHERE name = ? \
             FOR UPDATE SKIP LOCKED"
        }
    };
    let rows: Vec<Checkpoint> = tx.fetch(&Statement::new(sql, vec![name.into()])).await?;
    Ok(rows.into_iter().next())
}

/// The checkpoint of `name`, locked for this transaction, waiting for a running projector.
async fn lock_checkpoint_waiting(tx: &mut Tx, name: &str) -> Result<(), StoreError> {
    let sql = match tx {
        Tx::Sqlite(_) => "SELECT position, version, hash FROM projections WHERE name = ?",
        Tx::Postgres(_) => {
            "SELECT position, version, hash FROM projections WHERE name = ? FOR UPDATE"
        }
    };
    let _: Vec<Checkpoint> = tx.fetch(&Statement::new(sql, vec![name.into()])).await?;
    Ok(())
}

/// Moves the checkpoint of `name` to `position`, with the hash of the event there; answers
/// whether it moved. A move (`version` `None`) happens only while the event at the checkpoint it
/// moves from is still the one it was set at, and the event it moves to is there: otherwise the
/// log was cut (and perhaps written again) behind the service's back during the run or before
/// it, the events this transaction applied are not the ones after the checkpoint, and it must
/// roll back. A rebuild (`version` given) sets the checkpoint afresh.
async fn set_checkpoint(
    tx: &mut Tx,
    name: &str,
    position: u64,
    version: Option<i64>,
) -> Result<bool, StoreError> {
    let position = to_i64(position)?;
    let hash = "(SELECT hash FROM events WHERE position = ?)";
    let statement = match version {
        None => Statement::new(
            format!(
                "UPDATE projections SET position = ?, hash = {hash} WHERE name = ? \
                 AND (position = 0 OR hash = \
                 (SELECT e.hash FROM events e WHERE e.position = projections.position)) \
                 AND EXISTS (SELECT 1 FROM events e WHERE e.position = ?)"
            ),
            vec![
                position.into(),
                position.into(),
                name.into(),
                position.into(),
            ],
        ),
        Some(version) => Statement::new(
            format!(
                "UPDATE projections SET position = ?, hash = {hash}, version = ?, \
                 rebuilding = NULL WHERE name = ?"
            ),
            vec![
                position.into(),
                position.into(),
                version.into(),
                name.into(),
            ],
        ),
    };
    Ok(tx.execute(&statement).await? == 1)
}

/// Tells the other instances that the projections moved (PostgreSQL; on commit only), so
/// their followers read the new revocations at once.
async fn announce(tx: &mut Tx) -> Result<(), StoreError> {
    if let Tx::Postgres(_) = tx {
        tx.execute(&Statement::new(
            format!("SELECT pg_notify('{}', '')", crate::postgres::CHANNEL),
            vec![],
        ))
        .await?;
    }
    Ok(())
}

/// Applies the events of `projection`'s types in `(from, head]` to the tables of `target`, a
/// window of `limit` positions per read; answers the position reached: `head`.
async fn follow(
    tx: &mut Tx,
    reading: &Reading,
    projection: &dyn Projection,
    copy: Target,
    from: u64,
    head: u64,
    limit: u32,
) -> Result<u64, StoreError> {
    let mut position = from;
    loop {
        let (reached, _) =
            apply_batch(tx, reading, projection, copy, position, head, limit).await?;
        position = reached;
        if reached >= head {
            return Ok(reached);
        }
    }
}

async fn replay_batch(
    tx: &mut Tx,
    reading: &Reading,
    projection: &dyn Projection,
    from: u64,
    head: u64,
    limit: u32,
) -> Result<(u64, u64), StoreError> {
    apply_batch(tx, reading, projection, Target::Next, from, head, limit).await
}

/// One read of the events in the next `window` positions after `from` (up to `head`) and
/// their statements; answers the position reached and how many events were applied.
async fn apply_batch(
    tx: &mut Tx,
    reading: &Reading,
    projection: &dyn Projection,
    copy: Target,
    from: u64,
    head: u64,
    window: u32,
) -> Result<(u64, u64), StoreError> {
    let upto = from.saturating_add(u64::from(window)).min(head);
    let read = Read::Range {
        after: from,
        upto,
        types: projection.event_types(),
    };
    let events = crate::store::read_in(tx, &reading.keyring, read, projection.device()).await?;
    let staged: Vec<Staged> = events.iter().filter_map(|e| projection.stage(e)).collect();
    if events
        .iter()
        .any(|e| matches!(e.event, authlog_domain::Event::UserErased(_)))
    {
        reading.erasures.store(true, Ordering::Release);
    }
    if let Some(last) = events.last().filter(|_| !staged.is_empty()) {
        batch::stage(tx, &staged).await?;
        let mut statements = Vec::new();
        projection.apply(copy, last.recorded_at, &mut statements);
        for statement in &statements {
            tx.execute(statement).await?;
        }
    }
    Ok((upto, events.len() as u64))
}

/// An argument for a timestamp column.
pub(crate) fn at(time: OffsetDateTime) -> Arg {
    format_timestamp(time).into()
}
