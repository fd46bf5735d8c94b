//! Behaviour every event store must have, whatever the database. Each function takes a fresh,
//! empty store.

use std::sync::Arc;

use authlog_application::ports::{AppendError, EventStore, ExpectedVersion, Metadata, NewEvent};
use authlog_domain::event::{LoginFailed, LoginFailure};
use authlog_domain::{Event, StreamId};
use time::macros::datetime;
use time::OffsetDateTime;

pub const T0: OffsetDateTime = datetime!(2026-02-03 04:05:06.789 UTC);

pub fn event(n: usize) -> NewEvent {
    NewEvent {
        event: Event::LoginFailed(LoginFailed {
            username: format!("user{n}"),
            reason: LoginFailure::UnknownUser,
        }),
        subject: Some(format!("user{n}")),
        metadata: Metadata {
            client_addr: Some("127.0.0.1".into()),
            user_agent: Some("tests".into()),
            request_id: Some(format!("req-{n}")),
        },
        occurred_at: T0,
    }
}

/// A registration, password hash and all, as the user stream holds it.
pub fn registered() -> NewEvent {
    use authlog_domain::event::Registered;
    use authlog_domain::{PasswordHash, UserId, Username};
    NewEvent {
        event: Event::Registered(Registered {
            user_id: UserId::from_uuid(uuid::Uuid::from_u128(1)),
            username: Username::parse("alice").unwrap(),
            password_hash: PasswordHash::from_phc(
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            ),
        }),
        subject: Some("alice".into()),
        metadata: Metadata::default(),
        occurred_at: T0,
    }
}

fn stream(name: &str) -> StreamId {
    StreamId::from_stored(name.to_owned())
}

pub async fn appended_events_read_back_in_order_with_everything_they_carried(
    store: &dyn EventStore,
) {
    let appended = store
        .append(
            stream("s"),
            ExpectedVersion::NoStream,
            vec![event(1), event(2)],
        )
        .await
        .unwrap();
    assert_eq!(appended.stream_version, 2);
    assert_eq!(appended.position, 2);

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

pub async fn a_stream_that_does_not_exist_reads_empty(store: &dyn EventStore) {
    assert!(store
        .read_stream(stream("nothing"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.head().await.unwrap(), 0);
}

pub async fn a_wrong_expected_version_is_a_typed_conflict_and_writes_nothing(
    store: &dyn EventStore,
) {
    store
        .append(stream("s"), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();

    let again = store
        .append(stream("s"), ExpectedVersion::NoStream, vec![event(2)])
        .await;
    assert_eq!(
        again,
        Err(AppendError::Conflict {
            stream: stream("s"),
            expected: ExpectedVersion::NoStream,
            actual: 1
        })
    );
    let stale = store
        .append(stream("s"), ExpectedVersion::Exactly(0), vec![event(3)])
        .await;
    assert!(matches!(
        stale,
        Err(AppendError::Conflict { actual: 1, .. })
    ));
    let ahead = store
        .append(stream("s"), ExpectedVersion::Exactly(5), vec![event(3)])
        .await;
    assert!(matches!(
        ahead,
        Err(AppendError::Conflict { actual: 1, .. })
    ));

    assert_eq!(store.read_stream(stream("s")).await.unwrap().len(), 1);
    assert_eq!(store.head().await.unwrap(), 1);
}

pub async fn the_right_expected_version_appends(store: &dyn EventStore) {
    store
        .append(stream("s"), ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let appended = store
        .append(stream("s"), ExpectedVersion::Exactly(1), vec![event(2)])
        .await
        .unwrap();
    assert_eq!(appended.stream_version, 2);
    let any = store
        .append(stream("s"), ExpectedVersion::Any, vec![event(3)])
        .await
        .unwrap();
    assert_eq!(any.stream_version, 3);
}

pub async fn of_twenty_concurrent_creations_of_one_stream_exactly_one_wins(
    store: Arc<dyn EventStore>,
) {
    let attempts = (0..20).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(
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

pub async fn positions_are_gap_free_and_increasing_across_concurrent_streams(
    store: Arc<dyn EventStore>,
) {
    let writers = (0..50).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(
                    stream(&format!("s{}", n % 5)),
                    ExpectedVersion::Any,
                    vec![event(n), event(n)],
                )
                .await
                .unwrap()
        })
    });
    futures::future::join_all(writers).await;

    let all = store.read_all(0, 1_000).await.unwrap();
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

pub async fn read_all_pages_by_position(store: &dyn EventStore) {
    for n in 0..5 {
        store
            .append(stream("s"), ExpectedVersion::Any, vec![event(n)])
            .await
            .unwrap();
    }
    let page = store.read_all(1, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(store.read_all(5, 10).await.unwrap().is_empty());
}

pub async fn read_type_since_filters_by_type_and_time(store: &dyn EventStore) {
    let mut old = event(1);
    old.occurred_at = T0 - time::Duration::hours(1);
    store
        .append(stream("s"), ExpectedVersion::Any, vec![old, event(2)])
        .await
        .unwrap();
    let recent = store.read_type_since("LoginFailed", T0).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].position, 2);
    assert!(store
        .read_type_since("Revoked", T0 - time::Duration::days(1))
        .await
        .unwrap()
        .is_empty());
}

pub async fn read_stream_tail_answers_the_last_events_oldest_first(store: &dyn EventStore) {
    for n in 0..5 {
        store
            .append(stream("s"), ExpectedVersion::Any, vec![event(n)])
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

pub async fn read_stream_edges_answers_the_first_and_the_last_events(store: &dyn EventStore) {
    let versions = |events: Vec<authlog_application::ports::RecordedEvent>| {
        events.iter().map(|e| e.stream_version).collect::<Vec<_>>()
    };
    assert!(store
        .read_stream_edges(stream("s"), 2)
        .await
        .unwrap()
        .is_empty());
    store
        .append(stream("s"), ExpectedVersion::Any, vec![event(0)])
        .await
        .unwrap();
    assert_eq!(
        versions(store.read_stream_edges(stream("s"), 2).await.unwrap()),
        vec![1]
    );
    for n in 1..6 {
        store
            .append(stream("s"), ExpectedVersion::Any, vec![event(n)])
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

pub async fn read_subject_finds_every_stream_about_a_subject(store: &dyn EventStore) {
    store
        .append(stream("a"), ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap();
    store
        .append(stream("b"), ExpectedVersion::Any, vec![event(2), event(1)])
        .await
        .unwrap();
    let about = store.read_subject("user1".into()).await.unwrap();
    assert_eq!(
        about.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 3]
    );
}

/// Two stores (two writers, as two processes would have) on one database: their appends share
/// one gap-free order, and a creation race between them has one winner.
pub async fn two_writers_share_one_gap_free_order(a: Arc<dyn EventStore>, b: Arc<dyn EventStore>) {
    let writers = (0..40).map(|n| {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            store
                .append(
                    stream(&format!("s{}", n % 4)),
                    ExpectedVersion::Any,
                    vec![event(n)],
                )
                .await
                .unwrap()
        })
    });
    futures::future::join_all(writers).await;
    let positions: Vec<u64> = a
        .read_all(0, 1_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    assert_eq!(positions, (1..=40).collect::<Vec<u64>>());

    let racers = (0..10).map(|n| {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            store
                .append(
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

pub async fn query_filters_by_subject_type_time_and_pages_by_position(store: &dyn EventStore) {
    use authlog_application::ports::AuditFilter;
    let mut early = event(1);
    early.occurred_at = T0 - time::Duration::hours(2);
    store
        .append(
            stream("a"),
            ExpectedVersion::Any,
            vec![early, event(2), event(1)],
        )
        .await
        .unwrap();
    store
        .append(stream("b"), ExpectedVersion::Any, vec![event(1), event(3)])
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
        subject: Some("user1".into()),
        ..all.clone()
    };
    assert_eq!(
        positions(store.query(by_user.clone()).await.unwrap()),
        vec![1, 3, 4]
    );
    let paged = AuditFilter {
        after: 1,
        limit: 1,
        ..by_user
    };
    assert_eq!(positions(store.query(paged).await.unwrap()), vec![3]);

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
