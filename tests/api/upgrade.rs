//! Databases written by older releases open under this one. For each release in
//! `tests/fixtures/` (see its README): the migrations apply, every user logs in with their
//! password, roles and revocations hold, audit lists the old events, and `authlog verify` passes
//! over the old part of the chain and the new part written on top of it. On SQLite the test opens
//! a copy of the file the release wrote; on PostgreSQL it replays the release's dump into a
//! schema of its own.

use std::collections::BTreeSet;
use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{
    backend, postgres_schema_url, spawn_on_database, test_args, Backend, TestApp,
};
use authlog::database::Database;

/// The releases whose databases this one must open, oldest first: `v1` is the first stage's
/// last release (commit cc35d0f), `v3` the release before events carried a schema version,
/// `v4` the release before personal data was sealed (commit 5ab0daa; it sealed its signing keys
/// under a master key, which the fixture keeps beside its database and dump).
const RELEASES: [&str; 3] = ["v1", "v3", "v4"];

fn fixture(release: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(release)
        .join(file)
}

/// A database as `release` left it, on the suite's backend, with its master key if it had one.
async fn database_of(release: &str) -> (Database, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let database = match backend() {
        Backend::Sqlite => {
            let copy = dir.path().join("authlog.db");
            std::fs::copy(fixture(release, "authlog.db"), &copy).unwrap();
            let key = fixture(release, "authlog.key");
            if key.exists() {
                std::fs::copy(key, dir.path().join("authlog.key")).unwrap();
            }
            Database::new(format!("sqlite://{}", copy.display()))
        }
        Backend::Postgres => {
            let url = postgres_schema_url().await;
            replay_dump(&url, release).await;
            let key = fixture(release, "authlog.postgres.key");
            if key.exists() {
                Database::new(url).with_master_key_file(key)
            } else {
                crate::helpers::database(&url)
            }
        }
    };
    (database, dir)
}

/// Replays `release`'s pg_dump of its `public` schema into the schema `url` points at.
async fn replay_dump(url: &str, release: &str) {
    use sqlx::{Connection, Executor};
    let dump = std::fs::read_to_string(fixture(release, "authlog.postgres.sql")).unwrap();
    let schema = url.rsplit("search_path]=").next().unwrap();
    // The dump creates and names its schema and empties the search path: here the schema is
    // the test's, already made and on the path. Its `\restrict` lines are for psql alone.
    let script: String = dump
        .lines()
        .filter(|line| {
            !line.starts_with('\\')
                && *line != "CREATE SCHEMA public;"
                && !line.contains("set_config('search_path'")
        })
        .map(|line| line.replace("public.", &format!("{schema}.")) + "\n")
        .collect();
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    conn.execute(script.as_str()).await.unwrap();
}

async fn live_sessions(app: &TestApp, token: &str) -> usize {
    let body: Value = app.get("/sessions", token).await.json().await.unwrap();
    body["sessions"].as_array().unwrap().len()
}

fn intact_count(stdout: &str) -> u64 {
    stdout
        .strip_prefix("intact: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("verify did not report an intact log: {stdout}"))
}

async fn verified(app: &TestApp) -> u64 {
    let output = app.cli(&["verify"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    intact_count(&stdout)
}

/// What make.py did, as the new release must see it (the fixture README tells the story).
async fn check(release: &str) {
    let (database, dir) = database_of(release).await;
    let app = spawn_on_database(database, test_args(), dir).await;
    let old_events = verified(&app).await;

    // The release kept its signing keys in clear (v4: sealed already); after the first start
    // every one that is not erased (a revoked key's is) is sealed under the master key.
    let master = authlog_crypto::MasterKey::read(&app.master_key_file()).unwrap();
    let keys = app.stored_private_keys().await;
    assert!(!keys.is_empty());
    for (kid, stored) in keys.iter().filter(|(_, stored)| !stored.is_empty()) {
        let purpose = authlog_crypto::sealed_keys::purpose(kid);
        assert!(
            master.open(&purpose, stored).is_ok(),
            "{release}: key {kid} is not sealed under the master key"
        );
    }

    // Every user logs in with the password they last set; Bob's old one no longer works.
    let alice = app.login_with("alice", "password-of-alice").await.access;
    let bob = app.login_with("Bob", "new-password-of-bob").await.access;
    let carol = app.login_with("carol", "password-of-carol").await.access;
    assert_eq!(
        app.post_json(
            "/login",
            json!({"username": "Bob", "password": "password-of-bob"}),
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED,
        "{release}: Bob's password before his change"
    );

    // Roles: alice is an admin; Bob was made auditor and admin, then lost admin; carol has none.
    assert_eq!(app.get("/admin", &alice).await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/admin", &bob).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/admin", &carol).await.status(),
        StatusCode::FORBIDDEN
    );
    let me: Value = app.get("/me", &bob).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["auditor"]), "{release}: Bob's roles");

    // Sessions fold as the old release left them: alice's first and last logins are live (the
    // second was logged out), all of carol's were revoked; each now also has this test's login.
    assert_eq!(live_sessions(&app, &alice).await, 3, "{release}: alice");
    assert_eq!(live_sessions(&app, &carol).await, 1, "{release}: carol");

    // Audit lists the old events, over HTTP and from the CLI.
    let audit: Value = app
        .get("/audit/events?username=alice&limit=1000", &alice)
        .await
        .json()
        .await
        .unwrap();
    let types: BTreeSet<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    for expected in [
        "Registered",
        "RoleGranted",
        "LoggedIn",
        "Refreshed",
        "Revoked",
        "LoginFailed",
    ] {
        assert!(
            types.contains(expected),
            "{release}: no {expected} in {types:?}"
        );
    }
    let cli = app
        .cli(&["audit", "--username", "carol", "--format", "jsonl"])
        .await;
    assert!(cli.status.success());
    let reasons: BTreeSet<String> = String::from_utf8_lossy(&cli.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        // v1 wrote a `Revoked` per session; later releases one `SessionsRevoked` for a user's
        // every session (logout_all, admin), the reason alike.
        .filter(|event| event["type"] == "Revoked" || event["type"] == "SessionsRevoked")
        .map(|event| {
            event["data"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        reasons,
        ["admin", "logout_all", "session_revoked"]
            .map(str::to_owned)
            .into(),
        "{release}: carol's revocations"
    );

    // The old accounts are in the name index: their names, and names that look like them, are
    // taken; a new account gets a stream of its own, named by its id.
    for taken in ["ALICE", "\u{430}lice", "b\u{43e}b"] {
        let refused = app
            .post_json(
                "/register",
                json!({"username": taken, "password": "a fine password"}),
            )
            .await;
        assert_eq!(refused.status(), StatusCode::CONFLICT, "{release}: {taken}");
    }
    assert_eq!(app.register("dave").await, StatusCode::CREATED);
    app.login("dave").await;
    let dave = app.user_stream("dave").await;
    assert!(
        dave.starts_with("user:") && dave.len() == 41,
        "{release}: {dave}"
    );

    // The chain goes on across the release boundary: the logins above were appended.
    let now = verified(&app).await;
    assert!(now > old_events, "{release}: {old_events} then {now}");
    // What this release wrote for the old accounts is sealed: each was given a data key.
    let written = app
        .query_texts(&format!(
            "SELECT metadata FROM events WHERE position > {old_events} AND metadata LIKE '%client_addr%'"
        ))
        .await;
    assert_eq!(written, Vec::<String>::new(), "{release}");
    let keys = app.query_texts("SELECT user_id FROM user_keys").await;
    assert!(keys.len() >= 4, "{release}: {keys:?}");
}

#[tokio::test]
async fn databases_written_by_older_releases_open_and_keep_their_users_roles_and_chain() {
    for release in RELEASES {
        check(release).await;
    }
}

/// A release before full case folding kept `straße` and `strasse` apart; today they are one
/// name. The earlier account keeps it; the later one is indexed without a name.
#[tokio::test]
async fn two_old_accounts_that_are_one_name_today_leave_the_name_to_the_earlier() {
    let app = crate::helpers::spawn_app().await;
    for name in ["straße", "strasse"] {
        let registered = json!({
            "user_id": uuid::Uuid::now_v7(),
            "username": name,
            "password_hash": crate::helpers::cheap_hash(&format!("password of {name}")).await,
        });
        // In a stream named after the name, as those releases stored it.
        app.append_as_a_newer_release(
            &format!("user:{name}"),
            "Registered",
            &registered.to_string(),
        )
        .await;
    }
    let app = app.restart().await;
    app.login_with("STRASSE", "password of straße").await;
    assert_eq!(
        app.post_json(
            "/login",
            json!({"username": "strasse", "password": "password of strasse"}),
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED,
        "the name is the earlier account's"
    );
    assert_eq!(app.register("Strasse").await, StatusCode::CONFLICT);
    assert_eq!(app.user_stream("strasse").await, "user:straße");
}
