//! The contract on PostgreSQL, and what only the database itself can show. Each test gets its
//! own schema in the run's database (AUTHLOG_TEST_POSTGRES_URL, made and dropped by ./test.sh).

use std::sync::Arc;

use authlog_application::ports::{EventStore, ExpectedVersion};
use authlog_domain::StreamId;
use authlog_store::{PostgresStore, VerifyError};
use sqlx::{Connection, Executor, PgConnection};

use crate::contract::{self, event};

/// The run's database, or `None` (with a notice) on a machine without PostgreSQL. Under CI a
/// missing database is a failure, never a skip.
pub fn base_url() -> Option<String> {
    match std::env::var("AUTHLOG_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("AUTHLOG_TEST_POSTGRES_URL is not set under CI: the PostgreSQL tests must run")
        }
        Err(_) => {
            not_run_notice();
            None
        }
    }
}

/// A fresh store in a schema of its own, and its URL.
async fn fresh() -> Option<(PostgresStore, String)> {
    let base = base_url()?;
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = PgConnection::connect(&base).await.unwrap();
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    Some((PostgresStore::open(&url).await.unwrap(), url))
}

macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let Some((store, _)) = fresh().await else { return };
            contract::$name(&store).await;
        }
    )*};
}

contract_tests!(
    appended_events_read_back_in_order_with_everything_they_carried,
    a_stream_that_does_not_exist_reads_empty,
    a_wrong_expected_version_is_a_typed_conflict_and_writes_nothing,
    the_right_expected_version_appends,
    read_all_pages_by_position,
    read_type_since_filters_by_type_and_time,
    read_stream_tail_answers_the_last_events_oldest_first,
    read_stream_edges_answers_the_first_and_the_last_events,
    read_subject_finds_every_stream_about_a_subject,
    query_filters_by_subject_type_time_and_pages_by_position,
);

#[tokio::test]
async fn of_twenty_concurrent_creations_of_one_stream_exactly_one_wins() {
    let Some((store, _)) = fresh().await else {
        return;
    };
    contract::of_twenty_concurrent_creations_of_one_stream_exactly_one_wins(Arc::new(store)).await;
}

#[tokio::test]
async fn positions_are_gap_free_and_increasing_across_concurrent_streams() {
    let Some((store, _)) = fresh().await else {
        return;
    };
    contract::positions_are_gap_free_and_increasing_across_concurrent_streams(Arc::new(store))
        .await;
}

#[tokio::test]
async fn two_stores_on_one_database_append_gap_free_and_race_to_one_winner() {
    let Some((first, url)) = fresh().await else {
        return;
    };
    let second = PostgresStore::open(&url).await.unwrap();
    contract::two_writers_share_one_gap_free_order(Arc::new(first), Arc::new(second)).await;
}

#[tokio::test]
async fn the_database_itself_refuses_update_delete_and_truncate_on_events() {
    let Some((store, url)) = fresh().await else {
        return;
    };
    store
        .append(
            StreamId::from_stored("s".into()),
            ExpectedVersion::Any,
            vec![event(1)],
        )
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    for statement in [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let refused = conn.execute(statement).await.unwrap_err().to_string();
        assert!(refused.contains("append-only"), "{statement}: {refused}");
    }
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn verify_passes_an_intact_log_and_names_the_first_edited_position() {
    let Some((store, url)) = fresh().await else {
        return;
    };
    for n in 0..5 {
        store
            .append(
                StreamId::from_stored(format!("s{n}")),
                ExpectedVersion::Any,
                vec![event(n)],
            )
            .await
            .unwrap();
    }
    assert_eq!(store.verify().await.unwrap().rows, 5);

    // An edit behind the service's back: only possible by switching the guards off first.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        .await
        .unwrap();
    assert!(matches!(
        store.verify().await,
        Err(VerifyError::MissingGuard(_))
    ));
    conn.execute("UPDATE events SET payload = '{\"username\":\"mallory\",\"reason\":\"unknown_user\"}' WHERE position = 3")
        .await
        .unwrap();
    conn.execute("ALTER TABLE events ENABLE TRIGGER USER")
        .await
        .unwrap();
    match store.verify().await {
        Err(VerifyError::Broken { position, .. }) => assert_eq!(position, 3),
        other => panic!("expected a break at 3, got {other:?}"),
    }
}

/// Says, once per test binary, that the PostgreSQL tests did not run and how to run them.
/// Written to stderr directly: libtest hides what a passing test prints with `eprintln!`.
fn not_run_notice() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: the PostgreSQL tests did NOT run: AUTHLOG_TEST_POSTGRES_URL is not set. \
             Run ./test.sh, which starts PostgreSQL and makes a database for the run.\n"
        );
    });
}

#[tokio::test]
async fn the_audit_view_flattens_common_fields_and_leaves_password_hashes_out() {
    let Some((store, url)) = fresh().await else {
        return;
    };
    store
        .append(
            StreamId::from_stored("user:alice".into()),
            ExpectedVersion::NoStream,
            vec![contract::registered()],
        )
        .await
        .unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let (username, user_id, data): (String, String, String) = sqlx::query_as(
        "SELECT username, user_id, data::text FROM audit_events WHERE username = 'alice'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(username, "alice");
    assert_eq!(user_id, "00000000-0000-0000-0000-000000000001");
    assert!(!data.contains("argon2") && data.contains("alice"), "{data}");
}
