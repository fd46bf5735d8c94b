//! [`Store`]: the event log, the signing keys and the read models, on SQLite or PostgreSQL.
//! Every port is implemented once here; what differs between the databases (opening them, the
//! exclusive write transaction, following other instances) lives in [`crate::sqlite`] and
//! [`crate::postgres`].

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use authlog_application::ports::{
    Account, AppendError, Appended, AuditFilter, Beside, Chain, ChainLink, Checkpoint, Checkpoints,
    EventLog, EventStore, KeyStore, NameKeyStore, PersonalData, ProjectionStatus, ReadModels,
    RecentRevocation, RecordedEvent, RevokedSession, SecretKind, SessionView, SigningKey, Snapshot,
    StoreError, StreamWrite, UserQuery, UserSecret, UserSecrets, UserStatus, UserView,
};
use authlog_domain::{EventType, RevocationReason, Role, SessionId, StreamId, UserId};
use sqlx::{Postgres, Sqlite};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch, Notify};

use crate::names::AccountRow;
use crate::personal::{Device, Keyring};
use crate::projections::{Projector, Rebuilt, RevokedRow, RoleRow, SessionRow, UserRow};
use crate::rows::{
    decode_all, decode_following, format_timestamp, parse_timestamp, read_query, to_i64, to_u64,
    unavailable, RawEvent, Read, COLUMNS, SELECT_KEYS,
};
use crate::sql::{Arg, Pool, Statement, Tx};
use crate::verify::{require_guards, ChainWalk, HashedRow, Intact, VerifyError, BATCH};
use crate::writer::{self, AppendRequest, Signals};
use crate::{postgres, sqlite, Progress};

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
    #[error("cannot build the read models of {path}: {source}")]
    Projections { path: String, source: StoreError },
    #[error("cannot index the usernames of {path}: {source}")]
    Names { path: String, source: StoreError },
}

/// The event log (and signing keys, and read models) in one database.
pub struct Store {
    pool: Pool,
    /// The database, for messages (its password redacted).
    path: String,
    writer: mpsc::Sender<AppendRequest>,
    /// The users' data keys: personal data is sealed on the way in and opened on the way out.
    keyring: Arc<Keyring>,
    /// The highest position this process appended: reads of the read models wait for it.
    last_appended: Arc<AtomicU64>,
    projector: Arc<Projector>,
    /// Signalled after every commit here and (PostgreSQL) every announced one elsewhere.
    committed: Arc<Notify>,
    /// Whether [`Store::start`] has run.
    started: std::sync::atomic::AtomicBool,
    /// Dropped with the store, which ends its background tasks.
    _stop: watch::Sender<()>,
}

/// The most names a prefix search reads from the name index before it walks the users in id
/// order instead: reading them costs about as much as walking a few pages.
const NARROW_PREFIX: usize = 1_000;

impl Store {
    /// The ids after `after` of the users whose names lie in `range`, when no more than
    /// [`NARROW_PREFIX`] names do; `None` when more do. One statement, so the answer is exact.
    async fn narrow_prefix(
        &self,
        range: [Arg; 2],
        after: Option<UserId>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Id {
            user_id: String,
        }
        let mut args = range.to_vec();
        args.push(i64::try_from(NARROW_PREFIX + 1).unwrap_or(i64::MAX).into());
        let ids: Vec<Id> = self
            .pool
            .fetch(&Statement::new(
                "SELECT user_id FROM users WHERE canonical >= ? AND canonical < ? LIMIT ?",
                args,
            ))
            .await?;
        if ids.len() > NARROW_PREFIX {
            return Ok(None);
        }
        let after = after.map(|id| id.to_string());
        Ok(Some(
            ids.into_iter()
                .map(|id| id.user_id)
                .filter(|id| after.as_ref().is_none_or(|after| id > after))
                .collect(),
        ))
    }

    /// Opens the database `url` names and starts it with `personal` (see [`Store::connect`] and
    /// [`Store::start`]): what tests and tools that hold the master key already do.
    ///
    /// # Errors
    /// As [`Store::connect`] and [`Store::start`].
    pub async fn open(url: &str, personal: Arc<dyn PersonalData>) -> Result<Self, OpenError> {
        let store = Self::connect(url).await?;
        store.start(personal).await?;
        Ok(store)
    }

    /// Opens the database `url` names (`sqlite://PATH`, created if missing, or
    /// `postgres://...`, which must exist), applies the migrations, starts the writer and
    /// indexes the names of accounts older releases registered. The signing keys and the name
    /// keys can be read at once (the master key is checked against them); the log and the read
    /// models only after [`Store::start`], since personal data in them opens with the master
    /// key. Needs a tokio runtime.
    ///
    /// # Errors
    /// [`OpenError`] for a malformed URL, or a database that cannot be reached, opened or
    /// migrated.
    pub async fn connect(url: &str) -> Result<Self, OpenError> {
        let (stop, stopped) = watch::channel(());
        let last_appended = Arc::new(AtomicU64::new(0));
        let committed = Arc::new(Notify::new());
        let signals = || Signals {
            last_appended: last_appended.clone(),
            committed: committed.clone(),
        };
        let (writer, requests) = mpsc::channel(QUEUE);
        let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !url.starts_with("sqlite:") && !postgres {
            return Err(OpenError::BadUrl {
                url: postgres::redacted(url),
                reason: "expected sqlite://PATH or postgres://...".into(),
            });
        }
        let (pool, path) = if !postgres {
            let pool = sqlite::open(url).await?;
            let path = sqlite::path(&pool);
            tokio::spawn(writer::run(
                sqlite::SqliteWriter::new(&pool),
                requests,
                signals(),
            ));
            (Pool::Sqlite(pool), path)
        } else {
            let pool = postgres::open(url).await?;
            tokio::spawn(writer::run(
                postgres::PostgresWriter::new(&pool),
                requests,
                signals(),
            ));
            tokio::spawn(postgres::listen(pool.clone(), committed.clone(), stopped));
            (Pool::Postgres(pool), postgres::redacted(url))
        };
        let indexed = crate::names::index_registrations(&pool)
            .await
            .map_err(|source| OpenError::Names {
                path: path.clone(),
                source,
            })?;
        if indexed > 0 {
            tracing::info!(
                accounts = indexed,
                "indexed the names of accounts registered before"
            );
        }
        let reskeletoned =
            crate::names::reskeleton(&pool)
                .await
                .map_err(|source| OpenError::Names {
                    path: path.clone(),
                    source,
                })?;
        if reskeletoned > 0 {
            tracing::info!(
                accounts = reskeletoned,
                "took the confusable skeletons of the name index again under the current rule"
            );
        }
        let keyring = Arc::new(Keyring::new(pool.clone()));
        let projector = Arc::new(Projector::new(pool.clone(), keyring.clone()));
        Ok(Self {
            pool,
            path,
            writer,
            keyring,
            last_appended,
            projector,
            committed,
            started: std::sync::atomic::AtomicBool::new(false),
            _stop: stop,
        })
    }

    /// Gives the store the users' data keys (under the master key), builds any read model that
    /// was never built or whose version changed, and starts following the log. Once only; a
    /// second call does nothing.
    ///
    /// # Errors
    /// [`OpenError::Projections`] when the read models cannot be built.
    pub async fn start(&self, personal: Arc<dyn PersonalData>) -> Result<(), OpenError> {
        if self.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.keyring.unlock(personal);
        self.projector
            .start()
            .await
            .map_err(|source| OpenError::Projections {
                path: self.path.clone(),
                source,
            })?;
        // From here on the process that runs subscribers (a server) brings the read models up to
        // date in every pass of its runner, woken by `committed`; any other (the command line)
        // brings them up to date when it reads them.
        Ok(())
    }

    /// The SQLite database's file, `None` on PostgreSQL (and for an in-memory SQLite database).
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match &self.pool {
            Pool::Sqlite(pool) => {
                let file = pool.connect_options().get_filename().to_owned();
                (!file.as_os_str().is_empty() && file.as_os_str() != ":memory:").then_some(file)
            }
            Pool::Postgres(_) => None,
        }
    }

    /// Signalled after every commit of this process and (PostgreSQL, by NOTIFY) of another
    /// instance, its projectors' included: what wakes the subscriber runner.
    pub fn committed(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    /// How often to poll for what other processes appended when nothing announces it: often
    /// on SQLite (a CLI process may append at any time), rarely on PostgreSQL, where
    /// LISTEN/NOTIFY announces commits and the poll is only a safety net.
    pub fn default_poll_interval(&self) -> Duration {
        match self.pool {
            Pool::Sqlite(_) => sqlite::POLL,
            Pool::Postgres(_) => postgres::POLL,
        }
    }

    /// The read models, by name.
    pub fn projections(&self) -> Vec<&'static str> {
        self.projector.names()
    }

    /// Replays the log into fresh tables for projection `name`, then swaps them in.
    ///
    /// # Errors
    /// [`StoreError`] for an unknown name, a rebuild under way elsewhere, or a store failure.
    pub async fn rebuild(&self, name: &str, progress: Progress<'_>) -> Result<Rebuilt, StoreError> {
        self.projector.rebuild(name, progress).await
    }

    /// Walks the whole hash chain and checks that the append-only guards are installed as
    /// authlog installed them (and, on PostgreSQL, that they fire).
    ///
    /// # Errors
    /// [`VerifyError`] naming the first bad position or the missing guard.
    pub async fn verify(&self, progress: Progress<'_>) -> Result<Intact, VerifyError> {
        let (required, present) = match &self.pool {
            Pool::Sqlite(pool) => (sqlite::GUARDS, sqlite::guards(pool).await?),
            Pool::Postgres(pool) => (postgres::GUARDS, postgres::guards(pool).await?),
        };
        require_guards(required, &present)?;
        let head = EventLog::head(self).await?;
        let mut walk = ChainWalk::default();
        let sql = format!(
            "SELECT {COLUMNS}, hash FROM events WHERE position >= ? ORDER BY position LIMIT ?"
        );
        loop {
            let next = to_i64(walk.next_position())?;
            let rows: Vec<HashedRow> = self
                .pool
                .fetch(&Statement::new(
                    sql.clone(),
                    vec![next.into(), BATCH.into()],
                ))
                .await?;
            for row in &rows {
                walk.check(row)?;
            }
            progress(walk.next_position().saturating_sub(1), head);
            if rows.len() < BATCH as usize {
                return Ok(walk.finish());
            }
        }
    }

    /// Runs one read of the event log (its SQL is shared by both backends), its personal data
    /// opened.
    async fn read(&self, read: Read<'_>) -> Result<Vec<RawEvent>, StoreError> {
        // A stream is read to decide on, and no decision depends on where a request came from:
        // its events' device fields stay sealed (one key operation a refresh instead of five).
        let device = match read {
            Read::Stream(_) | Read::Tail(..) | Read::Edges(..) | Read::StreamAfter(..) => {
                Device::None
            }
            _ => Device::All,
        };
        let rows = match &self.pool {
            Pool::Sqlite(pool) => {
                read_query::<Sqlite>(read)?
                    .build_query_as()
                    .fetch_all(pool)
                    .await
            }
            Pool::Postgres(pool) => {
                read_query::<Postgres>(read)?
                    .build_query_as()
                    .fetch_all(pool)
                    .await
            }
        }
        .map_err(unavailable)?;
        self.keyring.open(rows, device).await
    }

    /// Lets the read models catch up with what this process appended, so that a client reads
    /// its own writes through the instance it wrote through.
    /// The account of the name index whose `column` is `value`.
    async fn account_where(&self, column: &str, value: Arg) -> Result<Option<Account>, StoreError> {
        let rows: Vec<AccountRow> = self
            .pool
            .fetch(&Statement::new(
                format!(
                    "SELECT user_id, stream_id, registered_at, legacy_subject FROM usernames \
                     WHERE {column} = ?"
                ),
                vec![value],
            ))
            .await?;
        rows.into_iter().next().map(AccountRow::account).transpose()
    }

    async fn caught_up(&self) -> Result<(), StoreError> {
        self.projector
            .wait_for(self.last_appended.load(Ordering::Acquire))
            .await
    }

    async fn revocations(&self, statement: Statement) -> Result<Vec<RevokedSession>, StoreError> {
        self.caught_up().await?;
        let rows: Vec<RevokedRow> = self.pool.fetch(&statement).await?;
        rows.into_iter().map(revoked_session).collect()
    }
}

/// Runs `read` inside a transaction (a projector's), its personal data opened with `keyring`
/// (the device fields where `device` asks).
pub(crate) async fn read_in(
    tx: &mut Tx,
    keyring: &Keyring,
    read: Read<'_>,
    device: Device,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows: Vec<RawEvent> = match tx {
        Tx::Sqlite(tx) => {
            read_query::<Sqlite>(read)?
                .build_query_as()
                .fetch_all(&mut **tx)
                .await
        }
        Tx::Postgres(tx) => {
            read_query::<Postgres>(read)?
                .build_query_as()
                .fetch_all(&mut **tx)
                .await
        }
    }
    .map_err(unavailable)?;
    Ok(decode_following(keyring.open(rows, device).await?))
}

#[async_trait]
impl EventStore for Store {
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<Appended, AppendError> {
        writer::submit(&self.writer, &self.keyring, writes, Vec::new()).await
    }

    async fn append_with(
        &self,
        writes: Vec<StreamWrite>,
        beside: Vec<Beside>,
    ) -> Result<Appended, AppendError> {
        let erased: Vec<UserId> = beside
            .iter()
            .filter_map(|b| match b {
                Beside::EraseUser(user) => Some(*user),
                _ => None,
            })
            .collect();
        let appended = writer::submit(&self.writer, &self.keyring, writes, beside).await?;
        // This process stops opening their data at once; others within a second.
        for user in erased {
            self.keyring.erased(user);
        }
        Ok(appended)
    }

    async fn find_account(&self, canonical: &str) -> Result<Option<Account>, StoreError> {
        self.account_where("canonical", canonical.into()).await
    }

    async fn account(&self, user_id: UserId) -> Result<Option<Account>, StoreError> {
        self.account_where("user_id", user_id.to_string().into())
            .await
    }

    async fn read_stream(&self, stream: StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        decode_all(self.read(Read::Stream(&stream)).await?)
    }

    async fn read_stream_tail(
        &self,
        stream: StreamId,
        count: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        decode_all(self.read(Read::Tail(&stream, count)).await?)
    }

    async fn read_stream_edges(
        &self,
        stream: StreamId,
        tail: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        decode_all(self.read(Read::Edges(&stream, tail)).await?)
    }

    async fn read_stream_after(
        &self,
        stream: StreamId,
        version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        decode_all(
            self.read(Read::StreamAfter(&stream, version, limit))
                .await?,
        )
    }

    async fn snapshot(&self, stream: StreamId) -> Result<Option<Snapshot>, StoreError> {
        let rows: Vec<(i64, String)> = self
            .pool
            .fetch(&Statement::new(
                "SELECT version, state FROM snapshots WHERE stream_id = ?",
                vec![stream.as_str().into()],
            ))
            .await?;
        rows.into_iter()
            .next()
            .map(|(version, state)| {
                Ok(Snapshot {
                    version: to_u64(version)?,
                    state,
                })
            })
            .transpose()
    }

    async fn keep_snapshot(&self, stream: StreamId, snapshot: Snapshot) -> Result<(), StoreError> {
        // A plain upsert on the pool, not through the writer: a snapshot is a cache, written
        // beside the log rather than with it, and the newer of two racing ones stays.
        self.pool
            .execute(&Statement::new(
                "INSERT INTO snapshots (stream_id, version, state) VALUES (?, ?, ?) \
                 ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, \
                 state = excluded.state WHERE snapshots.version < excluded.version",
                vec![
                    stream.as_str().into(),
                    to_i64(snapshot.version)?.into(),
                    snapshot.state.into(),
                ],
            ))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl EventLog for Store {
    async fn read_after(
        &self,
        after: u64,
        limit: u32,
        types: &'static [EventType],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = self
            .read(Read::After {
                after,
                limit,
                types,
            })
            .await?;
        Ok(decode_following(rows))
    }

    async fn query(&self, filter: AuditFilter) -> Result<Vec<RecordedEvent>, StoreError> {
        decode_all(self.read(Read::Audit(&filter)).await?)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Head {
            head: i64,
        }
        let rows: Vec<Head> = self
            .pool
            .fetch(&Statement::new(
                "SELECT CAST(COALESCE(MAX(position), 0) AS BIGINT) AS head FROM events",
                vec![],
            ))
            .await?;
        rows.first().map_or(Ok(0), |row| to_u64(row.head))
    }
}

#[async_trait]
impl ReadModels for Store {
    async fn wait_for(&self, position: u64) -> Result<(), StoreError> {
        self.projector.wait_for(position).await
    }

    async fn catch_up(&self) -> Result<(), StoreError> {
        self.projector.run().await
    }

    async fn wait_for_all(&self, position: u64) -> Result<(), StoreError> {
        self.projector.wait_for_all(position).await
    }

    async fn live_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionView>, StoreError> {
        self.caught_up().await?;
        let rows: Vec<SessionRow> = self
            .pool
            .fetch(&Statement::new(
                "SELECT session_id, user_id, created_at, last_used_at, expires_at, generation, \
                 user_agent, client_addr FROM sessions WHERE user_id = ? AND expires_at > ? \
                 ORDER BY created_at, session_id",
                vec![user.to_string().into(), format_timestamp(now).into()],
            ))
            .await?;
        rows.into_iter().map(session_view).collect()
    }

    /// One row: the database packs every recent revocation into fixed-width text (a session
    /// id and a time, 63 characters), so a start with 100,000 of them crosses the driver once
    /// instead of 100,000 times.
    async fn revocations_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<RecentRevocation>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Packed {
            packed: Option<String>,
        }
        self.caught_up().await?;
        let sql = match self.pool {
            Pool::Sqlite(_) => {
                "SELECT group_concat(session_id || revoked_at, '') AS packed FROM \
                 (SELECT session_id, revoked_at FROM revoked_sessions WHERE revoked_at >= ? \
                 ORDER BY revoked_at)"
            }
            Pool::Postgres(_) => {
                "SELECT string_agg(session_id || revoked_at, '' ORDER BY revoked_at) AS packed \
                 FROM revoked_sessions WHERE revoked_at >= ?"
            }
        };
        let rows: Vec<Packed> = self
            .pool
            .fetch(&Statement::new(sql, vec![format_timestamp(since).into()]))
            .await?;
        let packed = rows.into_iter().next().and_then(|row| row.packed);
        unpack_revocations(packed.as_deref().unwrap_or_default())
    }

    async fn revocations_after(&self, after: u64) -> Result<Vec<RevokedSession>, StoreError> {
        self.revocations(Statement::new(
            "SELECT session_id, user_id, reason, revoked_at, position FROM revoked_sessions \
             WHERE position > ? ORDER BY position",
            vec![to_i64(after)?.into()],
        ))
        .await
    }

    async fn users(&self, query: UserQuery) -> Result<Vec<UserView>, StoreError> {
        self.caught_up().await?;
        let mut sql = String::from(
            "SELECT user_id, username, status, created_at, last_login_at, email, email_verified \
             FROM users WHERE 1 = 1",
        );
        let mut args = Vec::new();
        if let Some(prefix) = query.prefix {
            // The names with this prefix are a range of the name index (byte order; no name
            // holds U+10FFFF). A narrow range is read whole and its ids looked up; a wide one
            // filters the walk in id order, which meets a match soon.
            let range = [prefix.clone().into(), format!("{prefix}\u{10FFFF}").into()];
            match self.narrow_prefix(range.clone(), query.after).await? {
                Some(ids) if ids.is_empty() => return Ok(Vec::new()),
                Some(ids) => {
                    sql.push_str(&format!(
                        " AND user_id IN ({})",
                        vec!["?"; ids.len()].join(", ")
                    ));
                    args.extend(ids.into_iter().map(Arg::from));
                }
                None => {
                    sql.push_str(" AND canonical >= ? AND canonical < ?");
                    args.extend(range);
                }
            }
        }
        if let Some(status) = query.status {
            sql.push_str(" AND status = ?");
            args.push(status.as_str().into());
        }
        if let Some(user_id) = query.user_id {
            sql.push_str(" AND user_id = ?");
            args.push(user_id.to_string().into());
        }
        if let Some(canonical) = query.canonical {
            sql.push_str(" AND canonical = ?");
            args.push(canonical.into());
        }
        if let Some(email) = query.email {
            sql.push_str(" AND email_canonical = ?");
            args.push(email.into());
        }
        if let Some(after) = query.after {
            sql.push_str(" AND user_id > ?");
            args.push(after.to_string().into());
        }
        sql.push_str(" ORDER BY user_id LIMIT ?");
        args.push(i64::from(query.limit).into());
        let users: Vec<UserRow> = self.pool.fetch(&Statement::new(sql, args)).await?;
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; users.len()].join(", ");
        let roles: Vec<RoleRow> = self
            .pool
            .fetch(&Statement::new(
                format!(
                    "SELECT user_id, role FROM user_roles WHERE user_id IN ({placeholders}) \
                     ORDER BY role"
                ),
                users.iter().map(|u| u.user_id.clone().into()).collect(),
            ))
            .await?;
        users.into_iter().map(|u| user_view(u, &roles)).collect()
    }

    async fn status(&self) -> Result<Vec<ProjectionStatus>, StoreError> {
        self.projector.status().await
    }
}

#[async_trait]
impl Chain for Store {
    async fn link(&self, position: Option<u64>) -> Result<Option<ChainLink>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct LinkRow {
            position: i64,
            hash: Vec<u8>,
            recorded_at: String,
        }
        let statement = match position {
            None => Statement::new(
                "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1",
                vec![],
            ),
            Some(position) => Statement::new(
                "SELECT position, hash, recorded_at FROM events WHERE position = ?",
                vec![to_i64(position)?.into()],
            ),
        };
        let rows: Vec<LinkRow> = self.pool.fetch(&statement).await?;
        rows.into_iter()
            .next()
            .map(|row| {
                Ok(ChainLink {
                    position: to_u64(row.position)?,
                    hash: row.hash,
                    recorded_at: parse_timestamp(&row.recorded_at)?,
                })
            })
            .transpose()
    }
}

#[async_trait]
impl KeyStore for Store {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct KeyRow {
            kid: String,
            algorithm: String,
            private_key: Vec<u8>,
            public_key: Vec<u8>,
            created_at: String,
            revoked_at: Option<String>,
        }
        let rows: Vec<KeyRow> = self
            .pool
            .fetch(&Statement::new(SELECT_KEYS, vec![]))
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(SigningKey {
                    kid: row.kid,
                    algorithm: row.algorithm,
                    private_der: row.private_key,
                    public_key: row.public_key,
                    created_at: parse_timestamp(&row.created_at)?,
                    revoked_at: row.revoked_at.as_deref().map(parse_timestamp).transpose()?,
                })
            })
            .collect()
    }

    async fn add_signing_key(
        &self,
        key: SigningKey,
        rotated: StreamWrite,
    ) -> Result<Appended, AppendError> {
        let beside = vec![Beside::AddSigningKey(key)];
        writer::submit(&self.writer, &self.keyring, vec![rotated], beside).await
    }

    async fn revoke_signing_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
        tombstone: Vec<u8>,
        replacement: SigningKey,
        events: StreamWrite,
    ) -> Result<Appended, AppendError> {
        let beside = vec![Beside::RevokeSigningKey {
            kid: kid.to_owned(),
            at,
            tombstone,
            replacement,
        }];
        writer::submit(&self.writer, &self.keyring, vec![events], beside).await
    }

    async fn replace_private_key(
        &self,
        kid: &str,
        current: Vec<u8>,
        replacement: Vec<u8>,
    ) -> Result<bool, StoreError> {
        // Not through the writer: `signing_keys` is not the log, and the compare keeps a
        // revocation that commits first (it empties the column) from being undone.
        let mut tx = self.pool.begin().await?;
        let changed = tx
            .execute(&Statement::new(
                "UPDATE signing_keys SET private_key = ? WHERE kid = ? AND private_key = ?",
                vec![Arg::Bytes(replacement), kid.into(), Arg::Bytes(current)],
            ))
            .await?;
        tx.commit().await?;
        Ok(changed == 1)
    }
}

#[async_trait]
impl NameKeyStore for Store {
    async fn name_key(&self, day: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rows: Vec<(Vec<u8>,)> = self
            .pool
            .fetch(&Statement::new(
                "SELECT sealed_key FROM name_keys WHERE day = ?",
                vec![day.into()],
            ))
            .await?;
        Ok(rows.into_iter().next().map(|(key,)| key))
    }

    async fn add_name_key(&self, day: &str, sealed: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        // Not through the writer: `name_keys` is not the log. The first instance to keep a
        // day's key wins; every other reads back the one kept.
        let mut tx = self.pool.begin().await?;
        tx.execute(&Statement::new(
            "INSERT INTO name_keys (day, sealed_key) VALUES (?, ?) ON CONFLICT (day) DO NOTHING",
            vec![day.into(), Arg::Bytes(sealed)],
        ))
        .await?;
        tx.commit().await?;
        self.name_key(day)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("the name key of {day} was not kept")))
    }

    async fn name_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.pool
            .fetch(&Statement::new(
                "SELECT day, sealed_key FROM name_keys ORDER BY day",
                vec![],
            ))
            .await
    }

    async fn forget_name_keys_before(&self, day: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let forgotten = tx
            .execute(&Statement::new(
                "DELETE FROM name_keys WHERE day < ?",
                vec![day.into()],
            ))
            .await?;
        tx.commit().await?;
        Ok(forgotten)
    }
}

/// A session id as text, then a time as [`format_timestamp`] spells it.
const PACKED: usize = 36 + 27;

fn unpack_revocations(packed: &str) -> Result<Vec<RecentRevocation>, StoreError> {
    if !packed.is_ascii() || packed.len() % PACKED != 0 {
        return Err(corrupt(
            "packed revocations of length",
            &packed.len().to_string(),
        ));
    }
    packed
        .as_bytes()
        .chunks_exact(PACKED)
        .map(|record| {
            // ASCII, checked above: every byte boundary is a character boundary.
            let record = std::str::from_utf8(record).map_err(|_| corrupt("record", ""))?;
            let (session, at) = record.split_at(36);
            Ok(RecentRevocation {
                session_id: SessionId::from_str(session)
                    .map_err(|_| corrupt("session id", session))?,
                revoked_at: parse_timestamp(at)?,
            })
        })
        .collect()
}

fn corrupt(what: &str, raw: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {raw:?} in a read model"))
}

fn session_view(row: SessionRow) -> Result<SessionView, StoreError> {
    Ok(SessionView {
        id: SessionId::from_str(&row.session_id)
            .map_err(|_| corrupt("session id", &row.session_id))?,
        user_id: UserId::from_str(&row.user_id).map_err(|_| corrupt("user id", &row.user_id))?,
        created_at: parse_timestamp(&row.created_at)?,
        last_used_at: parse_timestamp(&row.last_used_at)?,
        expires_at: parse_timestamp(&row.expires_at)?,
        generation: u32::try_from(row.generation)
            .map_err(|_| corrupt("generation", &row.generation.to_string()))?,
        user_agent: row.user_agent,
        client_addr: row.client_addr,
    })
}

fn revoked_session(row: RevokedRow) -> Result<RevokedSession, StoreError> {
    Ok(RevokedSession {
        session_id: SessionId::from_str(&row.session_id)
            .map_err(|_| corrupt("session id", &row.session_id))?,
        user_id: UserId::from_str(&row.user_id).map_err(|_| corrupt("user id", &row.user_id))?,
        reason: RevocationReason::parse(&row.reason)
            .ok_or_else(|| corrupt("reason", &row.reason))?,
        revoked_at: parse_timestamp(&row.revoked_at)?,
        position: to_u64(row.position)?,
    })
}

fn user_view(row: UserRow, roles: &[RoleRow]) -> Result<UserView, StoreError> {
    let status = match row.status.as_str() {
        "active" => UserStatus::Active,
        "disabled" => UserStatus::Disabled,
        other => return Err(corrupt("status", other)),
    };
    Ok(UserView {
        roles: roles
            .iter()
            .filter(|r| r.user_id == row.user_id)
            .map(|r| Role::parse(&r.role).map_err(|_| corrupt("role", &r.role)))
            .collect::<Result<_, _>>()?,
        user_id: UserId::from_str(&row.user_id).map_err(|_| corrupt("user id", &row.user_id))?,
        username: row.username,
        status,
        created_at: parse_timestamp(&row.created_at)?,
        last_login_at: row
            .last_login_at
            .as_deref()
            .map(parse_timestamp)
            .transpose()?,
        email: row.email,
        email_verified: row.email_verified != 0,
    })
}

/// A `subscribers` row.
#[derive(sqlx::FromRow)]
struct SubscriberRow {
    name: String,
    position: i64,
    holder: Option<String>,
    lease_until: Option<String>,
}

#[async_trait]
impl Checkpoints for Store {
    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.pool
            .execute(&Statement::new(
                "UPDATE subscribers SET holder = NULL, lease_until = NULL \
                 WHERE name = ? AND holder = ?",
                vec![name.into(), holder.into()],
            ))
            .await?;
        Ok(())
    }

    async fn lease(
        &self,
        name: &str,
        version: u32,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<u64>, StoreError> {
        let version = i64::from(version);
        self.pool
            .execute(&Statement::new(
                "INSERT INTO subscribers (name, version, position) VALUES (?, ?, 0) \
                 ON CONFLICT (name) DO NOTHING",
                vec![name.into(), version.into()],
            ))
            .await?;
        // One statement: of two instances racing for a lapsed lease, one changes the row.
        let leased: Vec<(i64,)> = self
            .pool
            .fetch(&Statement::new(
                "UPDATE subscribers SET holder = ?, lease_until = ?, \
                 position = CASE WHEN version = ? THEN position ELSE 0 END, version = ? \
                 WHERE name = ? AND (holder IS NULL OR holder = ? OR lease_until IS NULL \
                 OR lease_until <= ?) RETURNING position",
                vec![
                    holder.into(),
                    format_timestamp(until).into(),
                    version.into(),
                    version.into(),
                    name.into(),
                    holder.into(),
                    format_timestamp(now).into(),
                ],
            ))
            .await?;
        leased
            .first()
            .map(|(position,)| to_u64(*position))
            .transpose()
    }

    async fn advance(&self, name: &str, holder: &str, position: u64) -> Result<bool, StoreError> {
        let moved = self
            .pool
            .execute(&Statement::new(
                "UPDATE subscribers SET position = ? WHERE name = ? AND holder = ?",
                vec![to_i64(position)?.into(), name.into(), holder.into()],
            ))
            .await?;
        Ok(moved == 1)
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows: Vec<SubscriberRow> = self
            .pool
            .fetch(&Statement::new(
                "SELECT name, position, holder, lease_until FROM subscribers ORDER BY name",
                vec![],
            ))
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Checkpoint {
                    name: row.name,
                    position: to_u64(row.position)?,
                    holder: row.holder,
                    lease_until: row
                        .lease_until
                        .as_deref()
                        .map(parse_timestamp)
                        .transpose()?,
                })
            })
            .collect()
    }
}

/// A `user_secrets` row.
#[derive(sqlx::FromRow)]
struct SecretRow {
    id: String,
    sealed: Vec<u8>,
}

#[async_trait]
impl UserSecrets for Store {
    async fn secrets(&self, user: UserId, kind: SecretKind) -> Result<Vec<UserSecret>, StoreError> {
        let rows: Vec<SecretRow> = self
            .pool
            .fetch(&Statement::new(
                "SELECT id, sealed FROM user_secrets WHERE user_id = ? AND kind = ? ORDER BY id",
                vec![user.to_string().into(), kind.as_str().into()],
            ))
            .await?;
        let mut secrets = Vec::with_capacity(rows.len());
        for row in rows {
            // An erased user's key is gone: nothing of theirs opens.
            let Some(secret) = self
                .keyring
                .open_secret(user, kind, &row.id, &row.sealed)
                .await?
            else {
                return Ok(Vec::new());
            };
            secrets.push(UserSecret {
                user_id: user,
                kind,
                id: row.id,
                secret,
            });
        }
        Ok(secrets)
    }
}
