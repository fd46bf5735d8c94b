//! Behaviour every store must have, whatever the database: the SQL stores and the application's
//! in-memory store alike. Each function takes a fresh, empty store.

use std::sync::Arc;

use authlog_application::ports::{
    AppendError, Appended, Beside, Checkpoints, EventLog, EventStore, ExpectedVersion, KeyStore,
    Metadata, NewEvent, ReadModels, RecordedEvent, SigningKey, StreamWrite, SubjectFilter,
    UserSecrets,
};
use authlog_domain::event::{LoginFailed, LoginFailure};
use authlog_domain::{Event, EventType, StreamId};
use time::macros::datetime;
use time::OffsetDateTime;

/// Every storage port, as one store implements them.
pub trait Storage:
    EventStore + EventLog + ReadModels + KeyStore + Checkpoints + UserSecrets
{
}

impl<T: EventStore + EventLog + ReadModels + KeyStore + Checkpoints + UserSecrets> Storage for T {}

/// Appends `events` to `stream`, as a one-stream write.
pub async fn append(
    store: &(impl Storage + ?Sized),
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<Appended, AppendError> {
    store
        .append(vec![StreamWrite::new(stream, expected, events)])
        .await
}

/// Every event of the log, in order.
pub async fn everything(store: &(impl Storage + ?Sized)) -> Vec<RecordedEvent> {
    store.read_after(0, 10_000, &[]).await.unwrap()
}

/// Appends one event to each of `streams` streams (`s0`, `s1`, ...).
pub async fn one_event_in_each_of(store: &dyn Storage, streams: usize) {
    for n in 0..streams {
        append(
            store,
            stream(&format!("s{n}")),
            ExpectedVersion::Any,
            vec![event(n)],
        )
        .await
        .unwrap();
    }
}

pub const T0: OffsetDateTime = datetime!(2026-02-03 04:05:06.789 UTC);

pub fn event(n: usize) -> NewEvent {
    NewEvent {
        event: failure(n),
        subject: Some(format!("user{n}")),
        metadata: Metadata {
            client_addr: Some("127.0.0.1".into()),
            user_agent: Some("tests".into()),
            request_id: Some(format!("req-{n}")),
        },
        occurred_at: T0,
    }
}

/// A failed login; every other one names its reservation.
fn failure(n: usize) -> Event {
    Event::LoginFailed(LoginFailed {
        reason: LoginFailure::UnknownUser,
        attempt_id: (n % 2 == 1)
            .then(|| authlog_domain::AttemptId::from_uuid(uuid::Uuid::from_u128(n as u128))),
    })
}

fn stream(name: &str) -> StreamId {
    StreamId::from_stored(name.to_owned())
}

pub async fn appended_events_read_back_in_order_with_everything_they_carried(store: &dyn Storage) {
    let appended = append(
        store,
        stream("s"),
        ExpectedVersion::NoStream,
        vec![event(1), event(2)],
    )
    .await
    .unwrap();
    assert_eq!((appended.first, appended.position), (1, 2));

    let read = store.read_stream(stream("s")).await.unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0].event, event(1).event);
    assert_eq!(read[1].event, event(2).event);
    assert_eq!(read[0].stream_version, 1);
    assert_eq!(read[1].stream_version, 2);
    assert_eq!(read[0].subject.as_deref(), Some("user1"));
    assert_eq!(read[0].metadata, event(1).metadata);
    assert_eq!(read[0].recorded_at, T0);
}

pub async fn a_stream_that_does_not_exist_reads_empty(store: &dyn Storage) {
    assert!(store
        .read_stream(stream("nothing"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.head().await.unwrap(), 0);
}

pub async fn a_wrong_expected_version_is_a_typed_conflict_and_writes_nothing(store: &dyn Storage) {
    append(
        store,
        stream("s"),
        ExpectedVersion::NoStream,
        vec![event(1)],
    )
    .await
    .unwrap();

    let again = append(
        store,
        stream("s"),
        ExpectedVersion::NoStream,
        vec![event(2)],
    )
    .await;
    assert_eq!(
        again,
        Err(AppendError::Conflict {
            stream: stream("s"),
            expected: ExpectedVersion::NoStream,
            actual: 1
        })
    );
    let stale = append(
        store,
        stream("s"),
        ExpectedVersion::Exactly(0),
        vec![event(3)],
    )
    .await;
    assert!(matches!(
        stale,
        Err(AppendError::Conflict { actual: 1, .. })
    ));
    let ahead = append(
        store,
        stream("s"),
        ExpectedVersion::Exactly(5),
        vec![event(3)],
    )
    .await;
    assert!(matches!(
        ahead,
        Err(AppendError::Conflict { actual: 1, .. })
    ));

    assert_eq!(store.read_stream(stream("s")).await.unwrap().len(), 1);
    assert_eq!(store.head().await.unwrap(), 1);
}

pub async fn the_right_expected_version_appends(store: &dyn Storage) {
    append(
        store,
        stream("s"),
        ExpectedVersion::NoStream,
        vec![event(1)],
    )
    .await
    .unwrap();
    let appended = append(
        store,
        stream("s"),
        ExpectedVersion::Exactly(1),
        vec![event(2)],
    )
    .await
    .unwrap();
    assert_eq!(appended.position, 2);
    let any = append(store, stream("s"), ExpectedVersion::Any, vec![event(3)])
        .await
        .unwrap();
    assert_eq!(any.position, 3);
}

pub async fn of_twenty_concurrent_creations_of_one_stream_exactly_one_wins(
    store: Arc<dyn Storage>,
) {
    let attempts = (0..20).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            append(
                store.as_ref(),
                stream("user:alice"),
                ExpectedVersion::NoStream,
                vec![event(n)],
            )
            .await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let wins = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(AppendError::Conflict { .. }))))
        .count();
    assert_eq!((wins, conflicts), (1, 19));
    assert_eq!(
        store.read_stream(stream("user:alice")).await.unwrap().len(),
        1
    );
}

/// Registers `name` for the account numbered `n` (its id), claiming the name: what a
/// registration appends.
pub async fn register(
    store: &(impl Storage + ?Sized),
    n: u128,
    name: &str,
) -> Result<Appended, AppendError> {
    use authlog_application::ports::NameClaim;
    use authlog_domain::event::Registered;
    use authlog_domain::{PasswordHash, UserId, Username};
    let user_id = UserId::from_uuid(uuid::Uuid::from_u128(n));
    let username = Username::parse(name).unwrap();
    let stream = StreamId::user(user_id);
    let registered = NewEvent {
        event: Event::Registered(Registered {
            user_id,
            username: username.clone().into(),
            password_hash: PasswordHash::from_phc("$argon2id$x".into()).into(),
        }),
        subject: Some(user_id.to_string()),
        metadata: Metadata::default(),
        occurred_at: T0,
    };
    let claim = NameClaim::of(&username, user_id, stream.clone());
    let write = StreamWrite::new(stream, ExpectedVersion::NoStream, vec![registered]);
    store
        .append_with(vec![write], vec![Beside::ClaimName(claim)])
        .await
}

/// Twenty registrations at once of names that are one, or look alike: one claim wins, the
/// others are refused and write nothing; the winner is found by name and by id.
pub async fn of_twenty_concurrent_claims_of_alike_names_exactly_one_wins(store: Arc<dyn Storage>) {
    use authlog_domain::{UserId, Username};
    // One name in two spellings, and two look-alikes with a Cyrillic о.
    let names = ["root", "ROOT", "r\u{43e}ot", "r\u{43e}\u{43e}t"];
    let attempts = (0..20).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            register(store.as_ref(), 100 + n as u128, names[n % names.len()]).await
        })
    });
    let results = futures::future::join_all(attempts).await;
    let wins: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.as_ref().ok())
        .collect();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(AppendError::NameTaken))))
        .count();
    assert_eq!((wins.len(), refused), (1, 19), "{results:?}");
    // Nothing a loser wrote is in the log.
    assert_eq!(store.read_after(0, 100, &[]).await.unwrap().len(), 1);
    // Any of the four may have won (sealing its personal data first, each racer reaches the
    // writer in its own time); the winner's name is found, the others' are not.
    let winner = results.iter().position(|r| matches!(r, Ok(Ok(_)))).unwrap();
    let won = Username::parse(names[winner % names.len()]).unwrap();
    let found = store.find_account(won.canonical()).await.unwrap().unwrap();
    assert_eq!(
        found.user_id,
        UserId::from_uuid(uuid::Uuid::from_u128(100 + winner as u128))
    );
    assert_eq!(found.stream, StreamId::user(found.user_id));
    assert_eq!(found.registered_at, wins[0].first);
    assert_eq!(found.legacy_subject, None);
    assert_eq!(store.account(found.user_id).await.unwrap(), Some(found));
    for name in names {
        let canonical = Username::parse(name).unwrap().canonical().to_owned();
        if canonical != won.canonical() {
            assert_eq!(
                store.find_account(&canonical).await.unwrap(),
                None,
                "{name}"
            );
        }
    }
}

pub async fn positions_are_gap_free_and_increasing_across_concurrent_streams(
    store: Arc<dyn Storage>,
) {
    let writers = (0..50).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            append(
                store.as_ref(),
                stream(&format!("s{}", n % 5)),
                ExpectedVersion::Any,
                vec![event(n), event(n)],
            )
            .await
            .unwrap()
        })
    });
    futures::future::join_all(writers).await;

    let all = everything(store.as_ref()).await;
    let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=100).collect::<Vec<u64>>());
    assert_eq!(store.head().await.unwrap(), 100);
    for s in 0..5 {
        let versions: Vec<u64> = store
            .read_stream(stream(&format!("s{s}")))
            .await
            .unwrap()
            .iter()
            .map(|e| e.stream_version)
            .collect();
        assert_eq!(versions, (1..=20).collect::<Vec<u64>>());
    }
}

pub async fn read_all_pages_by_position(store: &dyn Storage) {
    for n in 0..5 {
        append(store, stream("s"), ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
    }
    let page = store.read_after(1, 2, &[]).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(store.read_after(5, 10, &[]).await.unwrap().is_empty());
}

pub async fn read_after_reads_only_the_types_asked_for(store: &dyn Storage) {
    append(
        store,
        stream("s"),
        ExpectedVersion::Any,
        vec![event(1), event(2)],
    )
    .await
    .unwrap();
    append(store, stream("t"), ExpectedVersion::Any, vec![event(3)])
        .await
        .unwrap();
    let failures = store
        .read_after(0, 10, &[EventType::LoginFailed])
        .await
        .unwrap();
    assert_eq!(failures.len(), 3);
    assert!(store
        .read_after(0, 10, &[EventType::Revoked])
        .await
        .unwrap()
        .is_empty());
}

/// What a newer release records, an older one reads without stopping: a type it does not know
/// comes back as `Unknown`, exactly as stored, and a follower reading by type never sees it.
pub async fn an_event_of_a_type_this_release_does_not_know_reads_back_as_unknown(
    store: &dyn Storage,
) {
    let future = Event::Unknown(authlog_domain::event::UnknownEvent {
        event_type: "AccountArchived".into(),
        schema_version: 1,
        payload: serde_json::json!({"user_id": "x", "reason": "spam"}),
    });
    append(
        store,
        stream("user:alice"),
        ExpectedVersion::Any,
        vec![NewEvent {
            event: future.clone(),
            ..event(1)
        }],
    )
    .await
    .unwrap();
    append(store, stream("s"), ExpectedVersion::Any, vec![event(2)])
        .await
        .unwrap();
    assert_eq!(
        store.read_stream(stream("user:alice")).await.unwrap()[0].event,
        future
    );
    assert_eq!(everything(store).await[0].event, future);
    let followed = store
        .read_after(0, 10, &[EventType::LoginFailed])
        .await
        .unwrap();
    assert_eq!(
        followed.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![2]
    );
}

/// A write across streams is all or nothing: one failed expectation writes none of it.
pub async fn an_append_across_streams_is_all_or_nothing(store: &dyn Storage) {
    append(store, stream("a"), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    let refused = store
        .append(vec![
            StreamWrite::new(stream("b"), ExpectedVersion::NoStream, vec![event(2)]),
            StreamWrite::new(stream("a"), ExpectedVersion::NoStream, vec![event(3)]),
        ])
        .await;
    assert!(matches!(
        refused,
        Err(AppendError::Conflict { ref stream, actual: 1, .. }) if stream.as_str() == "a"
    ));
    assert!(store.read_stream(stream("b")).await.unwrap().is_empty());
    assert_eq!(store.head().await.unwrap(), 1);

    let both = store
        .append(vec![
            StreamWrite::new(stream("b"), ExpectedVersion::NoStream, vec![event(2)]),
            StreamWrite::new(
                stream("a"),
                ExpectedVersion::Exactly(1),
                vec![event(3), event(4)],
            ),
        ])
        .await
        .unwrap();
    assert_eq!((both.first, both.position), (2, 4));
    assert_eq!(store.read_stream(stream("a")).await.unwrap().len(), 3);
}

/// A part without events is a condition: it writes nothing, and fails the write if its stream
/// moved.
/// A user's events with personal data in them: a registration from a browser, a login's
/// session, and a password check under the user's id.
pub fn a_users_life(user: authlog_domain::UserId) -> Vec<StreamWrite> {
    use authlog_domain::event::{LoggedIn, PasswordChanged, Registered};
    use authlog_domain::{PasswordHash, SessionId, TokenId, Username};
    let device = Metadata {
        client_addr: Some("192.0.2.77".into()),
        user_agent: Some("Erasable/1.0".into()),
        request_id: Some("req-1".into()),
    };
    let new = |event: Event| NewEvent {
        event,
        subject: Some(user.to_string()),
        metadata: device.clone(),
        occurred_at: T0,
    };
    let session = SessionId::from_uuid(uuid::Uuid::from_u128(900));
    vec![
        StreamWrite::new(
            StreamId::user(user),
            ExpectedVersion::NoStream,
            vec![
                new(Event::Registered(Registered {
                    user_id: user,
                    username: Username::parse("Zelda").unwrap().into(),
                    password_hash: PasswordHash::from_phc("$argon2id$zelda-first".into()).into(),
                })),
                new(Event::PasswordChanged(PasswordChanged {
                    user_id: user,
                    password_hash: PasswordHash::from_phc("$argon2id$zelda-second".into()).into(),
                })),
            ],
        ),
        StreamWrite::new(
            StreamId::session(session),
            ExpectedVersion::NoStream,
            vec![new(Event::LoggedIn(LoggedIn {
                session_id: session,
                user_id: user,
                refresh_token_id: TokenId::from_uuid(uuid::Uuid::from_u128(901)),
                expires_at: T0 + time::Duration::days(1),
            }))],
        ),
    ]
}

/// Erases the user of [`a_users_life`] (whose stream is at version 2), as the erase service
/// does: their sessions revoked and `UserErased`, with the key destroyed.
pub async fn erase(store: &dyn Storage, user: authlog_domain::UserId) -> Appended {
    use authlog_domain::event::{SessionsRevoked, UserErased};
    let new = |event: Event| NewEvent {
        event,
        subject: Some(user.to_string()),
        metadata: Metadata::default(),
        occurred_at: T0,
    };
    let erasure = StreamWrite::new(
        StreamId::user(user),
        ExpectedVersion::Exactly(2),
        vec![
            new(Event::SessionsRevoked(SessionsRevoked {
                user_id: user,
                reason: authlog_domain::RevocationReason::Admin,
                except: None,
            })),
            new(Event::UserErased(UserErased { user_id: user })),
        ],
    );
    store
        .append_with(vec![erasure], vec![Beside::EraseUser(user)])
        .await
        .unwrap()
}

pub async fn personal_data_reads_back_open_until_the_user_is_erased(store: &dyn Storage) {
    use authlog_domain::event::UserErased;
    use authlog_domain::{Personal, UserId, ERASED};
    let zelda = UserId::from_uuid(uuid::Uuid::from_u128(77));
    let appended = store.append(a_users_life(zelda)).await.unwrap();
    let before = everything(store).await;
    let Event::Registered(registered) = &before[0].event else {
        panic!("not a registration: {:?}", before[0].event);
    };
    assert_eq!(
        registered.username.known().map(|u| u.as_str()),
        Some("Zelda")
    );
    assert_eq!(
        before[2].metadata.user_agent.as_deref(),
        Some("Erasable/1.0")
    );
    store.wait_for(appended.position).await.unwrap();
    let sessions = store.live_sessions(zelda, T0).await.unwrap();
    assert_eq!(sessions[0].client_addr.as_deref(), Some("192.0.2.77"));

    let erasure = StreamWrite::new(
        StreamId::user(zelda),
        ExpectedVersion::Exactly(2),
        vec![NewEvent {
            event: Event::UserErased(UserErased { user_id: zelda }),
            subject: Some(zelda.to_string()),
            metadata: Metadata::default(),
            occurred_at: T0,
        }],
    );
    let erased = store
        .append_with(vec![erasure], vec![Beside::EraseUser(zelda)])
        .await
        .unwrap();
    let after = everything(store).await;
    // The same events, at the same positions, their personal fields erased; the rest as it was.
    assert_eq!(after.len(), before.len() + 1);
    for (was, is) in before.iter().zip(&after) {
        assert_eq!(
            (was.position, was.stream_id.clone()),
            (is.position, is.stream_id.clone())
        );
        assert_eq!(was.event.event_type(), is.event.event_type());
        assert_eq!(is.metadata.request_id.as_deref(), Some("req-1"));
        assert_eq!(is.metadata.client_addr.as_deref(), Some(ERASED));
        assert_eq!(is.metadata.user_agent.as_deref(), Some(ERASED));
    }
    match (&after[0].event, &after[1].event, &after[2].event) {
        (Event::Registered(r), Event::PasswordChanged(p), Event::LoggedIn(l)) => {
            assert_eq!(r.user_id, zelda);
            assert_eq!(r.username, Personal::Erased);
            assert_eq!(r.password_hash, Personal::Erased);
            assert_eq!(p.password_hash, Personal::Erased);
            assert_eq!(l.user_id, zelda);
        }
        other => panic!("{other:?}"),
    }
    store.wait_for(erased.position).await.unwrap();
    assert!(store.live_sessions(zelda, T0).await.unwrap().is_empty());
    // What the user's new events say about them is not kept: no key seals it any more.
    let late = StreamWrite::new(
        StreamId::session(authlog_domain::SessionId::from_uuid(uuid::Uuid::from_u128(
            900,
        ))),
        ExpectedVersion::Any,
        vec![NewEvent {
            event: Event::Revoked(authlog_domain::event::Revoked {
                session_id: authlog_domain::SessionId::from_uuid(uuid::Uuid::from_u128(900)),
                user_id: zelda,
                reason: authlog_domain::RevocationReason::Admin,
            }),
            subject: Some(zelda.to_string()),
            metadata: Metadata {
                client_addr: Some("192.0.2.78".into()),
                user_agent: None,
                request_id: None,
            },
            occurred_at: T0,
        }],
    );
    store.append(vec![late]).await.unwrap();
    let last = everything(store).await.pop().unwrap();
    assert_ne!(last.metadata.client_addr.as_deref(), Some("192.0.2.78"));
}

pub async fn a_part_without_events_is_a_condition_on_its_stream(store: &dyn Storage) {
    append(store, stream("user"), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    let guarded = |version| {
        vec![
            StreamWrite::new(stream("session"), ExpectedVersion::Any, vec![event(2)]),
            StreamWrite::unchanged(stream("user"), ExpectedVersion::Exactly(version)),
        ]
    };
    store.append(guarded(1)).await.unwrap();
    assert!(matches!(
        store.append(guarded(0)).await,
        Err(AppendError::Conflict { .. })
    ));
    assert_eq!(store.read_stream(stream("user")).await.unwrap().len(), 1);
    assert_eq!(store.read_stream(stream("session")).await.unwrap().len(), 1);
}

fn key(kid: &str) -> SigningKey {
    SigningKey {
        kid: kid.into(),
        algorithm: "EdDSA".into(),
        private_der: vec![1, 2, 3],
        public_key: vec![4, 5, 6],
        created_at: T0,
        revoked_at: None,
    }
}

/// A signing key and its event are one transaction: both, or (its expectation failing) neither.
pub async fn a_signing_key_is_stored_with_its_event_or_not_at_all(store: &dyn Storage) {
    let first = || StreamWrite::new(stream("keys"), ExpectedVersion::NoStream, vec![event(1)]);
    store.add_signing_key(key("a"), first()).await.unwrap();
    let lost = store.add_signing_key(key("b"), first()).await;
    assert!(matches!(lost, Err(AppendError::Conflict { .. })));
    assert_eq!(store.signing_keys().await.unwrap(), vec![key("a")]);
    assert_eq!(store.head().await.unwrap(), 1, "no event without its key");

    let mut later = key("c");
    later.created_at = T0 + time::Duration::seconds(1);
    let rotation = StreamWrite::new(stream("keys"), ExpectedVersion::Any, vec![event(2)]);
    store
        .add_signing_key(later.clone(), rotation)
        .await
        .unwrap();
    assert_eq!(store.signing_keys().await.unwrap(), vec![key("a"), later]);
}

/// A revocation erases the key's private key, puts the tombstone in place of its public key,
/// keeps its row in its place, and stores the replacement with the events, in one transaction;
/// a second revocation changes nothing but its own events and key.
pub async fn a_revoked_key_keeps_its_place_without_its_material_and_its_replacement_follows(
    store: &dyn Storage,
) {
    let first = StreamWrite::new(stream("keys"), ExpectedVersion::NoStream, vec![event(1)]);
    store.add_signing_key(key("a"), first).await.unwrap();
    let at = T0 + time::Duration::seconds(5);
    let mut replacement = key("b");
    replacement.created_at = at;
    let events = || {
        StreamWrite::new(
            stream("keys"),
            ExpectedVersion::Any,
            vec![event(2), event(3)],
        )
    };
    store
        .revoke_signing_key("a", at, vec![9; 32], replacement.clone(), events())
        .await
        .unwrap();

    let revoked = SigningKey {
        private_der: vec![],
        public_key: vec![9; 32],
        revoked_at: Some(at),
        ..key("a")
    };
    assert_eq!(
        store.signing_keys().await.unwrap(),
        vec![revoked.clone(), replacement.clone()]
    );
    assert_eq!(store.head().await.unwrap(), 3);

    let mut another = key("c");
    another.created_at = at + time::Duration::seconds(1);
    let later = at + time::Duration::seconds(1);
    store
        .revoke_signing_key("a", later, vec![8; 32], another.clone(), events())
        .await
        .unwrap();
    assert_eq!(
        store.signing_keys().await.unwrap(),
        vec![revoked, replacement, another],
        "the first revocation time stays"
    );
}

/// A key's private half is replaced only where it is still stored as expected: the sealing of a
/// key kept in clear never undoes a revocation that emptied it first.
pub async fn a_private_key_is_replaced_only_where_it_is_still_as_expected(store: &dyn Storage) {
    let first = StreamWrite::new(stream("keys"), ExpectedVersion::NoStream, vec![event(1)]);
    store.add_signing_key(key("a"), first).await.unwrap();
    assert!(store
        .replace_private_key("a", vec![1, 2, 3], vec![7, 7])
        .await
        .unwrap());
    assert!(!store
        .replace_private_key("a", vec![1, 2, 3], vec![8, 8])
        .await
        .unwrap());
    assert!(!store
        .replace_private_key("b", vec![1, 2, 3], vec![8, 8])
        .await
        .unwrap());
    let sealed = SigningKey {
        private_der: vec![7, 7],
        ..key("a")
    };
    assert_eq!(store.signing_keys().await.unwrap(), vec![sealed]);
}

pub async fn read_stream_tail_answers_the_last_events_oldest_first(store: &dyn Storage) {
    for n in 0..5 {
        append(store, stream("s"), ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
    }
    let tail = store.read_stream_tail(stream("s"), 2).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert_eq!(
        store.read_stream_tail(stream("s"), 10).await.unwrap().len(),
        5
    );
    assert!(store
        .read_stream_tail(stream("none"), 3)
        .await
        .unwrap()
        .is_empty());
}

pub async fn a_snapshot_is_kept_unless_a_newer_one_is_and_the_events_after_it_read_back(
    store: &dyn Storage,
) {
    use authlog_application::ports::Snapshot;
    for n in 0..5 {
        append(store, stream("s"), ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
    }
    assert_eq!(store.snapshot(stream("s")).await.unwrap(), None);
    let at = |version: u64| Snapshot {
        version,
        state: format!("folded to {version}"),
    };
    store.keep_snapshot(stream("s"), at(3)).await.unwrap();
    assert_eq!(store.snapshot(stream("s")).await.unwrap(), Some(at(3)));
    // An older one, from a slower writer, does not replace it; a newer one does.
    store.keep_snapshot(stream("s"), at(2)).await.unwrap();
    assert_eq!(store.snapshot(stream("s")).await.unwrap(), Some(at(3)));
    store.keep_snapshot(stream("s"), at(4)).await.unwrap();
    assert_eq!(store.snapshot(stream("s")).await.unwrap(), Some(at(4)));
    assert_eq!(store.snapshot(stream("other")).await.unwrap(), None);

    let versions = |events: Vec<authlog_application::ports::RecordedEvent>| {
        events.iter().map(|e| e.stream_version).collect::<Vec<_>>()
    };
    let after = |version, limit| store.read_stream_after(stream("s"), version, limit);
    assert_eq!(versions(after(3, 10).await.unwrap()), [4, 5]);
    assert_eq!(versions(after(0, 2).await.unwrap()), [1, 2]);
    assert!(after(5, 10).await.unwrap().is_empty());
}

pub async fn a_subscriber_checkpoint_is_leased_to_one_holder_at_a_time_and_moved_by_it(
    store: &dyn Storage,
) {
    let minutes = |m| T0 + time::Duration::minutes(m);
    // A checkpoint not kept yet starts at 0, for whoever asks first.
    assert_eq!(
        store
            .lease("mail", 1, "a", minutes(0), minutes(1))
            .await
            .unwrap(),
        Some(0)
    );
    assert!(store.advance("mail", "a", 7).await.unwrap());
    // Another holder gets nothing while the lease lasts, and cannot move it.
    assert_eq!(
        store
            .lease("mail", 1, "b", minutes(0), minutes(1))
            .await
            .unwrap(),
        None
    );
    assert!(!store.advance("mail", "b", 9).await.unwrap());
    // The holder renews it, and finds its position.
    assert_eq!(
        store
            .lease("mail", 1, "a", minutes(0), minutes(2))
            .await
            .unwrap(),
        Some(7)
    );
    // Once it lapses, another takes it over from the checkpoint; the first can no longer move it.
    assert_eq!(
        store
            .lease("mail", 1, "b", minutes(3), minutes(4))
            .await
            .unwrap(),
        Some(7)
    );
    assert!(!store.advance("mail", "a", 8).await.unwrap());
    // A new version of the subscriber starts again from 0.
    assert_eq!(
        store
            .lease("mail", 2, "b", minutes(3), minutes(4))
            .await
            .unwrap(),
        Some(0)
    );
    let kept = store.checkpoints().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (
            kept[0].name.as_str(),
            kept[0].position,
            kept[0].holder.as_deref()
        ),
        ("mail", 0, Some("b"))
    );
    assert_eq!(kept[0].lease_until, Some(minutes(4)));
}

/// A user's secrets are written only with events, read back open, replaced and removed by id,
/// and gone with the user.
pub async fn a_users_secrets_commit_with_events_read_back_open_and_go_with_the_user(
    store: &dyn Storage,
) {
    use authlog_application::ports::{SecretKind, UserSecret};
    let alice = authlog_domain::UserId::from_uuid(uuid::Uuid::from_u128(41));
    let secret = |id: &str, bytes: &[u8]| UserSecret {
        user_id: alice,
        kind: SecretKind::RecoveryCode,
        id: id.to_owned(),
        secret: bytes.to_vec(),
    };
    let put = |s: UserSecret| {
        let write = StreamWrite::new(stream("s"), ExpectedVersion::Any, vec![event(1)]);
        store.append_with(vec![write], vec![Beside::PutSecret(s)])
    };
    put(secret("a", b"first")).await.unwrap();
    put(secret("b", b"second")).await.unwrap();
    put(secret("a", b"replaced")).await.unwrap();
    let read = store
        .secrets(alice, SecretKind::RecoveryCode)
        .await
        .unwrap();
    assert_eq!(read, vec![secret("a", b"replaced"), secret("b", b"second")]);
    assert!(store
        .secrets(alice, SecretKind::Totp)
        .await
        .unwrap()
        .is_empty());
    // With a conflicting append, nothing beside it is written either.
    let stale = StreamWrite::new(stream("s"), ExpectedVersion::Exactly(1), vec![event(2)]);
    let refused = store
        .append_with(vec![stale], vec![Beside::PutSecret(secret("c", b"never"))])
        .await;
    assert!(matches!(refused, Err(AppendError::Conflict { .. })));
    let removal = Beside::DeleteSecret {
        user_id: alice,
        kind: SecretKind::RecoveryCode,
        id: "b".into(),
    };
    let write = StreamWrite::new(stream("s"), ExpectedVersion::Any, vec![event(3)]);
    store.append_with(vec![write], vec![removal]).await.unwrap();
    assert_eq!(
        store
            .secrets(alice, SecretKind::RecoveryCode)
            .await
            .unwrap(),
        vec![secret("a", b"replaced")]
    );
    // Erased: nothing of theirs reads back, and nothing more can be sealed for them.
    let erased = NewEvent {
        event: Event::UserErased(authlog_domain::event::UserErased { user_id: alice }),
        subject: Some(alice.to_string()),
        metadata: Metadata::default(),
        occurred_at: T0,
    };
    let erasure = StreamWrite::new(StreamId::user(alice), ExpectedVersion::Any, vec![erased]);
    store
        .append_with(vec![erasure], vec![Beside::EraseUser(alice)])
        .await
        .unwrap();
    assert!(store
        .secrets(alice, SecretKind::RecoveryCode)
        .await
        .unwrap()
        .is_empty());
    assert!(put(secret("d", b"after")).await.is_err());
}

pub async fn read_stream_edges_answers_the_first_and_the_last_events(store: &dyn Storage) {
    let versions = |events: Vec<authlog_application::ports::RecordedEvent>| {
        events.iter().map(|e| e.stream_version).collect::<Vec<_>>()
    };
    assert!(store
        .read_stream_edges(stream("s"), 2)
        .await
        .unwrap()
        .is_empty());
    append(store, stream("s"), ExpectedVersion::Any, vec![event(0)])
        .await
        .unwrap();
    assert_eq!(
        versions(store.read_stream_edges(stream("s"), 2).await.unwrap()),
        vec![1]
    );
    for n in 1..6 {
        append(store, stream("s"), ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
    }
    let edges = store.read_stream_edges(stream("s"), 2).await.unwrap();
    assert_eq!(versions(edges.clone()), vec![1, 5, 6]);
    assert_eq!(edges[0].event, event(0).event);
    assert_eq!(edges[2].event, event(5).event);
    assert_eq!(
        versions(store.read_stream_edges(stream("s"), 10).await.unwrap()),
        vec![1, 2, 3, 4, 5, 6]
    );
}

/// Two stores on one database (two instances, or a server and a command line) each bring the
/// read models up to date after their own appends, at the same time: neither ever takes a
/// checkpoint the other just moved for one ahead of the log (a false halt).
pub async fn two_projectors_on_one_database_never_halt_each_other(
    a: Arc<dyn Storage>,
    b: Arc<dyn Storage>,
) {
    let workers = (0..16u128).map(|worker| {
        let store = if worker % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        tokio::spawn(async move {
            for round in 0..25u128 {
                models::log_in(store.as_ref(), 1 + worker * 100 + round, 1).await;
                let head = store.head().await.unwrap();
                store.catch_up().await.unwrap();
                store.wait_for(head).await.unwrap();
            }
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker.unwrap();
    }
    for store in [a, b] {
        let halted: Vec<_> = store
            .status()
            .await
            .unwrap()
            .into_iter()
            .filter_map(|p| p.halted)
            .collect();
        assert!(halted.is_empty(), "{halted:?}");
    }
}

/// Two stores (two writers, as two processes would have) on one database: their appends share
/// one gap-free order, and a creation race between them has one winner.
pub async fn two_writers_share_one_gap_free_order(a: Arc<dyn Storage>, b: Arc<dyn Storage>) {
    let writers = (0..40).map(|n| {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            append(
                store.as_ref(),
                stream(&format!("s{}", n % 4)),
                ExpectedVersion::Any,
                vec![event(n)],
            )
            .await
            .unwrap()
        })
    });
    futures::future::join_all(writers).await;
    let positions: Vec<u64> = everything(a.as_ref())
        .await
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, (1..=40).collect::<Vec<u64>>());

    let racers = (0..10).map(|n| {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            append(
                store.as_ref(),
                stream("user:contested"),
                ExpectedVersion::NoStream,
                vec![event(n)],
            )
            .await
        })
    });
    let results = futures::future::join_all(racers).await;
    let wins = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(wins, 1);
}

pub async fn query_filters_by_subject_type_time_and_pages_by_position(store: &dyn Storage) {
    use authlog_application::ports::AuditFilter;
    let mut early = event(1);
    early.occurred_at = T0 - time::Duration::hours(2);
    append(
        store,
        stream("a"),
        ExpectedVersion::Any,
        vec![early, event(2), event(1)],
    )
    .await
    .unwrap();
    append(
        store,
        stream("b"),
        ExpectedVersion::Any,
        vec![event(1), event(3)],
    )
    .await
    .unwrap();
    let positions = |events: Vec<authlog_application::ports::RecordedEvent>| {
        events.iter().map(|e| e.position).collect::<Vec<_>>()
    };
    let all = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };

    let by_user = AuditFilter {
        subject: Some(SubjectFilter {
            ids: vec!["user1".into()],
            ..SubjectFilter::default()
        }),
        ..all.clone()
    };
    assert_eq!(
        positions(store.query(by_user.clone()).await.unwrap()),
        vec![1, 3, 4]
    );
    let paged = AuditFilter {
        after: 1,
        limit: 1,
        ..by_user.clone()
    };
    assert_eq!(positions(store.query(paged).await.unwrap()), vec![3]);
    // By name from a position on, beside an id; and nobody at all.
    let by_name_from = AuditFilter {
        subject: Some(SubjectFilter {
            ids: vec!["user2".into()],
            names: vec!["user1".into()],
            names_from: 3,
        }),
        ..all.clone()
    };
    let by_user2 = AuditFilter {
        subject: Some(SubjectFilter {
            ids: vec!["user2".into()],
            ..SubjectFilter::default()
        }),
        ..all.clone()
    };
    let mut expected = positions(store.query(by_user2).await.unwrap());
    expected.extend([3, 4]);
    expected.sort_unstable();
    assert_eq!(
        positions(store.query(by_name_from).await.unwrap()),
        expected
    );
    let nobody = AuditFilter {
        subject: Some(SubjectFilter::default()),
        ..all.clone()
    };
    assert!(store.query(nobody).await.unwrap().is_empty());

    let by_type = AuditFilter {
        types: vec!["LoginFailed".into(), "Revoked".into()],
        ..all.clone()
    };
    assert_eq!(store.query(by_type).await.unwrap().len(), 5);
    let none = AuditFilter {
        types: vec!["Revoked".into()],
        ..all.clone()
    };
    assert!(store.query(none).await.unwrap().is_empty());

    let recent = AuditFilter {
        since: Some(T0 - time::Duration::hours(1)),
        ..all.clone()
    };
    assert_eq!(
        positions(store.query(recent).await.unwrap()),
        vec![2, 3, 4, 5]
    );
    let old = AuditFilter {
        until: Some(T0 - time::Duration::hours(1)),
        ..all
    };
    assert_eq!(positions(store.query(old).await.unwrap()), vec![1]);
}

// The read models.

mod models {
    use super::*;
    use authlog_application::ports::{UserQuery, UserStatus};
    use authlog_domain::event::{
        LoggedIn, Refreshed, Registered, Revoked, RoleGranted, SessionsRevoked,
    };
    use authlog_domain::{
        PasswordHash, RevocationReason, Role, SessionId, TokenId, UserId, Username,
    };
    use time::Duration;

    pub fn user(n: u128) -> UserId {
        UserId::from_uuid(uuid::Uuid::from_u128(n))
    }
    pub fn sid(n: u128) -> SessionId {
        SessionId::from_uuid(uuid::Uuid::from_u128(1000 + n))
    }

    fn at(event: Event, when: OffsetDateTime) -> NewEvent {
        NewEvent {
            event,
            subject: None,
            metadata: Metadata {
                client_addr: Some("203.0.113.7".into()),
                user_agent: Some("Firefox/140".into()),
                request_id: None,
            },
            occurred_at: when,
        }
    }

    /// Session `n` of user 1 opened at `T0 + n minutes`, its refresh token expiring `days` later.
    pub async fn log_in(store: &dyn Storage, n: u128, days: i64) {
        let opened = T0 + Duration::minutes(n as i64);
        let event = Event::LoggedIn(LoggedIn {
            session_id: sid(n),
            user_id: user(1),
            refresh_token_id: TokenId::from_uuid(uuid::Uuid::from_u128(n)),
            expires_at: opened + Duration::days(days),
        });
        super::append(
            store,
            stream(&format!("session:{n}")),
            ExpectedVersion::NoStream,
            vec![at(event, opened)],
        )
        .await
        .unwrap();
    }

    async fn record(store: &dyn Storage, name: &str, event: Event, when: OffsetDateTime) -> u64 {
        super::append(
            store,
            stream(name),
            ExpectedVersion::Any,
            vec![at(event, when)],
        )
        .await
        .unwrap()
        .position
    }

    /// Every session of user 1 opened so far but session `spared` ends (`SessionsRevoked`).
    pub async fn sessions_revoked_after(store: &dyn Storage, spared: u128) {
        record(
            store,
            "user:alice",
            Event::SessionsRevoked(SessionsRevoked {
                user_id: user(1),
                reason: RevocationReason::LogoutAll,
                except: Some(sid(spared)),
            }),
            T0 + Duration::minutes(30),
        )
        .await;
    }

    fn ids(sessions: &[authlog_application::ports::SessionView]) -> Vec<SessionId> {
        sessions.iter().map(|s| s.id).collect()
    }

    pub async fn live_sessions_show_their_device_and_leave_out_revoked_and_expired_ones(
        store: &dyn Storage,
    ) {
        log_in(store, 1, 30).await;
        log_in(store, 2, 30).await;
        log_in(store, 3, 1).await;
        let refreshed_at = T0 + Duration::hours(1);
        record(
            store,
            "session:1",
            Event::Refreshed(Refreshed {
                session_id: sid(1),
                refresh_token_id: TokenId::from_uuid(uuid::Uuid::from_u128(11)),
                generation: 2,
                expires_at: refreshed_at + Duration::days(30),
            }),
            refreshed_at,
        )
        .await;
        let position = record(
            store,
            "session:2",
            Event::Revoked(Revoked {
                session_id: sid(2),
                user_id: user(1),
                reason: RevocationReason::Logout,
            }),
            refreshed_at,
        )
        .await;

        let now = T0 + Duration::days(2);
        let live = store.live_sessions(user(1), now).await.unwrap();
        assert_eq!(ids(&live), vec![sid(1)], "2 revoked, 3 expired");
        assert_eq!(live[0].generation, 2);
        assert_eq!(live[0].created_at, T0 + Duration::minutes(1));
        assert_eq!(live[0].last_used_at, refreshed_at);
        assert_eq!(live[0].expires_at, refreshed_at + Duration::days(30));
        assert_eq!(live[0].user_agent.as_deref(), Some("Firefox/140"));
        assert_eq!(live[0].client_addr.as_deref(), Some("203.0.113.7"));
        assert!(store.live_sessions(user(2), now).await.unwrap().is_empty());

        let revoked = store.revocations_after(0).await.unwrap();
        assert_eq!(revoked.len(), 1);
        assert_eq!(
            (
                revoked[0].session_id,
                revoked[0].reason,
                revoked[0].position
            ),
            (sid(2), RevocationReason::Logout, position)
        );
        assert_eq!(revoked[0].revoked_at, refreshed_at);
    }

    pub async fn sessions_revoked_ends_the_sessions_opened_before_it_but_the_spared_one(
        store: &dyn Storage,
    ) {
        log_in(store, 1, 30).await;
        log_in(store, 2, 30).await;
        let when = T0 + Duration::hours(1);
        let position = record(
            store,
            "user:alice",
            Event::SessionsRevoked(SessionsRevoked {
                user_id: user(1),
                reason: RevocationReason::LogoutAll,
                except: Some(sid(2)),
            }),
            when,
        )
        .await;
        log_in(store, 3, 30).await;

        let live = store.live_sessions(user(1), when).await.unwrap();
        assert_eq!(ids(&live), vec![sid(2), sid(3)]);
        let revoked = store.revocations_after(0).await.unwrap();
        assert_eq!(revoked.len(), 1);
        assert_eq!(
            (
                revoked[0].session_id,
                revoked[0].reason,
                revoked[0].position
            ),
            (sid(1), RevocationReason::LogoutAll, position)
        );
        assert!(store.revocations_after(position).await.unwrap().is_empty());
    }

    pub async fn recent_revocations_are_those_recorded_since_a_time(store: &dyn Storage) {
        for n in 1..=3 {
            log_in(store, n, 30).await;
            record(
                store,
                &format!("session:{n}"),
                Event::Revoked(Revoked {
                    session_id: sid(n),
                    user_id: user(1),
                    reason: RevocationReason::Admin,
                }),
                T0 + Duration::hours(n as i64),
            )
            .await;
        }
        let recent = store
            .revocations_since(T0 + Duration::hours(2))
            .await
            .unwrap();
        assert_eq!(recent[0].revoked_at, T0 + Duration::hours(2));
        let ids: Vec<SessionId> = recent.iter().map(|r| r.session_id).collect();
        assert_eq!(ids, vec![sid(2), sid(3)]);
    }

    pub async fn the_directory_lists_users_by_registration_with_roles_and_last_login(
        store: &dyn Storage,
    ) {
        for (n, name) in [(1, "alice"), (2, "Albert"), (3, "bob")] {
            record(
                store,
                &format!("user:{n}"),
                Event::Registered(Registered {
                    user_id: user(n),
                    username: Username::parse(name).unwrap().into(),
                    password_hash: PasswordHash::from_phc("$argon2id$x".into()).into(),
                }),
                T0,
            )
            .await;
        }
        record(
            store,
            "user:1",
            Event::RoleGranted(RoleGranted {
                user_id: user(1),
                role: Role::admin(),
            }),
            T0,
        )
        .await;
        log_in(store, 1, 30).await;

        let all = store
            .users(UserQuery {
                limit: 10,
                ..UserQuery::default()
            })
            .await
            .unwrap();
        let names: Vec<&str> = all.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(names, vec!["alice", "Albert", "bob"]);
        assert_eq!(all[0].roles, vec![Role::admin()]);
        assert_eq!(all[0].status, UserStatus::Active);
        assert_eq!(all[0].last_login_at, Some(T0 + Duration::minutes(1)));
        assert_eq!(all[1].last_login_at, None);

        let al = store
            .users(UserQuery {
                prefix: Some("al".into()),
                limit: 10,
                ..UserQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(al.len(), 2, "case-folded prefix");
        let page = store
            .users(UserQuery {
                after: Some(user(1)),
                limit: 1,
                ..UserQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page[0].user_id, user(2));
    }

    /// A prefix matching few names (read from the name index) and one matching more than a
    /// thousand (the walk in id order) page alike: every match once, in id order.
    pub async fn a_narrow_and_a_wide_prefix_page_alike(store: &dyn Storage) {
        let name = |n: u128| {
            if n % 100 == 0 {
                format!("narrow-{n}")
            } else {
                format!("wide-{n}")
            }
        };
        let writes = (1..=1_100u128)
            .map(|n| {
                StreamWrite::new(
                    stream(&format!("user:{n}")),
                    ExpectedVersion::Any,
                    vec![at(
                        Event::Registered(Registered {
                            user_id: user(n),
                            username: Username::parse(&name(n)).unwrap().into(),
                            password_hash: PasswordHash::from_phc("$argon2id$x".into()).into(),
                        }),
                        T0,
                    )],
                )
            })
            .collect();
        store.append(writes).await.unwrap();

        // Every page of `prefix`, `limit` at a time, followed by `after`.
        let pages = |prefix: &'static str, limit: u32| async move {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = store
                    .users(UserQuery {
                        prefix: Some(prefix.into()),
                        after,
                        limit,
                        ..UserQuery::default()
                    })
                    .await
                    .unwrap();
                seen.extend(page.iter().map(|u| u.user_id));
                if page.len() < limit as usize {
                    return seen;
                }
                after = page.last().map(|u| u.user_id);
            }
        };
        let wide: Vec<UserId> = (1..=1_100).filter(|n| n % 100 != 0).map(user).collect();
        assert_eq!(pages("wide-", 100).await, wide);
        let narrow: Vec<UserId> = (1..=11).map(|n| user(n * 100)).collect();
        assert_eq!(pages("narrow-", 4).await, narrow);
        assert_eq!(pages("narrow-10", 100).await, vec![user(100), user(1_000)]);
        assert_eq!(
            pages("w", 1_000).await,
            wide,
            "one letter: the wide walk too"
        );
        assert!(pages("nobody", 100).await.is_empty());
    }

    pub async fn every_projection_reaches_the_head(store: &dyn Storage) {
        log_in(store, 1, 30).await;
        let head = store.head().await.unwrap();
        store.wait_for(head).await.unwrap();
        // Reads wait for the eager ones; the analysts' table follows within a pass or two of
        // the subscriber runner, which catches up as below on every wake.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let status = loop {
            store.catch_up().await.unwrap();
            let status = store.status().await.unwrap();
            if status.iter().all(|p| p.position == head) || std::time::Instant::now() > deadline {
                break status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        assert!(status.len() >= 2, "{status:?}");
        for projection in status {
            assert_eq!(projection.position, head, "{}", projection.name);
        }
    }
}

pub use models::*;

/// An event whose subject is `subject` and whose payload and metadata hold text beyond ASCII,
/// so that every field's length in bytes differs from its length in characters.
fn worded(n: usize, subject: Option<&str>) -> NewEvent {
    NewEvent {
        event: Event::SigningKeyRotated(authlog_domain::event::SigningKeyRotated {
            kid: format!("ünïcødé 名前 {n} 🙂"),
            algorithm: "EdDSA".into(),
            public_key: "clé".into(),
        }),
        subject: subject.map(str::to_owned),
        metadata: Metadata {
            client_addr: Some("::1".into()),
            user_agent: Some("navigateur « spécial » ✓".into()),
            request_id: None,
        },
        occurred_at: T0,
    }
}

/// Requests queued behind one that waits for the write lock, all of them started by
/// [`queue_behind_the_lock`]; [`check_the_queue`] reads what became of them.
pub type Queued = tokio::task::JoinHandle<Vec<Result<Appended, AppendError>>>;

/// Starts, in order, requests of every shape while the caller holds the database's write lock:
/// the first goes alone into the writer and waits for the lock; the rest queue behind it, so
/// that the writer takes them into one batch once the lock is released. Within that batch they
/// depend on each other: a stream one request creates, the next finds.
pub async fn queue_behind_the_lock(store: Arc<dyn Storage>) -> Queued {
    let first = {
        let store = store.clone();
        tokio::spawn(async move {
            append(
                store.as_ref(),
                stream("x"),
                ExpectedVersion::NoStream,
                vec![event(0)],
            )
            .await
        })
    };
    // Let the first reach the writer, which then waits for the lock with it alone.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let requests = vec![
        // 1: creates y with two events, a subject beyond ASCII.
        vec![StreamWrite::new(
            stream("y"),
            ExpectedVersion::NoStream,
            vec![worded(1, Some("ünïcødé")), worded(2, Some("名前"))],
        )],
        // 2: expects y not to exist, but request 1 just made it: a conflict, nothing written.
        vec![StreamWrite::new(
            stream("y"),
            ExpectedVersion::NoStream,
            vec![worded(3, None)],
        )],
        // 3: y as request 1 left it, and a new stream z.
        vec![
            StreamWrite::new(
                stream("y"),
                ExpectedVersion::Exactly(2),
                vec![worded(4, None)],
            ),
            StreamWrite::new(
                stream("z"),
                ExpectedVersion::NoStream,
                vec![worded(5, Some(""))],
            ),
        ],
        // 4: a condition on x (the first request's stream) and a new stream w.
        vec![
            StreamWrite::unchanged(stream("x"), ExpectedVersion::Exactly(1)),
            StreamWrite::new(
                stream("w"),
                ExpectedVersion::NoStream,
                vec![worded(6, None)],
            ),
        ],
        // 5: z is at 1, not 5: a conflict, and its write to v is not made either.
        vec![
            StreamWrite::new(stream("v"), ExpectedVersion::Any, vec![worded(7, None)]),
            StreamWrite::new(
                stream("z"),
                ExpectedVersion::Exactly(5),
                vec![worded(8, None)],
            ),
        ],
        // 6: v, which request 5 did not write.
        vec![StreamWrite::new(
            stream("v"),
            ExpectedVersion::Any,
            vec![worded(9, None)],
        )],
    ];
    let rest = tokio::spawn(async move {
        // join_all polls them in order, so they reach the writer's queue in order.
        futures::future::join_all(requests.into_iter().map(|writes| {
            let store = store.clone();
            async move { store.append(writes).await }
        }))
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tokio::spawn(async move {
        let mut outcomes = vec![first.await.unwrap()];
        outcomes.extend(rest.await.unwrap());
        outcomes
    })
}

/// What the requests of [`queue_behind_the_lock`] must have become once the lock is released.
pub async fn check_the_queue(store: &dyn Storage, queued: Queued) {
    let outcomes = queued.await.unwrap();
    let appended = |first, position| Ok(Appended { first, position });
    assert_eq!(outcomes[0], appended(1, 1));
    assert_eq!(outcomes[1], appended(2, 3));
    assert!(matches!(
        &outcomes[2],
        Err(AppendError::Conflict { stream, expected: ExpectedVersion::NoStream, actual: 2 })
            if stream.as_str() == "y"
    ));
    assert_eq!(outcomes[3], appended(4, 5));
    assert_eq!(outcomes[4], appended(6, 6));
    assert!(matches!(
        &outcomes[5],
        Err(AppendError::Conflict { stream, expected: ExpectedVersion::Exactly(5), actual: 1 })
            if stream.as_str() == "z"
    ));
    assert_eq!(outcomes[6], appended(7, 7));

    let log = everything(store).await;
    let rows: Vec<(u64, &str, u64)> = log
        .iter()
        .map(|e| (e.position, e.stream_id.as_str(), e.stream_version))
        .collect();
    assert_eq!(
        rows,
        [
            (1, "x", 1),
            (2, "y", 1),
            (3, "y", 2),
            (4, "y", 3),
            (5, "z", 1),
            (6, "w", 1),
            (7, "v", 1)
        ]
    );
    assert_eq!(log[1].subject.as_deref(), Some("ünïcødé"));
    assert_eq!(log[4].subject.as_deref(), Some(""));
    assert_eq!(log[6].subject, None);
}
