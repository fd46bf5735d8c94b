//! Login throttling, counted from the event log.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, test_args, PASSWORD};
use authlog::cli::ServeArgs;

async fn fail(app: &crate::helpers::TestApp, username: &str) -> StatusCode {
    app.post_json(
        "/login",
        json!({"username": username, "password": "wrong password"}),
    )
    .await
    .status()
}

#[tokio::test]
async fn after_five_failures_even_the_right_password_is_429_with_retry_after() {
    let app = spawn_app().await;
    app.register("alice").await;
    for _ in 0..5 {
        assert_eq!(fail(&app, "alice").await, StatusCode::UNAUTHORIZED);
    }
    let response = app
        .post_json("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((850..=900).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["msg"].is_string());
}

#[tokio::test]
async fn other_usernames_are_unaffected_and_unknown_names_are_throttled_alike() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("bob").await;
    for _ in 0..5 {
        fail(&app, "alice").await;
        fail(&app, "ghost").await;
    }
    assert_eq!(fail(&app, "ALICE").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(fail(&app, "ghost").await, StatusCode::TOO_MANY_REQUESTS);
    app.login("bob").await;
}

#[tokio::test]
async fn logins_work_again_once_the_window_has_passed() {
    let app = spawn_app_with(ServeArgs {
        login_max_failures: 2,
        ..test_args()
    })
    .await;
    app.register("alice").await;
    fail(&app, "alice").await;
    fail(&app, "alice").await;
    let throttled = app
        .post_json("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    // The default window is 15 minutes.
    app.clock
        .advance(std::time::Duration::from_secs(15 * 60 + 1));
    app.login("alice").await;
}

#[tokio::test]
async fn the_count_is_in_the_log_so_a_restart_does_not_reset_it() {
    let app = spawn_app().await;
    app.register("alice").await;
    for _ in 0..5 {
        fail(&app, "alice").await;
    }
    let app = app.restart().await;
    let response = app
        .post_json("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// A busy account's checks are read from a snapshot kept beside its login stream, which
/// forgets the checks that succeeded: what a check reads stays a few events however many
/// logins the account had, and its failures still count, after a restart too.
#[tokio::test]
async fn a_busy_account_is_throttled_as_any_other_and_its_checks_read_from_a_snapshot() {
    let app = spawn_app().await;
    app.register("alice").await;
    let tokens = app.login("alice").await;
    let me: serde_json::Value = app.get("/me", &tokens.access).await.json().await.unwrap();
    let stream = format!("login:{}", me["user_id"].as_str().unwrap());
    for _ in 0..120 {
        app.login("alice").await;
    }
    let snapshot = format!(
        "SELECT CAST(s.version AS BIGINT), s.state, \
         CAST((SELECT MAX(stream_version) FROM events e WHERE e.stream_id = s.stream_id) AS BIGINT) \
         FROM snapshots s WHERE s.stream_id = '{stream}'"
    );
    let (kept, state, head): (i64, String, i64) = app.fetch_one(&snapshot).await;
    // 121 logins, two events each: the snapshot is kept at most a read's worth (32 events, 16
    // logins) behind, and holds nothing of the successes.
    assert!(head == 242 && head - kept <= 34, "kept at {kept} of {head}");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["log"], json!({"open": {}, "failed": []}), "{state}");

    for _ in 0..5 {
        assert_eq!(fail(&app, "alice").await, StatusCode::UNAUTHORIZED);
    }
    let app = app.restart().await;
    let response = app
        .post_json("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    app.clock
        .advance(std::time::Duration::from_secs(15 * 60 + 1));
    app.login("alice").await;
}
