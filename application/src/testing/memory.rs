//! An event store in memory, for tests: it keeps the store contract (the same suite runs against
//! it as against SQLite and PostgreSQL) and derives its read models by folding the log on every
//! read, which is slow and obviously right. Modelled on cqrs-es's `MemStore`.
//!
//! A test says what happened ([`InMemoryEventStore::given`]), runs a use case, and reads what it
//! recorded ([`InMemoryEventStore::events_after`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use authlog_domain::session::{self, SessionState};
use authlog_domain::user::{self, UserState};
use authlog_domain::{
    Event, EventType, Personal, RevocationReason, SessionId, StreamId, UserId, ERASED,
};
use time::OffsetDateTime;

use crate::ports::{
    Account, AppendError, Appended, AuditFilter, Beside, Checkpoint, Checkpoints, EventLog,
    EventStore, ExpectedVersion, KeyStore, Metadata, NameKeyStore, NewEvent, ProjectionStatus,
    ReadModels, RecentRevocation, RecordedEvent, RevokedSession, SecretKind, SessionView,
    SigningKey, Snapshot, StoreError, StreamWrite, UserQuery, UserSecret, UserSecrets, UserStatus,
    UserView,
};

use super::NOW;

/// Where a user's secret is kept: its owner, kind and id.
type SecretKey = (UserId, &'static str, String);

#[derive(Default)]
pub struct InMemoryEventStore {
    log: Mutex<Vec<RecordedEvent>>,
    keys: Mutex<Vec<SigningKey>>,
    /// The sealed name keys, by day.
    name_keys: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Appends touching a stream whose name starts with this fail (failure injection).
    failing: Mutex<Option<String>>,
    /// The snapshots kept, by stream.
    snapshots: Mutex<HashMap<String, Snapshot>>,
    /// The secrets users own.
    secrets: Mutex<BTreeMap<SecretKey, Vec<u8>>>,
    /// The subscribers' checkpoints, by name, with the version that set them.
    checkpoints: Mutex<BTreeMap<String, (u32, Checkpoint)>>,
}

impl InMemoryEventStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Given: `events` were appended to `stream`, at [`NOW`], with no metadata.
    pub fn given(&self, stream: StreamId, events: impl IntoIterator<Item = Event>) -> &Self {
        self.given_at(stream, events, NOW)
    }

    /// Given: `events` were appended to `stream` at `at`.
    pub fn given_at(
        &self,
        stream: StreamId,
        events: impl IntoIterator<Item = Event>,
        at: OffsetDateTime,
    ) -> &Self {
        let events = events
            .into_iter()
            .map(|event| NewEvent {
                event,
                subject: None,
                metadata: Metadata::default(),
                occurred_at: at,
            })
            .collect();
        let write = StreamWrite::new(stream, ExpectedVersion::Any, events);
        // `Any` cannot conflict.
        let _ = self.commit(vec![write], Vec::new());
        self
    }

    /// From now on, appends that touch a stream whose name starts with `prefix` fail as if the
    /// database were down.
    pub fn fail_appends_to(&self, prefix: &str) {
        if let Ok(mut failing) = self.failing.lock() {
            *failing = Some(prefix.to_owned());
        }
    }

    /// Then: the events recorded after `position`, in order.
    pub fn events_after(&self, position: u64) -> Vec<Event> {
        self.recorded()
            .into_iter()
            .filter(|e| e.position > position)
            .map(|e| e.event)
            .collect()
    }

    /// Every recorded event, in order, as a store that seals personal data reads it: the
    /// personal fields of an erased user read as erased.
    pub fn recorded(&self) -> Vec<RecordedEvent> {
        let log = self.log.lock().map(|log| log.clone()).unwrap_or_default();
        let erased: Vec<UserId> = log
            .iter()
            .filter_map(|e| match &e.event {
                Event::UserErased(e) => Some(e.user_id),
                _ => None,
            })
            .collect();
        if erased.is_empty() {
            return log;
        }
        log.into_iter()
            .map(|mut recorded| {
                let owner = recorded.event.user_id().or_else(|| {
                    recorded
                        .subject
                        .as_deref()
                        .and_then(|s| s.parse::<UserId>().ok())
                });
                if owner.is_some_and(|owner| erased.contains(&owner)) {
                    erase(&mut recorded);
                }
                recorded
            })
            .collect()
    }

    /// The position of the newest event.
    pub fn position(&self) -> u64 {
        self.recorded().last().map_or(0, |e| e.position)
    }

    /// The name index, folded from the log: each `Registered` claims its name, the first
    /// registration of a name keeping it, and `UserErased` frees it (the account stays, without
    /// a name). With each account, its canonical name and skeleton.
    fn accounts(log: &[RecordedEvent]) -> Vec<(Account, String, String)> {
        let mut accounts: Vec<(Account, String, String)> = Vec::new();
        for recorded in log {
            if let Event::UserErased(e) = &recorded.event {
                for (account, canonical, skeleton) in &mut accounts {
                    if account.user_id == e.user_id {
                        // No name is empty: an erased account matches none.
                        canonical.clear();
                        skeleton.clear();
                    }
                }
                continue;
            }
            let Event::Registered(e) = &recorded.event else {
                continue;
            };
            let Personal::Known(username) = &e.username else {
                continue;
            };
            let canonical = username.canonical().to_owned();
            if accounts.iter().any(|(_, taken, _)| *taken == canonical) {
                continue;
            }
            let legacy = recorded.stream_id == StreamId::legacy_user(username);
            let account = Account {
                user_id: e.user_id,
                stream: recorded.stream_id.clone(),
                registered_at: recorded.position,
                legacy_subject: legacy.then(|| username.legacy_canonical()),
            };
            accounts.push((account, canonical, username.skeleton()));
        }
        accounts
    }

    fn find(&self, found: impl Fn(&Account, &str) -> bool) -> Result<Option<Account>, StoreError> {
        let log = self
            .log
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        Ok(Self::accounts(&log)
            .into_iter()
            .find(|(account, canonical, _)| found(account, canonical))
            .map(|(account, _, _)| account))
    }

    /// Appends `writes` and writes `beside` with them, as the SQL stores' writer does: all or
    /// nothing.
    fn commit(
        &self,
        writes: Vec<StreamWrite>,
        beside: Vec<Beside>,
    ) -> Result<Appended, AppendError> {
        if let Ok(failing) = self.failing.lock() {
            if let Some(prefix) = failing.as_deref() {
                if writes.iter().any(|w| w.stream.as_str().starts_with(prefix)) {
                    return Err(StoreError::Unavailable("disk full (injected)".into()).into());
                }
            }
        }
        let mut log = self
            .log
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        for claim in beside.iter().filter_map(|b| match b {
            Beside::ClaimName(claim) => Some(claim),
            _ => None,
        }) {
            let taken = Self::accounts(&log)
                .into_iter()
                .any(|(_, canonical, skeleton)| {
                    canonical == claim.canonical || skeleton == claim.skeleton
                });
            if taken {
                return Err(AppendError::NameTaken);
            }
        }
        for secret in beside.iter().filter_map(|b| match b {
            Beside::PutSecret(secret) => Some(secret),
            _ => None,
        }) {
            let erased = log
                .iter()
                .any(|e| matches!(&e.event, Event::UserErased(e) if e.user_id == secret.user_id));
            if erased {
                return Err(StoreError::Unavailable(format!(
                    "no key seals a secret of {}: the user was erased",
                    secret.user_id
                ))
                .into());
            }
        }
        let version = |log: &[RecordedEvent], stream: &StreamId| {
            log.iter()
                .filter(|e| &e.stream_id == stream)
                .map(|e| e.stream_version)
                .max()
                .unwrap_or(0)
        };
        for write in &writes {
            let actual = version(&log, &write.stream);
            if !write.expected.holds_at(actual) {
                return Err(AppendError::Conflict {
                    stream: write.stream.clone(),
                    expected: write.expected,
                    actual,
                });
            }
        }
        let mut position = log.last().map_or(0, |e| e.position);
        let first = position + 1;
        for write in writes {
            let after = version(&log, &write.stream);
            for (stream_version, new) in (after + 1..).zip(write.events) {
                position += 1;
                log.push(RecordedEvent {
                    position,
                    stream_id: write.stream.clone(),
                    stream_version,
                    event: new.event,
                    subject: new.subject,
                    metadata: new.metadata,
                    recorded_at: new.occurred_at,
                });
            }
        }
        for beside in beside {
            self.write_beside(beside)?;
        }
        Ok(Appended { first, position })
    }

    fn stream(&self, stream: &StreamId) -> Vec<RecordedEvent> {
        self.recorded()
            .into_iter()
            .filter(|e| &e.stream_id == stream)
            .collect()
    }

    /// What an append writes besides its events. A name claim was decided before the events;
    /// an erasure needs nothing more here ([`Self::recorded`] reads every event of an erased
    /// user as erased, and the name index frees the name) but the user's secrets.
    fn write_beside(&self, beside: Beside) -> Result<(), StoreError> {
        let poisoned = || StoreError::Unavailable("poisoned".into());
        match beside {
            Beside::ClaimName(_) => {}
            Beside::EraseUser(user) => {
                self.secrets
                    .lock()
                    .map_err(|_| poisoned())?
                    .retain(|(owner, _, _), _| *owner != user);
            }
            Beside::AddSigningKey(key) => self.keys.lock().map_err(|_| poisoned())?.push(key),
            Beside::RevokeSigningKey {
                kid,
                at,
                tombstone,
                replacement,
            } => {
                let mut keys = self.keys.lock().map_err(|_| poisoned())?;
                for key in keys.iter_mut().filter(|k| k.kid == kid && !k.is_revoked()) {
                    key.private_der.clear();
                    key.public_key.clone_from(&tombstone);
                    key.revoked_at = Some(at);
                }
                keys.push(replacement);
            }
            Beside::PutSecret(secret) => {
                self.secrets.lock().map_err(|_| poisoned())?.insert(
                    (secret.user_id, secret.kind.as_str(), secret.id),
                    secret.secret,
                );
            }
            Beside::DeleteSecret { user_id, kind, id } => {
                self.secrets
                    .lock()
                    .map_err(|_| poisoned())?
                    .remove(&(user_id, kind.as_str(), id));
            }
        }
        Ok(())
    }

    /// The read models, folded from the whole log: every session that was ever opened and the
    /// revocations, as the SQL projections keep them.
    fn fold(&self) -> Folded {
        let mut folded = Folded::default();
        for recorded in self.recorded() {
            folded.apply(&recorded);
        }
        folded
    }
}

/// What the projections hold, computed from scratch.
#[derive(Default)]
struct Folded {
    sessions: BTreeMap<SessionId, (SessionState, Option<String>, Option<String>)>,
    users: HashMap<UserId, (UserState, Option<OffsetDateTime>)>,
    revoked: Vec<RevokedSession>,
}

impl Folded {
    fn apply(&mut self, recorded: &RecordedEvent) {
        let stamp = recorded.stamp();
        match &recorded.event {
            Event::LoggedIn(e) => {
                self.sessions.insert(
                    e.session_id,
                    (
                        session::apply(SessionState::None, &recorded.event, stamp),
                        recorded.metadata.user_agent.clone(),
                        recorded.metadata.client_addr.clone(),
                    ),
                );
                if let Some((_, last_login)) = self.users.get_mut(&e.user_id) {
                    *last_login = Some(recorded.recorded_at);
                }
            }
            Event::Refreshed(e) => {
                if let Some((state, _, _)) = self.sessions.get_mut(&e.session_id) {
                    *state = session::apply(state.clone(), &recorded.event, stamp);
                }
            }
            Event::Revoked(e) => {
                // A session past its expiry has ended by itself: revoking it changes nothing.
                let live = self.sessions.get(&e.session_id).is_some_and(|(state, _, _)| {
                    matches!(state, SessionState::Active(s) if s.expires_at > recorded.recorded_at)
                });
                if let Some((state, _, _)) = self.sessions.get_mut(&e.session_id) {
                    *state = session::apply(state.clone(), &recorded.event, stamp);
                }
                if live {
                    self.revoke(e.session_id, e.user_id, e.reason, recorded);
                }
            }
            Event::SessionsRevoked(e) => {
                let ended: Vec<SessionId> = self
                    .sessions
                    .values()
                    .filter_map(|(state, _, _)| match state {
                        SessionState::Active(s)
                            if s.user_id == e.user_id
                                && s.opened_at < recorded.position
                                && s.expires_at > recorded.recorded_at
                                && Some(s.id) != e.except =>
                        {
                            Some(s.id)
                        }
                        _ => None,
                    })
                    .collect();
                for id in ended {
                    if let Some((state, _, _)) = self.sessions.get_mut(&id) {
                        if let SessionState::Active(session) = state.clone() {
                            *state = SessionState::Revoked {
                                session,
                                reason: e.reason,
                                at: recorded.recorded_at,
                            };
                        }
                    }
                    self.revoke(id, e.user_id, e.reason, recorded);
                }
                self.apply_user(e.user_id, recorded);
            }
            Event::Registered(e) => {
                self.users.insert(e.user_id, (UserState::None, None));
                self.apply_user(e.user_id, recorded);
            }
            Event::UserErased(e) => {
                // What a session read model keeps of an erased user (their devices) goes.
                self.sessions.retain(|_, (state, _, _)| match state {
                    SessionState::Active(s) | SessionState::Revoked { session: s, .. } => {
                        s.user_id != e.user_id
                    }
                    SessionState::None => true,
                });
                self.apply_user(e.user_id, recorded);
            }
            // Every other fact about a user (roles, password, status, address) is the
            // aggregate's to fold, as the users projection reads it.
            other => {
                if let Some(user) = other.user_id() {
                    self.apply_user(user, recorded);
                }
            }
        }
    }

    fn apply_user(&mut self, id: UserId, recorded: &RecordedEvent) {
        if let Some((state, _)) = self.users.get_mut(&id) {
            *state = user::apply(state.clone(), &recorded.event, recorded.stamp());
        }
    }

    fn revoke(
        &mut self,
        session_id: SessionId,
        user_id: UserId,
        reason: RevocationReason,
        recorded: &RecordedEvent,
    ) {
        self.revoked.push(RevokedSession {
            session_id,
            user_id,
            reason,
            revoked_at: recorded.recorded_at,
            position: recorded.position,
        });
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(&self, writes: Vec<StreamWrite>) -> Result<Appended, AppendError> {
        self.commit(writes, Vec::new())
    }

    async fn append_with(
        &self,
        writes: Vec<StreamWrite>,
        beside: Vec<Beside>,
    ) -> Result<Appended, AppendError> {
        self.commit(writes, beside)
    }

    async fn find_account(&self, canonical: &str) -> Result<Option<Account>, StoreError> {
        self.find(|_, name| name == canonical)
    }

    async fn account(&self, user_id: UserId) -> Result<Option<Account>, StoreError> {
        self.find(|account, _| account.user_id == user_id)
    }

    async fn read_stream(&self, stream: StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.stream(&stream))
    }

    async fn read_stream_tail(
        &self,
        stream: StreamId,
        count: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.stream(&stream);
        let skip = events.len().saturating_sub(count as usize);
        Ok(events.into_iter().skip(skip).collect())
    }

    async fn read_stream_edges(
        &self,
        stream: StreamId,
        tail: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let events = self.stream(&stream);
        let skip = events.len().saturating_sub(tail as usize).max(1);
        Ok(events
            .iter()
            .take(1)
            .chain(events.iter().skip(skip))
            .cloned()
            .collect())
    }

    async fn read_stream_after(
        &self,
        stream: StreamId,
        version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .stream(&stream)
            .into_iter()
            .filter(|e| e.stream_version > version)
            .take(limit as usize)
            .collect())
    }

    async fn snapshot(&self, stream: StreamId) -> Result<Option<Snapshot>, StoreError> {
        Ok(self
            .snapshots
            .lock()
            .ok()
            .and_then(|kept| kept.get(stream.as_str()).cloned()))
    }

    async fn keep_snapshot(&self, stream: StreamId, snapshot: Snapshot) -> Result<(), StoreError> {
        if let Ok(mut kept) = self.snapshots.lock() {
            let entry = kept
                .entry(stream.as_str().to_owned())
                .or_insert_with(|| snapshot.clone());
            if entry.version < snapshot.version {
                *entry = snapshot;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl EventLog for InMemoryEventStore {
    async fn read_after(
        &self,
        after: u64,
        limit: u32,
        types: &'static [EventType],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .recorded()
            .into_iter()
            .filter(|e| e.position > after)
            .filter(|e| types.is_empty() || e.event.kind().is_some_and(|k| types.contains(&k)))
            .take(limit as usize)
            .collect())
    }

    async fn query(&self, filter: AuditFilter) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .recorded()
            .into_iter()
            .filter(|e| e.position > filter.after)
            .filter(|e| {
                filter.subject.as_ref().is_none_or(|whom| {
                    e.subject.as_ref().is_some_and(|subject| {
                        whom.ids.contains(subject)
                            || (whom.names.contains(subject) && e.position >= whom.names_from)
                    })
                })
            })
            .filter(|e| {
                filter.types.is_empty() || filter.types.iter().any(|t| t == e.event.event_type())
            })
            .filter(|e| filter.since.is_none_or(|since| e.recorded_at >= since))
            .filter(|e| filter.until.is_none_or(|until| e.recorded_at < until))
            .take(filter.limit as usize)
            .collect())
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.position())
    }
}

#[async_trait]
impl ReadModels for InMemoryEventStore {
    async fn wait_for(&self, _position: u64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn catch_up(&self) -> Result<(), StoreError> {
        // Folded on every read: nothing to catch up.
        Ok(())
    }

    async fn wait_for_all(&self, _position: u64) -> Result<(), StoreError> {
        // Folded on every read: always up to date.
        Ok(())
    }

    async fn live_sessions(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionView>, StoreError> {
        let folded = self.fold();
        let mut live: Vec<SessionView> = folded
            .sessions
            .values()
            .filter_map(|(state, user_agent, client_addr)| match state {
                SessionState::Active(s) if s.user_id == user && s.expires_at > now => {
                    Some(SessionView {
                        id: s.id,
                        user_id: s.user_id,
                        created_at: s.created_at,
                        last_used_at: s.last_used_at,
                        expires_at: s.expires_at,
                        generation: s.generation,
                        user_agent: user_agent.clone(),
                        client_addr: client_addr.clone(),
                    })
                }
                _ => None,
            })
            .collect();
        live.sort_by_key(|s| (s.created_at, s.id));
        Ok(live)
    }

    async fn revocations_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<RecentRevocation>, StoreError> {
        let mut recent: Vec<RecentRevocation> = self
            .fold()
            .revoked
            .into_iter()
            .filter(|r| r.revoked_at >= since)
            .map(|r| RecentRevocation {
                session_id: r.session_id,
                revoked_at: r.revoked_at,
            })
            .collect();
        recent.sort_by_key(|r| r.revoked_at);
        Ok(recent)
    }

    async fn revocations_after(&self, after: u64) -> Result<Vec<RevokedSession>, StoreError> {
        Ok(self
            .fold()
            .revoked
            .into_iter()
            .filter(|r| r.position > after)
            .collect())
    }

    async fn users(&self, query: UserQuery) -> Result<Vec<UserView>, StoreError> {
        let mut users: Vec<(String, UserView)> = self
            .fold()
            .users
            .into_values()
            .filter_map(|(state, last_login_at)| match state {
                UserState::Registered(u) => Some((
                    u.username.canonical().to_owned(),
                    UserView {
                        user_id: u.id,
                        username: u.username.as_str().to_owned(),
                        roles: u.roles.into_iter().collect(),
                        status: if u.disabled {
                            UserStatus::Disabled
                        } else {
                            UserStatus::Active
                        },
                        created_at: u.created_at,
                        last_login_at,
                        email: u.email.as_ref().map(|e| e.as_str().to_owned()),
                        email_verified: u.email_verified,
                    },
                )),
                UserState::None | UserState::Erased(_) => None,
            })
            .filter(|(canonical, user)| {
                query
                    .prefix
                    .as_deref()
                    .is_none_or(|prefix| canonical.starts_with(prefix))
                    && query.after.is_none_or(|after| user.user_id > after)
                    && query.status.is_none_or(|status| user.status == status)
                    && query.user_id.is_none_or(|id| user.user_id == id)
                    && query
                        .canonical
                        .as_deref()
                        .is_none_or(|name| canonical == name)
                    && query.email.as_deref().is_none_or(|email| {
                        user.email.as_deref().map(str::to_lowercase).as_deref() == Some(email)
                    })
            })
            .collect();
        users.sort_by_key(|(_, user)| user.user_id);
        Ok(users
            .into_iter()
            .take(query.limit as usize)
            .map(|(_, user)| user)
            .collect())
    }

    async fn status(&self) -> Result<Vec<ProjectionStatus>, StoreError> {
        let head = self.position();
        Ok(["sessions", "users"]
            .into_iter()
            .map(|name| ProjectionStatus {
                name: name.to_owned(),
                position: head,
                head,
                halted: None,
            })
            .collect())
    }
}

#[async_trait]
impl KeyStore for InMemoryEventStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        Ok(self.keys.lock().map(|k| k.clone()).unwrap_or_default())
    }

    async fn add_signing_key(
        &self,
        key: SigningKey,
        rotated: StreamWrite,
    ) -> Result<Appended, AppendError> {
        self.commit(vec![rotated], vec![Beside::AddSigningKey(key)])
    }

    async fn revoke_signing_key(
        &self,
        kid: &str,
        at: time::OffsetDateTime,
        tombstone: Vec<u8>,
        replacement: SigningKey,
        events: StreamWrite,
    ) -> Result<Appended, AppendError> {
        let revoke = Beside::RevokeSigningKey {
            kid: kid.to_owned(),
            at,
            tombstone,
            replacement,
        };
        self.commit(vec![events], vec![revoke])
    }

    async fn replace_private_key(
        &self,
        kid: &str,
        current: Vec<u8>,
        replacement: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let mut keys = self
            .keys
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        let key = keys
            .iter_mut()
            .find(|k| k.kid == kid && k.private_der == current);
        Ok(key.map(|key| key.private_der = replacement).is_some())
    }
}

#[async_trait]
impl NameKeyStore for InMemoryEventStore {
    async fn name_key(&self, day: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.name_key_map()?.get(day).cloned())
    }

    async fn add_name_key(&self, day: &str, sealed: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .name_key_map()?
            .entry(day.to_owned())
            .or_insert(sealed)
            .clone())
    }

    async fn name_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self.name_key_map()?.clone().into_iter().collect())
    }

    async fn forget_name_keys_before(&self, day: &str) -> Result<u64, StoreError> {
        let mut keys = self.name_key_map()?;
        let before = keys.len();
        keys.retain(|kept, _| kept.as_str() >= day);
        Ok((before - keys.len()) as u64)
    }
}

impl InMemoryEventStore {
    fn name_key_map(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>>, StoreError> {
        self.name_keys
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))
    }
}

/// `recorded` as it reads once its user's key is gone.
fn erase(recorded: &mut RecordedEvent) {
    match &mut recorded.event {
        Event::Registered(e) => {
            e.username = Personal::Erased;
            e.password_hash = Personal::Erased;
        }
        Event::PasswordChanged(e) => e.password_hash = Personal::Erased,
        _ => {}
    }
    let metadata = &mut recorded.metadata;
    for field in [&mut metadata.client_addr, &mut metadata.user_agent] {
        if field.is_some() {
            *field = Some(ERASED.to_owned());
        }
    }
}

#[async_trait]
impl Checkpoints for InMemoryEventStore {
    async fn lease(
        &self,
        name: &str,
        version: u32,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<u64>, StoreError> {
        let mut kept = self
            .checkpoints
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        let fresh = || {
            (
                version,
                Checkpoint {
                    name: name.to_owned(),
                    position: 0,
                    holder: None,
                    lease_until: None,
                },
            )
        };
        let (kept_version, checkpoint) = kept.entry(name.to_owned()).or_insert_with(fresh);
        let held_elsewhere = checkpoint.holder.as_deref().is_some_and(|h| h != holder)
            && checkpoint.lease_until.is_some_and(|until| until > now);
        if held_elsewhere {
            return Ok(None);
        }
        if *kept_version != version {
            *kept_version = version;
            checkpoint.position = 0;
        }
        checkpoint.holder = Some(holder.to_owned());
        checkpoint.lease_until = Some(until);
        Ok(Some(checkpoint.position))
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut kept = self
            .checkpoints
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        if let Some((_, checkpoint)) = kept.get_mut(name) {
            if checkpoint.holder.as_deref() == Some(holder) {
                checkpoint.holder = None;
                checkpoint.lease_until = None;
            }
        }
        Ok(())
    }

    async fn advance(&self, name: &str, holder: &str, position: u64) -> Result<bool, StoreError> {
        let mut kept = self
            .checkpoints
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        match kept.get_mut(name) {
            Some((_, checkpoint)) if checkpoint.holder.as_deref() == Some(holder) => {
                checkpoint.position = position;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(self
            .checkpoints
            .lock()
            .map(|kept| kept.values().map(|(_, c)| c.clone()).collect())
            .unwrap_or_default())
    }
}

#[async_trait]
impl UserSecrets for InMemoryEventStore {
    async fn secrets(&self, user: UserId, kind: SecretKind) -> Result<Vec<UserSecret>, StoreError> {
        let secrets = self
            .secrets
            .lock()
            .map_err(|_| StoreError::Unavailable("poisoned".into()))?;
        Ok(secrets
            .iter()
            .filter(|((owner, of, _), _)| *owner == user && *of == kind.as_str())
            .map(|((_, _, id), secret)| UserSecret {
                user_id: user,
                kind,
                id: id.clone(),
                secret: secret.clone(),
            })
            .collect())
    }
}
