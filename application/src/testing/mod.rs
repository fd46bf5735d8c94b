//! For tests of the use cases, here and in other crates (feature `testing`): the in-memory
//! event store ([`memory`]), a clock that stands still until moved, predictable ids, names
//! concealed in a way tests can read, and builders for events, stored events and claims.

pub mod memory;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use authlog_domain::{Event, StreamId};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use authlog_domain::event::Registered;
use authlog_domain::{PasswordHash, Role, SessionId, TokenId, UserId, Username};

use crate::ports::{
    Claims, Clock, Companions, HashError, Metadata, MockIdGenerator, MockPasswordHasher,
    MockTokenService, NameConcealer, RecordedEvent, StoreError, TokenKind,
};

pub use memory::InMemoryEventStore;

pub const NOW: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

/// Conceals a name as `concealed:{name}`, one key kept: what a test can read back. The real
/// concealer (`authlog-crypto`) is a keyed hash.
pub struct MarkedNames;

#[async_trait::async_trait]
impl NameConcealer for MarkedNames {
    async fn conceal(&self, canonical: &str, _now: OffsetDateTime) -> Result<String, StoreError> {
        Ok(format!("concealed:{canonical}"))
    }

    async fn recognisable(&self, canonical: &str) -> Result<Vec<String>, StoreError> {
        Ok(vec![format!("concealed:{canonical}")])
    }
}

pub fn names() -> Arc<dyn NameConcealer> {
    Arc::new(MarkedNames)
}

/// A clock that reads [`NOW`] until a test moves it.
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn advance(&self, by: Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0.lock().map_or(NOW, |now| *now)
    }
}

/// A [`FixedClock`] at [`NOW`].
pub fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock(Mutex::new(NOW)))
}

/// Ids 1, 2, 3, ... in the order they are asked for.
pub fn ids() -> Arc<MockIdGenerator> {
    let next = AtomicU64::new(1);
    let mut ids = MockIdGenerator::new();
    ids.expect_new_id()
        .returning(move || Uuid::from_u128(u128::from(next.fetch_add(1, Ordering::SeqCst))));
    Arc::new(ids)
}

/// `events` as the store would return them for `stream`.
pub fn recorded(stream: &StreamId, events: &[Event]) -> Vec<RecordedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| RecordedEvent {
            position: i as u64 + 1,
            stream_id: stream.clone(),
            stream_version: i as u64 + 1,
            event: event.clone(),
            subject: None,
            metadata: Metadata::default(),
            recorded_at: NOW,
        })
        .collect()
}

/// Alice's user id.
pub fn alice_id() -> UserId {
    UserId::from_uuid(Uuid::from_u128(1))
}

/// Alice registered, with the password hash `$argon2id$alice`.
pub fn alice_registered() -> Event {
    Event::Registered(Registered {
        user_id: alice_id(),
        username: alice().into(),
        password_hash: PasswordHash::from_phc("$argon2id$alice".into()).into(),
    })
}

/// Alice's entry in the name index: her id stream, registered at position 1.
pub fn alice_account() -> crate::ports::Account {
    crate::ports::Account {
        user_id: alice_id(),
        stream: StreamId::user(alice_id()),
        registered_at: 1,
        legacy_subject: None,
    }
}

/// A hasher whose every check answers `matches`, and that hashes `p` as `$hash$p`.
pub fn hasher(matches: bool) -> Arc<MockPasswordHasher> {
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_verify()
        .returning(move |_, _| Ok::<_, HashError>(matches));
    hasher.expect_hash().returning(|password| {
        Ok(PasswordHash::from_phc(format!(
            "$hash${}",
            password.expose_secret()
        )))
    });
    Arc::new(hasher)
}

/// A token service that signs claims as `Kind:jti:fresh`, so tests can read what went in.
pub fn signing() -> Arc<MockTokenService> {
    let mut tokens = MockTokenService::new();
    tokens.expect_issue().returning(|claims| {
        Ok(format!(
            "{:?}:{}:{}",
            claims.kind, claims.token_id, claims.fresh
        ))
    });
    tokens.expect_companions().returning(companions);
    Arc::new(tokens)
}

/// What [`signing`] derives for refresh token `id`: access token id `id` + 1,000, and CSRF
/// values that name the token.
pub fn companions(id: TokenId) -> Companions {
    Companions {
        access_id: TokenId::from_uuid(Uuid::from_u128(id.as_uuid().as_u128() + 1_000)),
        access_csrf: format!("access-csrf-{id}"),
        refresh_csrf: format!("refresh-csrf-{id}"),
    }
}

/// An admission control roomy enough that no unit test meets its bounds.
pub fn admission() -> Arc<crate::admission::Admission> {
    crate::admission::Admission::new(crate::admission::AdmissionLimits {
        total: 1_000,
        per_client: 1_000,
    })
}

pub fn uuid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// `alice`, the user most tests are about.
pub fn alice() -> Username {
    // A literal that is a valid username: parsing it cannot fail.
    Username::parse("alice").unwrap_or_else(|_| unreachable!("alice is a valid username"))
}

/// The claims of a fresh access token of `alice` holding `roles`.
pub fn claims_of(roles: &[Role]) -> Claims {
    Claims {
        user_id: UserId::from_uuid(Uuid::from_u128(1)),
        username: alice(),
        roles: roles.to_vec(),
        session_id: SessionId::from_uuid(Uuid::from_u128(2)),
        token_id: TokenId::from_uuid(Uuid::from_u128(3)),
        kind: TokenKind::Access,
        fresh: true,
        issued_at: NOW,
        expires_at: NOW + time::Duration::minutes(15),
        csrf: None,
    }
}
