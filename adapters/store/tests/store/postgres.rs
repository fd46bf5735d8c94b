//! The contract on PostgreSQL, and what only the database itself can show. Each test gets its
//! own schema in the run's database (AUTHLOG_TEST_POSTGRES_URL, made and dropped by ./test.sh).

use std::sync::Arc;

use authlog_application::ports::{
    AppendError, EventLog, EventStore, ExpectedVersion, ReadModels, StoreError,
};
use authlog_domain::StreamId;
use authlog_store::{Store, VerifyError};
use sqlx::{Connection, Executor, PgConnection};

use crate::contract::{self, append, event, everything, one_event_in_each_of};

/// The run's database (AUTHLOG_TEST_POSTGRES_URL, made and dropped by ./test.sh). These tests
/// are `#[ignore]`d, so that without PostgreSQL they show as skipped, with the reason;
/// ./test.sh runs them whenever it has a server, and under CI it must have one.
pub fn base_url() -> String {
    std::env::var("AUTHLOG_TEST_POSTGRES_URL").expect(
        "AUTHLOG_TEST_POSTGRES_URL is not set: run ./test.sh, which starts PostgreSQL and makes \
         a database for the run",
    )
}

/// A fresh store in a schema of its own, and its URL.
async fn fresh_with_url() -> (Arc<Store>, String) {
    let base = base_url();
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = PgConnection::connect(&base).await.unwrap();
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options[search_path]={schema}");
    (
        Arc::new(Store::open(&url, crate::personal()).await.unwrap()),
        url,
    )
}

async fn fresh() -> (Arc<Store>, ()) {
    (fresh_with_url().await.0, ())
}

every_contract_test!(
    #[ignore = "needs PostgreSQL: ./test.sh runs it"]
    fresh: fresh()
);

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn of_twenty_concurrent_creations_of_one_stream_exactly_one_wins() {
    contract::of_twenty_concurrent_creations_of_one_stream_exactly_one_wins(fresh().await.0).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn of_twenty_concurrent_claims_of_alike_names_exactly_one_wins() {
    contract::of_twenty_concurrent_claims_of_alike_names_exactly_one_wins(fresh().await.0).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn positions_are_gap_free_and_increasing_across_concurrent_streams() {
    contract::positions_are_gap_free_and_increasing_across_concurrent_streams(fresh().await.0)
        .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn two_stores_on_one_database_append_gap_free_and_race_to_one_winner() {
    let (first, url) = fresh_with_url().await;
    let second = Arc::new(Store::open(&url, crate::personal()).await.unwrap());
    contract::two_writers_share_one_gap_free_order(first, second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn two_projectors_on_one_database_never_halt_each_other() {
    let (first, url) = fresh_with_url().await;
    let second = Arc::new(Store::open(&url, crate::personal()).await.unwrap());
    contract::two_projectors_on_one_database_never_halt_each_other(first, second).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn the_database_itself_refuses_update_delete_and_truncate_on_events() {
    let (store, url) = fresh_with_url().await;
    append(
        store.as_ref(),
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
    assert_eq!(everything(store.as_ref()).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn verify_passes_an_intact_log_and_names_the_first_edited_position() {
    let (store, url) = fresh_with_url().await;
    one_event_in_each_of(store.as_ref(), 5).await;
    assert_eq!(store.verify(&|_, _| {}).await.unwrap().rows, 5);

    // An edit behind the service's back: only possible by switching the guards off first.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        .await
        .unwrap();
    assert!(matches!(
        store.verify(&|_, _| {}).await,
        Err(VerifyError::MissingGuard(_))
    ));
    conn.execute("UPDATE events SET payload = '{\"username\":\"mallory\",\"reason\":\"unknown_user\"}' WHERE position = 3")
        .await
        .unwrap();
    conn.execute("ALTER TABLE events ENABLE TRIGGER USER")
        .await
        .unwrap();
    match store.verify(&|_, _| {}).await {
        Err(VerifyError::Broken { position, .. }) => assert_eq!(position, 3),
        other => panic!("expected a break at 3, got {other:?}"),
    }
}

/// The guards' function replaced by one that lets every row go (same name, same triggers),
/// or the triggers set to fire for replicas only: `verify` reads what the guards do.
#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn verify_refuses_guards_that_no_longer_guard() {
    let (store, url) = fresh_with_url().await;
    one_event_in_each_of(store.as_ref(), 3).await;
    assert_eq!(store.verify(&|_, _| {}).await.unwrap().rows, 3);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    conn.execute("ALTER TABLE events ENABLE REPLICA TRIGGER events_refuse_delete")
        .await
        .unwrap();
    assert!(matches!(
        store.verify(&|_, _| {}).await,
        Err(VerifyError::MissingGuard(name)) if name == "events_refuse_delete"
    ));
    conn.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_delete")
        .await
        .unwrap();

    conn.execute(
        "CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger \
         LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
    )
    .await
    .unwrap();
    let deleted = conn.execute("DELETE FROM events").await.unwrap();
    assert_eq!(deleted.rows_affected(), 3, "the no-op guards nothing");
    match store.verify(&|_, _| {}).await {
        Err(VerifyError::AlteredGuard { name, found, .. }) => {
            assert_eq!(name, "events_refuse_update");
            assert!(found.contains("RETURN OLD"), "{found}");
        }
        other => panic!("expected an altered guard, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn the_audit_table_shows_personal_data_until_erasure_and_no_table_keeps_it() {
    use authlog_domain::UserId;
    let (store, url) = fresh_with_url().await;
    let zelda = UserId::from_uuid(uuid::Uuid::from_u128(77));
    let appended = store.append(contract::a_users_life(zelda)).await.unwrap();
    store.wait_for_all(appended.position).await.unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let query = "SELECT event_type, username, client_addr, user_agent, data FROM audit_events \
                 WHERE user_id = $1 ORDER BY position";
    type AuditRow = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<AuditRow> = sqlx::query_as(query)
        .bind(zelda.to_string())
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (_, username, client_addr, user_agent, data) in &rows {
        assert_eq!(username.as_deref(), Some("Zelda"));
        assert_eq!(client_addr.as_deref(), Some("192.0.2.77"));
        assert_eq!(user_agent.as_deref(), Some("Erasable/1.0"));
        assert!(
            !data.contains("argon2") && !data.contains("Zelda"),
            "{data}"
        );
    }
    let erased = contract::erase(store.as_ref(), zelda).await;
    store.wait_for_all(erased.position).await.unwrap();
    let rows: Vec<AuditRow> = sqlx::query_as(query)
        .bind(zelda.to_string())
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter().all(|r| r.1.as_deref() == Some("[erased]")),
        "{rows:?}"
    );
    // No table holds any of it: every text column of every table of the schema, searched.
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND data_type IN ('text', 'jsonb', 'json')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(columns.len() > 20, "{columns:?}");
    for (table, column) in columns {
        let found: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\"::text ILIKE '%zelda%' \
             OR \"{column}\"::text LIKE '%192.0.2.77%' OR \"{column}\"::text LIKE '%Erasable%'"
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(found, 0, "{table}.{column}");
    }
    let key: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT sealed_key FROM user_keys WHERE user_id = $1")
            .bind(zelda.to_string())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(key, None);
    store.verify(&|_, _| {}).await.unwrap();
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn two_instances_apply_each_event_to_the_read_models_exactly_once() {
    use authlog_application::ports::ReadModels;
    let (first, url) = fresh_with_url().await;
    let second = Arc::new(Store::open(&url, crate::personal()).await.unwrap());
    let logins = (1..=40u128).map(|n| {
        let store = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tokio::spawn(async move { contract::log_in(store.as_ref(), n, 30).await })
    });
    futures::future::join_all(logins).await;
    contract::sessions_revoked_after(first.as_ref(), 40).await;
    let head = first.head().await.unwrap();
    second.wait_for(head).await.unwrap();
    let revoked = second.revocations_after(0).await.unwrap();
    assert_eq!(revoked.len(), 39, "each session once");
    let now = contract::T0 + time::Duration::hours(1);
    let live = first.live_sessions(contract::user(1), now).await.unwrap();
    assert_eq!(live.len(), 1);
}

/// Takes the append lock as another instance would, on a connection of its own.
async fn hold_the_append_lock(url: &str) -> PgConnection {
    let mut holder = PgConnection::connect(url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(authlog_store::postgres::APPEND_LOCK)
        .execute(&mut holder)
        .await
        .unwrap();
    holder
}

/// Requests that wait behind another instance's append lock are committed together in one
/// call of `authlog_append`, each with its own outcome, and the chain the database computed
/// is the one `verify` computes.
#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn requests_queued_behind_the_append_lock_share_a_batch_and_keep_their_own_outcomes() {
    let (store, url, database) = fresh_database("queued").await;
    let holder = hold_the_append_lock(&url).await;
    let queued = contract::queue_behind_the_lock(store.clone()).await;
    assert!(
        !queued.is_finished(),
        "appended while another instance held the lock"
    );
    holder.close().await.unwrap();
    contract::check_the_queue(store.as_ref(), queued).await;
    assert_eq!(store.verify(&|_, _| {}).await.unwrap().rows, 7);
    drop(store);
    drop_database(&database).await;
}

/// A fresh store in a database of its own beside the run's, its URL and the database's name,
/// for the tests that hold the append lock: advisory locks are per database, so holding it in a
/// schema of the run's database would stall every other test's appends. A run that failed
/// before [`drop_database`] leaves it to the next run with the same name, which starts afresh.
async fn fresh_database(suffix: &str) -> (Arc<Store>, String, String) {
    let base = base_url();
    let (server, run) = base.rsplit_once('/').unwrap();
    let name = format!("{run}_{suffix}");
    drop_database(&name).await;
    let mut conn = PgConnection::connect(&base).await.unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let url = format!("{server}/{name}");
    (
        Arc::new(Store::open(&url, crate::personal()).await.unwrap()),
        url,
        name,
    )
}

async fn drop_database(name: &str) {
    let mut conn = PgConnection::connect(&base_url()).await.unwrap();
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

/// An appender that holds the lock too long (a wedged instance) does not halt the others for
/// ever: their appends give up after the lock timeout, write nothing, and work again once the
/// lock is free.
#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn an_append_that_waits_too_long_for_the_lock_fails_cleanly_and_writes_nothing() {
    let (store, url, database) = fresh_database("wedged").await;
    let holder = hold_the_append_lock(&url).await;
    let started = std::time::Instant::now();
    let refused = append(
        store.as_ref(),
        StreamId::from_stored("s".into()),
        ExpectedVersion::NoStream,
        vec![event(1)],
    )
    .await;
    let waited = started.elapsed();
    match refused {
        Err(AppendError::Store(StoreError::Unavailable(reason))) => {
            assert!(reason.contains("append lock"), "{reason}")
        }
        other => panic!("expected the lock to time out, got {other:?}"),
    }
    assert!(
        waited >= std::time::Duration::from_secs(4) && waited < std::time::Duration::from_secs(8),
        "gave up after {waited:?}, not after the 5 s lock timeout"
    );
    assert!(everything(store.as_ref()).await.is_empty());

    holder.close().await.unwrap();
    let appended = append(
        store.as_ref(),
        StreamId::from_stored("s".into()),
        ExpectedVersion::NoStream,
        vec![event(1)],
    )
    .await
    .unwrap();
    assert_eq!((appended.first, appended.position), (1, 1));
    drop(store);
    drop_database(&database).await;
}
