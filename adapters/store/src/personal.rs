//! Personal data sealed in the log (crypto-shredding): the store seals the personal fields of
//! an event as it appends it, under the data key of the user the event concerns, and opens them
//! as it reads, so the use cases never see a sealed field and the database never holds an open
//! one.
//!
//! **Stored form.** The personal fields of a payload ([`Event::personal_fields`]) are taken out
//! and replaced by one field `sealed`: base64url of the fields, as a JSON object, sealed for
//! `{user}/{event type}/payload`. The metadata's `client_addr` and `user_agent` go the same
//! way, sealed for `{user}/metadata`; `request_id` stays readable. Whose key seals an event is
//! the user its `subject` is (an account's events and password checks name its id), else the
//! user its payload names (`user_id`): both readable, so a reader knows which key to ask for.
//! Rows of older releases have no `sealed` field and are read as they are.
//!
//! **Keys.** `user_keys` holds each user's data key sealed under the master key
//! ([`PersonalData`]). A user's first sealed event makes it (an account registered before this
//! release gets one then). Erasure sets it to NULL in the transaction that appends `UserErased`:
//! from then on their sealed fields read as [`ERASED`], in every answer and every projection,
//! and the chain, computed over the stored bytes, is unchanged.
//!
//! **Cache.** Opened keys are kept for [`KEPT_FOR`], so that a refresh, which reads and writes
//! sealed events of one user, costs no key query; an erasure in this process drops its key at
//! once, and another instance's copy expires within that time. An erased user's state is final
//! and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use authlog_application::ports::{DataKey, NewEvent, PersonalData, SecretKind, StoreError};
use authlog_domain::{Event, EventType, UserId, ERASED};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::rows::RawEvent;
use crate::sql::{Arg, Pool, Statement};
use crate::writer::PreparedEvent;

/// How long an opened key is used before it is read again (and an erasure on another instance
/// is seen).
pub const KEPT_FOR: Duration = Duration::from_secs(1);
/// Keys kept at most; beyond, the cache starts afresh (a cache, not a copy of the table).
const MOST_KEPT: usize = 100_000;
/// The field that holds what was sealed.
const SEALED: &str = "sealed";
/// The metadata fields that are personal.
const PERSONAL_METADATA: [&str; 2] = ["client_addr", "user_agent"];

/// Whose device fields (the metadata's client address and user agent) a read opens.
#[derive(Debug, Clone, Copy)]
pub enum Device {
    /// Every event's: audit, and whoever follows the log.
    All,
    /// None: a decision on a stream never depends on them.
    None,
    /// Those of events of these types (what a projection keeps).
    Of(&'static [EventType]),
}

impl Device {
    fn of(self, event_type: &str) -> bool {
        match self {
            Self::All => true,
            Self::None => false,
            Self::Of(types) => types.iter().any(|t| t.as_str() == event_type),
        }
    }
}

/// A user's key as far as this process knows: open, or destroyed.
#[derive(Clone)]
enum Known {
    Open(Arc<dyn DataKey>, Instant),
    Erased,
}

/// The users' data keys of one store, and the sealing and opening of events with them.
pub struct Keyring {
    pool: Pool,
    /// Given once the master key is known ([`crate::Store::start`]).
    personal: OnceLock<Arc<dyn PersonalData>>,
    known: Mutex<HashMap<UserId, Known>>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    user_id: String,
    sealed_key: Option<Vec<u8>>,
}

impl Keyring {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            personal: OnceLock::new(),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Gives the keyring the master key's [`PersonalData`]; the first one given stays.
    pub fn unlock(&self, personal: Arc<dyn PersonalData>) {
        let _ = self.personal.set(personal);
    }

    fn personal(&self) -> Result<&Arc<dyn PersonalData>, StoreError> {
        self.personal.get().ok_or_else(|| {
            StoreError::Unavailable("the store was opened without the master key".into())
        })
    }

    /// Forgets `user`'s key: they were erased.
    pub fn erased(&self, user: UserId) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(user, Known::Erased);
        }
    }

    /// What this process knows of `user`'s key, if it is still fresh.
    fn cached(&self, user: UserId) -> Option<Known> {
        let known = self.known.lock().ok()?;
        match known.get(&user)? {
            Known::Open(_, at) if at.elapsed() >= KEPT_FOR => None,
            fresh => Some(fresh.clone()),
        }
    }

    fn remember(&self, user: UserId, key: Known) {
        if let Ok(mut known) = self.known.lock() {
            // A key read just before an erasure here committed must not come back after it.
            if matches!(known.get(&user), Some(Known::Erased)) {
                return;
            }
            if known.len() >= MOST_KEPT {
                known.clear();
            }
            known.insert(user, key);
        }
    }

    /// The stored keys of `users`: `None` for a user whose key was destroyed, no entry for a
    /// user who has none.
    async fn stored(&self, users: &[UserId]) -> Result<HashMap<UserId, Known>, StoreError> {
        let mut found = HashMap::new();
        for chunk in users.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let rows: Vec<KeyRow> = self
                .pool
                .fetch(&Statement::new(
                    format!(
                        "SELECT user_id, sealed_key FROM user_keys WHERE user_id IN ({placeholders})"
                    ),
                    chunk.iter().map(|u| Arg::from(u.to_string())).collect(),
                ))
                .await?;
            for row in rows {
                let user: UserId = row.user_id.parse().map_err(|_| {
                    StoreError::Corrupt(format!("user_keys holds the id {:?}", row.user_id))
                })?;
                let known = match row.sealed_key {
                    None => Known::Erased,
                    Some(sealed) => {
                        let key = self
                            .personal()?
                            .open_key(user, &sealed)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        Known::Open(Arc::from(key), Instant::now())
                    }
                };
                self.remember(user, known.clone());
                found.insert(user, known);
            }
        }
        Ok(found)
    }

    /// `user`'s key to seal with: made and kept if they have none yet; `None` once they were
    /// erased.
    async fn for_sealing(&self, user: UserId) -> Result<Option<Arc<dyn DataKey>>, StoreError> {
        let known = match self.cached(user) {
            Some(known) => known,
            None => match self.stored(&[user]).await?.remove(&user) {
                Some(known) => known,
                None => self.make(user).await?,
            },
        };
        Ok(match known {
            Known::Open(key, _) => Some(key),
            Known::Erased => None,
        })
    }

    /// Makes `user`'s key. Two instances may race: the first kept wins, and both use it.
    async fn make(&self, user: UserId) -> Result<Known, StoreError> {
        let (_, sealed) = self
            .personal()?
            .new_key(user)
            .map_err(|e| StoreError::Unavailable(format!("making a data key: {e}")))?;
        let mut tx = self.pool.begin().await?;
        tx.execute(&Statement::new(
            "INSERT INTO user_keys (user_id, sealed_key) VALUES (?, ?) \
             ON CONFLICT (user_id) DO NOTHING",
            vec![user.to_string().into(), Arg::Bytes(sealed)],
        ))
        .await?;
        tx.commit().await?;
        self.stored(&[user])
            .await?
            .remove(&user)
            .ok_or_else(|| StoreError::Corrupt(format!("the data key of {user} was not kept")))
    }

    /// `events` serialised for their rows, their personal fields sealed.
    pub async fn seal(&self, events: Vec<NewEvent>) -> Result<Vec<PreparedEvent>, StoreError> {
        let mut prepared = Vec::with_capacity(events.len());
        for e in events {
            let event_type = e.event.event_type().to_owned();
            let mut payload = e.event.payload();
            let mut metadata = serde_json::to_value(&e.metadata)
                .map_err(|e| StoreError::Unavailable(format!("metadata: {e}")))?;
            let owner = subject_user(e.subject.as_deref()).or_else(|| e.event.user_id());
            if let Some(owner) = owner {
                let fields = Event::personal_fields(&event_type);
                let personal = has_any(&payload, fields) || has_any(&metadata, &PERSONAL_METADATA);
                if personal {
                    let key = self.for_sealing(owner).await?;
                    let purpose = payload_purpose(owner, &event_type);
                    seal_fields(key.as_deref(), &purpose, &mut payload, fields)?;
                    let purpose = metadata_purpose(owner);
                    seal_fields(key.as_deref(), &purpose, &mut metadata, &PERSONAL_METADATA)?;
                }
            }
            prepared.push(PreparedEvent {
                schema_version: i64::from(e.event.schema_version()),
                event_type,
                subject: e.subject,
                payload: payload.to_string(),
                metadata: metadata.to_string(),
                recorded_at: crate::rows::format_timestamp(e.occurred_at),
            });
        }
        Ok(prepared)
    }

    /// `secret` of `user`, sealed under their data key for its kind and id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the user was erased (no key seals for them any more),
    /// or sealing fails.
    pub async fn seal_secret(
        &self,
        user: UserId,
        kind: SecretKind,
        id: &str,
        secret: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let key = self.for_sealing(user).await?.ok_or_else(|| {
            StoreError::Unavailable(format!(
                "no key seals a secret of {user}: the user was erased"
            ))
        })?;
        key.seal(&secret_purpose(user, kind, id), secret)
            .map_err(|e| StoreError::Unavailable(format!("sealing a secret: {e}")))
    }

    /// What [`Keyring::seal_secret`] sealed; `None` once the user is erased.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when `sealed` does not open under the user's key for its kind
    /// and id (altered, or moved from another row), or the user has no key at all.
    pub async fn open_secret(
        &self,
        user: UserId,
        kind: SecretKind,
        id: &str,
        sealed: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let known = match self.cached(user) {
            Some(known) => Some(known),
            None => self.stored(&[user]).await?.remove(&user),
        };
        let key = match known {
            Some(Known::Open(key, _)) => key,
            Some(Known::Erased) => return Ok(None),
            None => {
                return Err(StoreError::Corrupt(format!(
                    "a {} secret of {user}, who has no data key",
                    kind.as_str()
                )))
            }
        };
        key.open(&secret_purpose(user, kind, id), sealed)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("a {} secret of {user}: {e}", kind.as_str())))
    }

    /// `rows` with their sealed fields opened (or, where the key is gone, erased), ready to
    /// decode; their metadata's too where `device` asks for it, else its personal fields are
    /// left out. Asks the store once for every key it does not hold.
    pub async fn open(
        &self,
        mut rows: Vec<RawEvent>,
        device: Device,
    ) -> Result<Vec<RawEvent>, StoreError> {
        let sealed: Vec<usize> = (0..rows.len())
            .filter(|&i| {
                let row = &rows[i];
                may_be_sealed(&row.payload)
                    || (device.of(&row.event_type) && may_be_sealed(&row.metadata))
            })
            .collect();
        if sealed.is_empty() {
            return Ok(rows);
        }
        let mut keys: HashMap<UserId, Known> = HashMap::new();
        let mut missing = std::collections::HashSet::new();
        let mut owners = Vec::with_capacity(sealed.len());
        for &i in &sealed {
            let owner = owner_of(&rows[i])?;
            if let Some(owner) = owner {
                if !keys.contains_key(&owner) && !missing.contains(&owner) {
                    match self.cached(owner) {
                        Some(known) => {
                            keys.insert(owner, known);
                        }
                        None => {
                            missing.insert(owner);
                        }
                    }
                }
            }
            owners.push(owner);
        }
        if !missing.is_empty() {
            let missing: Vec<UserId> = missing.into_iter().collect();
            keys.extend(self.stored(&missing).await?);
        }
        for (&i, owner) in sealed.iter().zip(owners) {
            let key = match owner.and_then(|owner| keys.get(&owner)) {
                Some(Known::Open(key, _)) => Some(key.as_ref()),
                // Destroyed, or (for a row that does not say whose it is) never to be found.
                _ => None,
            };
            let row = &mut rows[i];
            // Without an owner there is no key, and the purpose is never asked for.
            if may_be_sealed(&row.payload) {
                let purpose = owner.map(|o| payload_purpose(o, &row.event_type));
                row.payload = open_text(
                    key,
                    &purpose.unwrap_or_default(),
                    &row.payload,
                    Event::personal_fields(&row.event_type),
                    row.position,
                )?;
            }
            if device.of(&row.event_type) && may_be_sealed(&row.metadata) {
                row.metadata = open_text(
                    key,
                    &owner.map(metadata_purpose).unwrap_or_default(),
                    &row.metadata,
                    &PERSONAL_METADATA,
                    row.position,
                )?;
            }
        }
        Ok(rows)
    }
}

/// The user a `subject` names, if it is a user's id.
fn subject_user(subject: Option<&str>) -> Option<UserId> {
    subject.and_then(|s| s.parse().ok())
}

fn payload_purpose(owner: UserId, event_type: &str) -> Vec<u8> {
    format!("{owner}/{event_type}/payload").into_bytes()
}

fn secret_purpose(owner: UserId, kind: SecretKind, id: &str) -> Vec<u8> {
    format!("{owner}/secret/{}/{id}", kind.as_str()).into_bytes()
}

fn metadata_purpose(owner: UserId) -> Vec<u8> {
    format!("{owner}/metadata").into_bytes()
}

fn has_any(value: &Value, fields: &[&str]) -> bool {
    value
        .as_object()
        .is_some_and(|o| fields.iter().any(|f| o.contains_key(*f)))
}

/// Takes `fields` out of `object` and puts them back sealed with `key`, as one `sealed` field.
/// With no key (the user was erased), the fields are not kept at all.
fn seal_fields(
    key: Option<&dyn DataKey>,
    purpose: &[u8],
    object: &mut Value,
    fields: &[&str],
) -> Result<(), StoreError> {
    let Some(object) = object.as_object_mut() else {
        return Ok(());
    };
    let mut taken = Map::new();
    for field in fields {
        if let Some(value) = object.remove(*field) {
            taken.insert((*field).to_owned(), value);
        }
    }
    if taken.is_empty() {
        return Ok(());
    }
    if let Some(key) = key {
        let clear = Value::Object(taken).to_string();
        let sealed = key
            .seal(purpose, clear.as_bytes())
            .map_err(|e| StoreError::Unavailable(format!("sealing personal data: {e}")))?;
        object.insert(
            SEALED.to_owned(),
            Value::String(URL_SAFE_NO_PAD.encode(sealed)),
        );
    }
    Ok(())
}

/// Whether the stored JSON text may hold a `sealed` field: a cheap test that lets every row of
/// an older release, and every row of no user, pass unparsed.
fn may_be_sealed(text: &str) -> bool {
    text.contains("\"sealed\"")
}

/// Whose key sealed `row`: the user its subject is, else the user its payload names (the same
/// rule [`Keyring::seal`] follows; the subject first, since it needs no parsing).
fn owner_of(row: &RawEvent) -> Result<Option<UserId>, StoreError> {
    if let Some(user) = subject_user(row.subject.as_deref()) {
        return Ok(Some(user));
    }
    let payload: Value = serde_json::from_str(&row.payload)
        .map_err(|e| StoreError::Corrupt(format!("payload at position {}: {e}", row.position)))?;
    Ok(payload
        .get("user_id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok()))
}

/// The stored JSON `text` with its `sealed` field opened into `fields`, or, without a key, with
/// each of `fields` read as [`ERASED`].
fn open_text(
    key: Option<&dyn DataKey>,
    purpose: &[u8],
    text: &str,
    fields: &[&str],
    position: i64,
) -> Result<String, StoreError> {
    if !may_be_sealed(text) {
        return Ok(text.to_owned());
    }
    let corrupt = |what: String| StoreError::Corrupt(format!("position {position}: {what}"));
    let mut value: Value = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let Some(object) = value.as_object_mut() else {
        return Ok(text.to_owned());
    };
    let Some(sealed) = object.remove(SEALED) else {
        return Ok(text.to_owned());
    };
    match key {
        Some(key) => {
            let sealed = sealed
                .as_str()
                .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
                .ok_or_else(|| corrupt("a sealed field that is not base64url".into()))?;
            let clear = key
                .open(purpose, &sealed)
                .map_err(|e| corrupt(format!("a sealed field does not open: {e}")))?;
            let opened: Map<String, Value> = serde_json::from_slice(&clear)
                .map_err(|e| corrupt(format!("a sealed field: {e}")))?;
            object.extend(opened);
        }
        None => {
            for field in fields {
                object.insert((*field).to_owned(), Value::String(ERASED.to_owned()));
            }
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use authlog_domain::Personal;
    use base64::engine::general_purpose::STANDARD;

    /// Rows as this release stored them (one of each sealed shape, and an erasure), and the keys
    /// of the throwaway database they were read from: the golden bytes every later release must
    /// still open.
    const ROWS: &str = include_str!("../../../domain/fixtures/events-v5.jsonl");
    const KEYS: &str = include_str!("../../../domain/fixtures/events-v5.keys.json");

    fn fixture_keys() -> (authlog_crypto::DataKeys, Value) {
        keys_of(KEYS)
    }

    fn keys_of(text: &str) -> (authlog_crypto::DataKeys, Value) {
        let keys: Value = serde_json::from_str(text).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master.key");
        std::fs::write(&file, keys["master_key"].as_str().unwrap()).unwrap();
        let master = authlog_crypto::MasterKey::read(&file).unwrap();
        (authlog_crypto::DataKeys::new(Arc::new(master)), keys)
    }

    #[test]
    fn the_sealed_rows_of_this_release_open_with_their_users_key_and_read_as_erased_without() {
        let (personal, keys) = fixture_keys();
        let mut seen = Vec::new();
        for line in ROWS.lines() {
            let stored: Value = serde_json::from_str(line).unwrap();
            let text = |field: &str| stored[field].as_str().unwrap().to_owned();
            let row = RawEvent {
                position: 1,
                stream_id: "user:x".into(),
                stream_version: 1,
                event_type: text("event_type"),
                subject: Some(text("subject")),
                payload: text("payload"),
                metadata: text("metadata"),
                recorded_at: "2026-11-24T10:00:00.000000Z".into(),
                schema_version: stored["schema_version"].as_i64(),
            };
            // Nothing personal is readable in what was stored.
            for field in Event::personal_fields(&row.event_type) {
                assert!(!row.payload.contains(field), "{}", row.payload);
            }
            assert!(!row.metadata.contains("Golden") && row.metadata.contains("\"sealed\""));
            let owner = owner_of(&row).unwrap().unwrap();
            let key = keys["user_keys"][owner.to_string()].as_str().map(|sealed| {
                personal
                    .open_key(owner, &STANDARD.decode(sealed).unwrap())
                    .unwrap()
            });
            let payload = open_text(
                key.as_deref(),
                &payload_purpose(owner, &row.event_type),
                &row.payload,
                Event::personal_fields(&row.event_type),
                1,
            )
            .unwrap();
            let metadata: Value = serde_json::from_str(
                &open_text(
                    key.as_deref(),
                    &metadata_purpose(owner),
                    &row.metadata,
                    &PERSONAL_METADATA,
                    1,
                )
                .unwrap(),
            )
            .unwrap();
            let version = u32::try_from(row.schema_version.unwrap()).unwrap();
            let event = Event::decode_json(&row.event_type, version, &payload).unwrap();
            match &event {
                Event::Registered(e) => {
                    assert_eq!(e.username.known().map(|u| u.as_str()), Some("Zelda"));
                    assert!(
                        matches!(&e.password_hash, Personal::Known(h) if h.as_phc().starts_with("$argon2id$"))
                    );
                }
                Event::PasswordChanged(e) => {
                    assert!(
                        matches!(&e.password_hash, Personal::Known(h) if h.as_phc().starts_with("$argon2id$"))
                    );
                }
                Event::LoggedIn(_) => assert_eq!(metadata["user_agent"], "Golden/5.0"),
                // The erased user's key is gone: what it sealed reads as erased.
                Event::UserErased(_) => {
                    assert!(key.is_none());
                    assert_eq!(metadata["user_agent"], ERASED);
                    assert_eq!(metadata["client_addr"], ERASED);
                }
                other => panic!("{other:?}"),
            }
            if key.is_some() {
                assert_eq!(metadata["user_agent"], "Golden/5.0", "{}", row.event_type);
            }
            seen.push(row.event_type);
        }
        assert_eq!(
            seen,
            ["Registered", "LoggedIn", "PasswordChanged", "UserErased"]
        );
    }

    #[test]
    fn a_sealed_field_opens_only_for_its_own_user_and_purpose() {
        let (personal, keys) = fixture_keys();
        let row: Value = serde_json::from_str(ROWS.lines().next().unwrap()).unwrap();
        let owner: UserId = row["subject"].as_str().unwrap().parse().unwrap();
        let sealed = STANDARD
            .decode(keys["user_keys"][owner.to_string()].as_str().unwrap())
            .unwrap();
        let key = personal.open_key(owner, &sealed).unwrap();
        let payload = row["payload"].as_str().unwrap();
        let fields = Event::personal_fields("Registered");
        // Moved to another user's row, or to another event type, it does not open: an error,
        // not a silent erasure.
        let other = UserId::from_uuid(uuid::Uuid::from_u128(1));
        assert!(open_text(
            Some(&*key),
            &payload_purpose(other, "Registered"),
            payload,
            fields,
            1
        )
        .is_err());
        assert!(open_text(
            Some(&*key),
            &payload_purpose(owner, "PasswordChanged"),
            payload,
            fields,
            1
        )
        .is_err());
        assert!(open_text(
            Some(&*key),
            &payload_purpose(owner, "Registered"),
            payload,
            fields,
            1
        )
        .is_ok());
    }

    #[test]
    fn the_account_rows_open_with_their_users_key_and_read_as_erased_without() {
        const ROWS_V6: &str = include_str!("../../../domain/fixtures/events-v6.jsonl");
        let (personal, keys) =
            keys_of(include_str!("../../../domain/fixtures/events-v6.keys.json"));
        let mut opened_fields = 0;
        for line in ROWS_V6.lines() {
            let row: Value = serde_json::from_str(line).unwrap();
            let event_type = row["event_type"].as_str().unwrap();
            let fields = Event::personal_fields(event_type);
            if fields.is_empty() {
                continue;
            }
            let owner: UserId = row["subject"].as_str().unwrap().parse().unwrap();
            let sealed = STANDARD
                .decode(keys["user_keys"][owner.to_string()].as_str().unwrap())
                .unwrap();
            let key = personal.open_key(owner, &sealed).unwrap();
            let purpose = payload_purpose(owner, event_type);
            let stored = row["payload"].as_str().unwrap();
            let opened = open_text(Some(&*key), &purpose, stored, fields, 1).unwrap();
            let erased = open_text(None, &purpose, stored, fields, 1).unwrap();
            match (
                Event::decode_json(event_type, 1, &opened).unwrap(),
                Event::decode_json(event_type, 1, &erased).unwrap(),
            ) {
                (Event::UserDisabled(open), Event::UserDisabled(gone)) => {
                    assert_eq!(
                        open.reason,
                        Some(Personal::Known("golden fixture: on leave".to_owned()))
                    );
                    assert_eq!(gone.reason, Some(Personal::Erased));
                }
                (Event::EmailChanged(open), Event::EmailChanged(gone)) => {
                    assert_eq!(
                        open.email.known().map(|e| e.as_str()),
                        Some("yara@example.com")
                    );
                    assert_eq!(gone.email, Personal::Erased);
                }
                (Event::MailCodeIssued(open), Event::MailCodeIssued(gone)) => {
                    assert_eq!(
                        open.email.known().map(|e| e.as_str()),
                        Some("yara@example.com")
                    );
                    assert_eq!(gone.email, Personal::Erased);
                }
                other => panic!("{other:?}"),
            }
            opened_fields += 1;
        }
        assert_eq!(opened_fields, 3);
    }
}
