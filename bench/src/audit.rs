//! Audit queries at 1,000 and 1,000,000 events (SQLite): by username, by type and time, by
//! time range, each through the same `Audit` service the HTTP API and the CLI use.

use std::sync::Arc;
use std::time::Instant;

use authlog_application::access::Caller;
use authlog_application::audit::{Audit, AuditQuery};
use authlog_application::ports::Clock as _;
use authlog_application::ports::{
    Beside, EventStore, ExpectedVersion, Metadata, NameClaim, NewEvent, StreamWrite,
};
use authlog_crypto::SystemClock;
use authlog_domain::event::{LoggedIn, LoginFailed, LoginFailure, Registered, Revoked};
use authlog_domain::{
    Event, PasswordHash, RevocationReason, SessionId, StreamId, TokenId, UserId, Username,
};
use authlog_store::Store;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::figures::{record, Figure, Goal};
use crate::stats::median;

const USERS: usize = 10_000;
const BATCH: usize = 2_000;
const QUERIES: usize = 50;

/// Event `n` of a synthetic log: users take turns; logins, failures and revocations mix. As
/// the service records them, each concerns the account's id (its failed password checks too).
fn event(n: usize, start: OffsetDateTime) -> NewEvent {
    let user = n % USERS;
    let session_id = SessionId::from_uuid(Uuid::from_u128(n as u128));
    let user_id = UserId::from_uuid(Uuid::from_u128(user as u128));
    let subject = user_id.to_string();
    let event = match n % 10 {
        0..=5 => Event::LoggedIn(LoggedIn {
            session_id,
            user_id,
            refresh_token_id: TokenId::from_uuid(Uuid::from_u128(n as u128)),
            expires_at: start + Duration::days(30),
        }),
        6..=8 => Event::LoginFailed(LoginFailed {
            reason: LoginFailure::WrongPassword,
            attempt_id: None,
        }),
        _ => Event::Revoked(Revoked {
            session_id,
            user_id,
            reason: RevocationReason::Logout,
        }),
    };
    NewEvent {
        event,
        subject: Some(subject),
        metadata: Metadata {
            client_addr: Some("192.0.2.10".into()),
            user_agent: Some("bench".into()),
            request_id: Some(format!("req-{n}")),
        },
        // One event a second, so time-range queries select a real slice.
        occurred_at: start + Duration::seconds(n as i64),
    }
}

/// Registers `users` accounts as the service does (each claims its name), then appends
/// `events` synthetic events (see [`event`]) in batches; answers the seconds it took.
pub async fn fill(
    store: &dyn EventStore,
    users: usize,
    events: usize,
    start: OffsetDateTime,
) -> f64 {
    let began = Instant::now();
    for user in 0..users {
        let user_id = UserId::from_uuid(Uuid::from_u128(user as u128));
        let username = Username::parse(&format!("user{user}")).unwrap();
        let stream = StreamId::user(user_id);
        let registered = NewEvent {
            event: Event::Registered(Registered {
                user_id,
                username: username.clone().into(),
                password_hash: PasswordHash::from_phc("$argon2id$bench".into()).into(),
            }),
            subject: Some(user_id.to_string()),
            metadata: Metadata::default(),
            occurred_at: start,
        };
        let claim = NameClaim::of(&username, user_id, stream.clone());
        let write = StreamWrite::new(stream, ExpectedVersion::NoStream, vec![registered]);
        store
            .append_with(vec![write], vec![Beside::ClaimName(claim)])
            .await
            .unwrap();
    }
    let mut n = 0;
    while n < events {
        let batch: Vec<NewEvent> = (n..(n + BATCH).min(events))
            .map(|i| event(i, start))
            .collect();
        n += batch.len();
        let stream = StreamId::from_stored(format!("bench:{n}"));
        let write = StreamWrite::new(stream, ExpectedVersion::Any, batch);
        store.append(vec![write]).await.unwrap();
    }
    began.elapsed().as_secs_f64()
}

/// Median milliseconds of `QUERIES` runs of `make(i)`.
async fn time_queries(audit: &Audit, make: impl Fn(usize) -> AuditQuery) -> f64 {
    let mut samples = Vec::with_capacity(QUERIES);
    for i in 0..QUERIES {
        let query = make(i);
        let began = Instant::now();
        let page = audit.query(&Caller::Operator, query).await.unwrap();
        samples.push(began.elapsed().as_secs_f64() * 1000.0);
        assert!(!page.events.is_empty());
    }
    median(samples)
}

pub async fn run() -> anyhow::Result<()> {
    let start = SystemClock.now() - Duration::days(30);
    let dir = tempfile::tempdir()?;
    println!("\n### Audit queries on SQLite (median ms of {QUERIES} queries, 100 events a page)\n");
    println!("| query | 1,000 events | 1,000,000 events | ratio |");
    println!("|---|---|---|---|");
    let mut figures = Vec::new();
    for (name, events) in [("small", 1_000), ("large", 1_000_000)] {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{name}.db")).display()
        );
        let store = Arc::new(Store::open(&url, crate::personal()).await?);
        let users = USERS.min(events);
        let seconds = fill(store.as_ref(), users, events, start).await;
        eprintln!("registered {users} users and filled {events} events in {seconds:.1} s");
        let names = authlog_crypto::ConcealedNames::new(
            store.clone(),
            Arc::new(authlog_crypto::MasterKey::generate()?),
        );
        let audit = Audit::new(store.clone(), store, Arc::new(names));
        let by_user = time_queries(&audit, |i| AuditQuery {
            username: Some(format!("user{}", (i * 7_919) % users)),
            ..AuditQuery::default()
        })
        .await;
        let by_type_and_time = time_queries(&audit, |i| AuditQuery {
            types: vec!["Revoked".into()],
            since: Some(start + Duration::seconds((i * 13) as i64)),
            ..AuditQuery::default()
        })
        .await;
        let by_time = time_queries(&audit, |i| AuditQuery {
            since: Some(start + Duration::seconds((i * 17) as i64)),
            until: Some(start + Duration::seconds((i * 17 + 600) as i64)),
            ..AuditQuery::default()
        })
        .await;
        figures.push([by_user, by_type_and_time, by_time]);
    }
    for (i, name) in ["by username", "by type since a time", "by time range"]
        .iter()
        .enumerate()
    {
        let (small, large) = (figures[0][i], figures[1][i]);
        println!(
            "| {name} | {small:.2} | {large:.2} | {:.1}× |",
            large / small
        );
    }
    record(
        Figure::new(
            "audit page of 100 events by username at 1,000,000 events",
            figures[1][0],
            " ms",
        )
        .against("at 1,000", figures[0][0])
        .goal(Goal::AtMost(5.0)),
    );
    Ok(())
}
