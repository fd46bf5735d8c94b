//! The contract on SQLite, and what only the SQLite file itself can show.

use std::str::FromStr;
use std::sync::Arc;

use authlog_application::ports::{EventLog, EventStore, ExpectedVersion, ReadModels};
use authlog_domain::StreamId;
use authlog_store::chain::{self, RowContent};
use authlog_store::{Store, VerifyError};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row, SqliteConnection};
use tempfile::TempDir;

use crate::contract::{self, append, event, everything, one_event_in_each_of, register};

/// A fresh store in its own temporary directory (dropped with the directory), and its URL.
async fn fresh_with_url() -> (Arc<Store>, TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("events.db").display());
    (
        Arc::new(Store::open(&url, crate::personal()).await.unwrap()),
        dir,
        url,
    )
}

async fn fresh() -> (Arc<Store>, TempDir) {
    let (store, dir, _) = fresh_with_url().await;
    (store, dir)
}

async fn raw(url: &str) -> SqliteConnection {
    SqliteConnectOptions::from_str(url)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

every_contract_test!(fresh: fresh());

#[tokio::test]
async fn of_twenty_concurrent_creations_of_one_stream_exactly_one_wins() {
    let (store, _dir) = fresh().await;
    contract::of_twenty_concurrent_creations_of_one_stream_exactly_one_wins(store).await;
}

#[tokio::test]
async fn of_twenty_concurrent_claims_of_alike_names_exactly_one_wins() {
    let (store, _dir) = fresh().await;
    contract::of_twenty_concurrent_claims_of_alike_names_exactly_one_wins(store).await;
}

#[tokio::test]
async fn skeletons_of_an_older_rule_are_taken_again_once_and_an_earlier_look_alike_keeps_its_own() {
    let (store, dir, url) = fresh_with_url().await;
    // Under the rule before small capitals were read as capitals, `ʀoot` and `ᴀdmin` were
    // look-alikes of nobody: their skeletons kept the small capitals.
    for (n, name) in [(1, "\u{280}oot"), (2, "admin"), (3, "\u{1d00}dmin")] {
        let old_rule = match n {
            2 => None,
            _ => Some(name.replace('m', "rn")),
        };
        if n == 3 {
            // Registered while `admin` held `adrnin`: only possible under the old rule.
            sqlx::query("UPDATE usernames SET skeleton = 'held' WHERE skeleton = 'adrnin'")
                .execute(&mut raw(&url).await)
                .await
                .unwrap();
        }
        register(store.as_ref(), n, name).await.unwrap();
        let mut conn = raw(&url).await;
        if let Some(old) = old_rule {
            sqlx::query("UPDATE usernames SET skeleton = ? WHERE user_id = ?")
                .bind(old)
                .bind(format!("{}", uuid::Uuid::from_u128(n)))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        if n == 3 {
            sqlx::query("UPDATE usernames SET skeleton = 'adrnin' WHERE skeleton = 'held'")
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
    sqlx::query("DELETE FROM store_rules")
        .execute(&mut raw(&url).await)
        .await
        .unwrap();
    drop(store);

    let store = Store::open(&url, crate::personal()).await.unwrap();
    let skeletons: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT canonical, skeleton FROM usernames ORDER BY registered_at")
            .fetch_all(&mut raw(&url).await)
            .await
            .unwrap();
    assert_eq!(
        skeletons,
        [
            ("\u{280}oot".to_owned(), Some("root".to_owned())),
            ("admin".to_owned(), Some("adrnin".to_owned())),
            // Its new skeleton is `admin`'s, which keeps it; it keeps its old one.
            ("\u{1d00}dmin".to_owned(), Some("\u{1d00}drnin".to_owned())),
        ]
    );
    // Now `root` is refused as a look-alike of `ʀoot`, as a new registration would be.
    assert!(matches!(
        register(&store, 4, "root").await,
        Err(authlog_application::ports::AppendError::NameTaken)
    ));
    // Once: the rule's version is kept, and the next start takes nothing again.
    sqlx::query("UPDATE usernames SET skeleton = 'kept' WHERE canonical = 'admin'")
        .execute(&mut raw(&url).await)
        .await
        .unwrap();
    drop(store);
    let _store = Store::open(&url, crate::personal()).await.unwrap();
    let kept: String =
        sqlx::query_scalar("SELECT skeleton FROM usernames WHERE canonical = 'admin'")
            .fetch_one(&mut raw(&url).await)
            .await
            .unwrap();
    assert_eq!(kept, "kept");
    drop(dir);
}

/// The log cut and written again to the same length behind the service's back: the positions
/// the projections applied are there again, holding other events. The next start compares each
/// checkpoint with the event it was set at, and halts the projections instead of skipping the
/// new events for good.
#[tokio::test]
async fn a_checkpoint_whose_event_was_replaced_halts_its_projection_at_the_next_start() {
    let (store, dir, url) = fresh_with_url().await;
    one_event_in_each_of(store.as_ref(), 5).await;
    store.wait_for_all(5).await.unwrap();
    let mut conn = raw(&url).await;
    for sql in [
        "DROP TRIGGER events_refuse_delete",
        "DELETE FROM events WHERE position > 3",
        "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events BEGIN \
         SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    for n in 5..7 {
        append(
            store.as_ref(),
            StreamId::from_stored(format!("s{n}")),
            ExpectedVersion::Any,
            vec![event(n)],
        )
        .await
        .unwrap();
    }
    assert_eq!(everything(store.as_ref()).await.len(), 5);
    drop(store);

    let store = Store::open(&url, crate::personal()).await.unwrap();
    let status = store.status().await.unwrap();
    assert_eq!(status.len(), 3);
    for projection in &status {
        let halted = projection.halted.as_deref().unwrap_or_default();
        assert!(
            halted.contains("up to position 5, but the log holds another event at 5"),
            "{projection:?}"
        );
    }
    assert!(matches!(
        store.wait_for(6).await,
        Err(authlog_application::ports::StoreError::Halted(_))
    ));
    for name in ["sessions", "users", "audit"] {
        store.rebuild(name, &|_, _| {}).await.unwrap();
    }
    store.wait_for_all(5).await.unwrap();
    assert!(store
        .status()
        .await
        .unwrap()
        .iter()
        .all(|p| p.halted.is_none()));
    drop(dir);
}

#[tokio::test]
async fn a_users_secret_is_stored_sealed_under_their_key() {
    use authlog_application::ports::{Beside, SecretKind, UserSecret};
    let (store, _dir, url) = fresh_with_url().await;
    let user = authlog_domain::UserId::from_uuid(uuid::Uuid::from_u128(5));
    let secret = UserSecret {
        user_id: user,
        kind: SecretKind::Totp,
        id: "primary".into(),
        secret: b"JBSWY3DPEHPK3PXP-shared".to_vec(),
    };
    let write = authlog_application::ports::StreamWrite::new(
        StreamId::from_stored("s".into()),
        ExpectedVersion::Any,
        vec![event(1)],
    );
    store
        .append_with(vec![write], vec![Beside::PutSecret(secret)])
        .await
        .unwrap();
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed FROM user_secrets")
        .fetch_one(&mut raw(&url).await)
        .await
        .unwrap();
    assert!(!sealed.windows(8).any(|w| w == b"JBSWY3DP"));
    // Moved to another user's row, it does not open there.
    sqlx::query("UPDATE user_secrets SET user_id = ?")
        .bind(uuid::Uuid::from_u128(6).to_string())
        .execute(&mut raw(&url).await)
        .await
        .unwrap();
    let other = authlog_domain::UserId::from_uuid(uuid::Uuid::from_u128(6));
    let moved =
        authlog_application::ports::UserSecrets::secrets(&*store, other, SecretKind::Totp).await;
    assert!(moved.is_err(), "{moved:?}");
}

#[tokio::test]
async fn positions_are_gap_free_and_increasing_across_concurrent_streams() {
    let (store, _dir) = fresh().await;
    contract::positions_are_gap_free_and_increasing_across_concurrent_streams(store).await;
}

#[tokio::test]
async fn the_database_itself_refuses_update_and_delete_on_events() {
    let (store, _dir, url) = fresh_with_url().await;
    append(
        store.as_ref(),
        StreamId::from_stored("s".into()),
        ExpectedVersion::Any,
        vec![event(1)],
    )
    .await
    .unwrap();
    let mut conn = raw(&url).await;

    let update = sqlx::query("UPDATE events SET payload = '{}'")
        .execute(&mut conn)
        .await;
    let delete = sqlx::query("DELETE FROM events").execute(&mut conn).await;

    assert!(update.unwrap_err().to_string().contains("append-only"));
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(everything(store.as_ref()).await.len(), 1);
}

#[tokio::test]
async fn every_row_hash_chains_to_the_previous_row() {
    let (store, _dir, url) = fresh_with_url().await;
    for n in 0..3 {
        append(
            store.as_ref(),
            StreamId::from_stored(format!("s{n}")),
            ExpectedVersion::Any,
            vec![event(n), event(n)],
        )
        .await
        .unwrap();
    }
    let mut conn = raw(&url).await;
    let rows = sqlx::query("SELECT * FROM events ORDER BY position")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut previous = chain::GENESIS.to_vec();
    for row in &rows {
        let expected = chain::link(
            &previous,
            &RowContent {
                position: row.get::<i64, _>("position") as u64,
                stream_id: row.get("stream_id"),
                stream_version: row.get::<i64, _>("stream_version") as u64,
                event_type: row.get("event_type"),
                subject: row.get("subject"),
                payload: row.get("payload"),
                metadata: row.get("metadata"),
                recorded_at: row.get("recorded_at"),
                schema_version: row
                    .get::<Option<i64>, _>("schema_version")
                    .map(|v| v as u64),
            },
        );
        let stored: Vec<u8> = row.get("hash");
        assert_eq!(stored, expected.to_vec());
        previous = stored;
    }
    assert_eq!(rows.len(), 6);
}

#[tokio::test]
async fn two_stores_on_one_file_append_gap_free_and_race_to_one_winner() {
    let (first, _dir, url) = fresh_with_url().await;
    let second = Arc::new(Store::open(&url, crate::personal()).await.unwrap());
    contract::two_writers_share_one_gap_free_order(first, second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_projectors_on_one_file_never_halt_each_other() {
    let (first, _dir, url) = fresh_with_url().await;
    let second = Arc::new(Store::open(&url, crate::personal()).await.unwrap());
    contract::two_projectors_on_one_database_never_halt_each_other(first, second).await;
}

/// The update guard as the migration created it, put back after an edit.
const RESTORE_UPDATE_GUARD: &str = "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: UPDATE refused');
END";

#[tokio::test]
async fn verify_passes_an_intact_log_and_names_the_first_edited_position() {
    let (store, _dir, url) = fresh_with_url().await;
    one_event_in_each_of(store.as_ref(), 5).await;
    // It says how it goes: the last word is every event of the log, done.
    let told = std::sync::Mutex::new(Vec::new());
    let progress = |done, total| told.lock().unwrap().push((done, total));
    assert_eq!(store.verify(&progress).await.unwrap().rows, 5);
    assert_eq!(told.lock().unwrap().last(), Some(&(5, 5)));

    // An edit behind the service's back: only possible by dropping the guard first.
    let mut conn = raw(&url).await;
    sqlx::query("DROP TRIGGER events_refuse_update")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        matches!(store.verify(&|_, _| {}).await, Err(VerifyError::MissingGuard(name)) if name == "events_refuse_update")
    );
    sqlx::query("UPDATE events SET subject = 'mallory' WHERE position = 4")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(RESTORE_UPDATE_GUARD)
        .execute(&mut conn)
        .await
        .unwrap();
    match store.verify(&|_, _| {}).await {
        Err(VerifyError::Broken { position, .. }) => assert_eq!(position, 4),
        other => panic!("expected a break at 4, got {other:?}"),
    }
}

/// A guard replaced by a no-op of the same name lets rows be deleted; `verify` reads what each
/// guard does, not its name, and says which one is not as installed.
#[tokio::test]
async fn verify_refuses_a_guard_replaced_by_a_no_op_of_the_same_name() {
    for no_op in [
        "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events BEGIN SELECT 1; END",
        "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events BEGIN \
         SELECT RAISE(ABORT, 'events is append-only: DELETE refused') WHERE 0; END",
        "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events WHEN 0 BEGIN \
         SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END",
    ] {
        let (store, _dir, url) = fresh_with_url().await;
        one_event_in_each_of(store.as_ref(), 3).await;
        assert_eq!(store.verify(&|_, _| {}).await.unwrap().rows, 3);
        let mut conn = raw(&url).await;
        sqlx::query("DROP TRIGGER events_refuse_delete")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(no_op).execute(&mut conn).await.unwrap();
        let deleted = sqlx::query("DELETE FROM events WHERE position = 3")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            deleted.rows_affected(),
            1,
            "the no-op guards nothing: {no_op}"
        );
        match store.verify(&|_, _| {}).await {
            Err(VerifyError::AlteredGuard { name, .. }) => {
                assert_eq!(name, "events_refuse_delete", "{no_op}");
            }
            other => panic!("{no_op}: expected an altered guard, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn verify_catches_a_schema_version_changed_or_removed_behind_the_services_back() {
    for edit in [
        "UPDATE events SET schema_version = schema_version + 1 WHERE position = 2",
        "UPDATE events SET schema_version = NULL WHERE position = 2",
    ] {
        let (store, _dir, url) = fresh_with_url().await;
        for n in 0..3 {
            append(
                store.as_ref(),
                StreamId::from_stored(format!("s{n}")),
                ExpectedVersion::NoStream,
                vec![event(n)],
            )
            .await
            .unwrap();
        }
        assert_eq!(store.verify(&|_, _| {}).await.unwrap().rows, 3);
        let mut conn = raw(&url).await;
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT schema_version FROM events WHERE position = 2")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            stored,
            Some(2),
            "every new row records its version (`LoginFailed`'s is 2)"
        );
        sqlx::query("DROP TRIGGER events_refuse_update")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(edit).execute(&mut conn).await.unwrap();
        sqlx::query(RESTORE_UPDATE_GUARD)
            .execute(&mut conn)
            .await
            .unwrap();
        match store.verify(&|_, _| {}).await {
            Err(VerifyError::Broken { position, .. }) => assert_eq!(position, 2, "{edit}"),
            other => panic!("{edit}: expected a break at 2, got {other:?}"),
        }
    }
}

/// What the analysts' table holds of a user: `(event_type, username, client_addr, user_agent,
/// data)` per event, in order.
type AuditRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

async fn audit_rows(conn: &mut SqliteConnection, user: &str) -> Vec<AuditRow> {
    sqlx::query_as(
        "SELECT event_type, username, client_addr, user_agent, data FROM audit_events \
         WHERE user_id = ? ORDER BY position",
    )
    .bind(user)
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_audit_table_shows_personal_data_until_erasure_leaves_no_byte_of_it_in_the_files() {
    use authlog_domain::UserId;
    let (store, dir, url) = fresh_with_url().await;
    let zelda = UserId::from_uuid(uuid::Uuid::from_u128(77));
    // The registration and the login reach the analysts' table in two batches: the login's
    // row takes its name from the registration's row, not from its own batch.
    let mut life = contract::a_users_life(zelda);
    let login = life.pop().unwrap();
    let registered = store.append(life).await.unwrap();
    store.wait_for_all(registered.position).await.unwrap();
    let appended = store.append(vec![login]).await.unwrap();
    store.wait_for_all(appended.position).await.unwrap();
    let mut conn = raw(&url).await;
    let rows = audit_rows(&mut conn, &zelda.to_string()).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (event_type, username, client_addr, user_agent, data) in &rows {
        assert_eq!(username.as_deref(), Some("Zelda"), "{event_type}");
        assert_eq!(client_addr.as_deref(), Some("192.0.2.77"));
        assert_eq!(user_agent.as_deref(), Some("Erasable/1.0"));
        assert!(
            !data.contains("argon2") && !data.contains("Zelda"),
            "{data}"
        );
    }
    // The log itself holds none of it in clear: it is sealed under Zelda's key.
    let clear: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE payload LIKE '%Zelda%' OR payload LIKE '%argon2%' \
         OR metadata LIKE '%192.0.2.77%' OR metadata LIKE '%Erasable%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(clear, 0);
    let sealed_key: Vec<u8> =
        sqlx::query_scalar("SELECT sealed_key FROM user_keys WHERE user_id = ?")
            .bind(zelda.to_string())
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT payload, metadata FROM events ORDER BY position")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    drop(conn);

    let erased = contract::erase(store.as_ref(), zelda).await;
    store.wait_for_all(erased.position).await.unwrap();
    let mut conn = raw(&url).await;
    for (event_type, username, client_addr, user_agent, _) in
        audit_rows(&mut conn, &zelda.to_string()).await
    {
        assert_eq!(username.as_deref(), Some("[erased]"), "{event_type}");
        if event_type != "SessionsRevoked" && event_type != "UserErased" {
            assert_eq!(client_addr.as_deref(), Some("[erased]"), "{event_type}");
            assert_eq!(user_agent.as_deref(), Some("[erased]"), "{event_type}");
        }
    }
    // Nothing in `events` changed, and the chain over it holds.
    let after: Vec<(String, String)> =
        sqlx::query_as("SELECT payload, metadata FROM events ORDER BY position")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(after[..stored.len()], stored[..]);
    drop(conn);
    store.verify(&|_, _| {}).await.unwrap();
    // Not a byte of the name (as typed, or as the name index kept it), the address, the user
    // agent or the destroyed key is left in the database, its WAL or its shared memory.
    let needles: [&[u8]; 5] = [
        b"Zelda",
        b"zelda",
        b"192.0.2.77",
        b"Erasable/1.0",
        &sealed_key,
    ];
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("events.db{suffix}"));
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?}",
                file.display(),
                String::from_utf8_lossy(&needle[..needle.len().min(12)])
            );
        }
    }
}

#[tokio::test]
async fn the_file_is_in_wal_mode() {
    let (_store, _dir, url) = fresh_with_url().await;
    let mut conn = raw(&url).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn events_survive_reopening_the_file() {
    let (store, _dir, url) = fresh_with_url().await;
    append(
        store.as_ref(),
        StreamId::from_stored("s".into()),
        ExpectedVersion::NoStream,
        vec![event(1)],
    )
    .await
    .unwrap();
    drop(store);

    let reopened = Store::open(&url, crate::personal()).await.unwrap();
    assert_eq!(
        reopened
            .read_stream(StreamId::from_stored("s".into()))
            .await
            .unwrap()
            .len(),
        1
    );
    let next = append(
        &reopened,
        StreamId::from_stored("s".into()),
        ExpectedVersion::Exactly(1),
        vec![event(2)],
    )
    .await
    .unwrap();
    assert_eq!(next.position, 2);
}

#[tokio::test]
async fn a_projection_rebuilt_from_the_log_answers_as_the_one_kept_live() {
    use authlog_application::ports::ReadModels;
    let (store, _dir, url) = fresh_with_url().await;
    for n in 1..=5 {
        contract::log_in(store.as_ref(), n, 30).await;
    }
    contract::sessions_revoked_after(store.as_ref(), 3).await;
    let now = contract::T0 + time::Duration::hours(1);
    let live = store.live_sessions(contract::user(1), now).await.unwrap();
    let revoked = store.revocations_after(0).await.unwrap();

    let told = std::sync::Mutex::new(Vec::new());
    let progress = |done, total| told.lock().unwrap().push((done, total));
    let rebuilt = store.rebuild("sessions", &progress).await.unwrap();
    assert_eq!(rebuilt.position, store.head().await.unwrap());
    assert_eq!(rebuilt.events, 6);
    // It said how it went, up to the head.
    let head = rebuilt.position;
    assert_eq!(told.lock().unwrap().last(), Some(&(head, head)));
    assert_eq!(
        store.live_sessions(contract::user(1), now).await.unwrap(),
        live
    );
    assert_eq!(store.revocations_after(0).await.unwrap(), revoked);

    // Rebuilt twice: the second swap finds the first's tables and indexes in place.
    store.rebuild("sessions", &|_, _| {}).await.unwrap();
    assert_eq!(
        store.live_sessions(contract::user(1), now).await.unwrap(),
        live
    );
    let mut conn = raw(&url).await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE name LIKE 'sessions%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        vec!["sessions", "sessions_by_expiry", "sessions_by_user"]
    );
    assert!(store.rebuild("nope", &|_, _| {}).await.is_err());
}

#[tokio::test]
async fn a_bad_url_or_an_unwritable_path_is_a_clear_error() {
    let bad = Store::open("mysql://nope", crate::personal())
        .await
        .err()
        .unwrap();
    assert!(bad.to_string().contains("invalid database URL"), "{bad}");
    let unwritable = Store::open("sqlite:///proc/nope/authlog.db", crate::personal())
        .await
        .err()
        .unwrap();
    assert!(
        unwritable.to_string().contains("cannot open database"),
        "{unwritable}"
    );
}

/// Requests that wait behind another process's write lock are committed together in one
/// batch, each with its own outcome, and the chain over them verifies.
#[tokio::test]
async fn requests_queued_behind_the_write_lock_share_a_batch_and_keep_their_own_outcomes() {
    let (store, _dir, url) = fresh_with_url().await;
    let mut other = raw(&url).await;
    sqlx::Executor::execute(&mut other, "BEGIN IMMEDIATE")
        .await
        .unwrap();
    let queued = contract::queue_behind_the_lock(store.clone()).await;
    assert!(
        !queued.is_finished(),
        "appended while another process held the write lock"
    );
    sqlx::Executor::execute(&mut other, "COMMIT").await.unwrap();
    contract::check_the_queue(store.as_ref(), queued).await;
    assert_eq!(store.verify(&|_, _| {}).await.unwrap().rows, 7);
}
