use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_unauthorized, spawn_app, PASSWORD};

#[tokio::test]
async fn login_answers_a_token_pair_in_the_oauth_shape() {
    let app = spawn_app().await;
    app.register("alice").await;
    let response = app
        .post_json("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(body["refresh_token"].as_str().unwrap().split('.').count() == 3);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
}

#[tokio::test]
async fn login_ignores_the_case_of_the_username() {
    let app = spawn_app().await;
    app.register("Alice").await;
    let response = app
        .post_json("/login", json!({"username": "aLiCe", "password": PASSWORD}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    app.register("alice").await;
    let wrong = app
        .post_json(
            "/login",
            json!({"username": "alice", "password": "not the password"}),
        )
        .await;
    assert_unauthorized(wrong, "Bad username or password").await;
    let unknown = app
        .post_json(
            "/login",
            json!({"username": "nobody", "password": PASSWORD}),
        )
        .await;
    assert_unauthorized(unknown, "Bad username or password").await;
}

#[tokio::test]
async fn missing_credentials_are_400() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"username": "alice"}),
        json!({"password": PASSWORD}),
        json!({"username": null, "password": PASSWORD}),
        json!([1, 2]),
    ] {
        let response = app.post_json("/login", body).await;
        assert_error(
            response,
            StatusCode::BAD_REQUEST,
            "Missing username or password",
        )
        .await;
    }
}

#[tokio::test]
async fn access_tokens_from_a_password_login_are_fresh_and_name_their_session() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let claims = crate::helpers::claims(&tokens.access);
    assert_eq!(claims["fresh"], true);
    assert_eq!(claims["type"], "access");
    assert_eq!(claims["username"], "alice");
    let refresh = crate::helpers::claims(&tokens.refresh);
    assert_eq!(refresh["type"], "refresh");
    assert_eq!(refresh["sid"], claims["sid"]);
}

/// The minimum is a rule for setting a password: login checks only the maximum. An account
/// whose password was set under a lower minimum (here, as an older release with a minimum of 6
/// would have stored it) logs in with it; a short wrong password is an ordinary failure (401),
/// and only a password past 1024 bytes is refused unread (400).
#[tokio::test]
async fn a_password_set_under_a_lower_minimum_still_logs_in() {
    let app = spawn_app().await;
    let short = "sixsix";
    let registered = json!({
        "user_id": uuid::Uuid::now_v7(),
        "username": "shorty",
        "password_hash": crate::helpers::cheap_hash(short).await,
    });
    // As a release before this one stored it (in a stream named after the name), indexed
    // when this release starts on the database.
    app.append_as_a_newer_release("user:shorty", "Registered", &registered.to_string())
        .await;
    let app = app.restart().await;

    assert_eq!(
        app.login_with("shorty", short)
            .await
            .access
            .split('.')
            .count(),
        3
    );
    assert_unauthorized(
        app.post_json("/login", json!({"username": "shorty", "password": "sixsi"}))
            .await,
        "Bad username or password",
    )
    .await;
    assert_error(
        app.post_json(
            "/login",
            json!({"username": "shorty", "password": "x".repeat(1025)}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "password must be at most 1024 bytes",
    )
    .await;
}
