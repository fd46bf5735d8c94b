use reqwest::StatusCode;
use serde_json::Value;

use authlog::cli::ServeArgs;

use crate::helpers::{assert_unauthorized, claims, spawn_app, spawn_app_with, test_args, TestApp};

#[tokio::test]
async fn refresh_issues_a_new_pair_with_a_rotated_refresh_token_and_a_non_fresh_access_token() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let response = app.post("/refresh", &tokens.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_ne!(refresh, tokens.refresh);
    assert_eq!(claims(access)["fresh"], false);
    assert_eq!(claims(refresh)["sid"], claims(&tokens.refresh)["sid"]);
    assert_eq!(app.get("/protected", access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_access_token_is_refused_at_refresh() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    assert_unauthorized(
        app.post("/refresh", &tokens.access).await,
        "Only refresh tokens are allowed",
    )
    .await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_session() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let rotated: Value = rotated(&app, &tokens.refresh).await;

    assert_unauthorized(
        app.post("/refresh", &tokens.refresh).await,
        "Token has been revoked",
    )
    .await;

    let new_refresh = rotated["refresh_token"].as_str().unwrap();
    let new_access = rotated["access_token"].as_str().unwrap();
    assert_unauthorized(
        app.post("/refresh", new_refresh).await,
        "Token has been revoked",
    )
    .await;
    assert_unauthorized(
        app.get("/protected", new_access).await,
        "Token has been revoked",
    )
    .await;
    assert_unauthorized(
        app.get("/protected", &tokens.access).await,
        "Token has been revoked",
    )
    .await;
}

#[tokio::test]
async fn refresh_without_a_token_is_401() {
    let app = spawn_app().await;
    let response = app.client.post(app.url("/refresh")).send().await.unwrap();
    assert_unauthorized(response, "Missing Authorization Header").await;
}

/// The body of a successful `POST /refresh` with `token`.
async fn rotated(app: &TestApp, token: &str) -> Value {
    let response = app.post("/refresh", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn with_reuse_grace(seconds: u32) -> ServeArgs {
    ServeArgs {
        refresh_reuse_grace: seconds,
        ..test_args()
    }
}

/// The events recorded for the session of `token`, by type.
async fn session_events(app: &TestApp, token: &str, event_type: &str) -> usize {
    let sid = claims(token)["sid"].clone();
    app.events_of_type(event_type)
        .await
        .iter()
        .filter(|e| e["session_id"] == sid)
        .count()
}

#[tokio::test]
async fn with_a_reuse_grace_tabs_refreshing_at_once_all_get_the_same_pair_and_the_session_lives() {
    let app = spawn_app_with(with_reuse_grace(10)).await;
    let tokens = app.registered_and_logged_in("alice").await;

    let tabs = (0..16).map(|_| async {
        let response = app.post("/refresh", &tokens.refresh).await;
        let status = response.status();
        (status, response.json::<Value>().await.unwrap())
    });
    let answers = futures::future::join_all(tabs).await;

    let first = &answers[0].1;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["access_token"], first["access_token"]);
        assert_eq!(body["refresh_token"], first["refresh_token"]);
    }
    // One rotation happened, and nothing was revoked.
    assert_eq!(session_events(&app, &tokens.refresh, "Refreshed").await, 1);
    assert_eq!(session_events(&app, &tokens.refresh, "Revoked").await, 0);
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(app.get("/protected", access).await.status(), StatusCode::OK);
    assert_eq!(app.post("/refresh", refresh).await.status(), StatusCode::OK);
    assert_eq!(session_events(&app, &tokens.refresh, "Refreshed").await, 2);
}

#[tokio::test]
async fn after_the_grace_the_retired_token_still_revokes_the_session() {
    let app = spawn_app_with(with_reuse_grace(10)).await;
    let tokens = app.registered_and_logged_in("alice").await;
    let rotated: Value = rotated(&app, &tokens.refresh).await;

    app.clock.advance(std::time::Duration::from_secs(10));
    assert_unauthorized(
        app.post("/refresh", &tokens.refresh).await,
        "Token has been revoked",
    )
    .await;
    assert_unauthorized(
        app.get("/protected", rotated["access_token"].as_str().unwrap())
            .await,
        "Token has been revoked",
    )
    .await;
    assert_eq!(session_events(&app, &tokens.refresh, "Revoked").await, 1);
}

#[tokio::test]
async fn within_the_grace_a_token_older_than_the_last_rotation_still_revokes_the_session() {
    let app = spawn_app_with(with_reuse_grace(10)).await;
    let tokens = app.registered_and_logged_in("alice").await;
    let second: Value = rotated(&app, &tokens.refresh).await;
    let third = app
        .post("/refresh", second["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(third.status(), StatusCode::OK);

    assert_unauthorized(
        app.post("/refresh", &tokens.refresh).await,
        "Token has been revoked",
    )
    .await;
    assert_eq!(session_events(&app, &tokens.refresh, "Revoked").await, 1);
}
