//! Changing the password: fresh token, current password, other sessions revoked.

use reqwest::StatusCode;
use serde_json::{json, Value};

use authlog::cli::ServeArgs;

use crate::helpers::{
    assert_error, assert_unauthorized, spawn_app, spawn_app_with, test_args, PASSWORD,
};

const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn a_fresh_token_and_the_current_password_change_it_and_end_the_other_sessions() {
    let app = spawn_app().await;
    let other = app.registered_and_logged_in("alice").await;
    let this = app.login("alice").await;

    let response = app
        .client
        .post(app.url("/password"))
        .bearer_auth(&this.access)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], 1);

    assert_unauthorized(
        app.get("/protected", &other.access).await,
        "Token has been revoked",
    )
    .await;
    assert_eq!(
        app.get("/protected", &this.access).await.status(),
        StatusCode::OK
    );
    let old = app
        .post_json("/login", json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = app
        .post_json(
            "/login",
            json!({"username": "alice", "password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_from_a_refresh_is_not_fresh_enough() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let refreshed: Value = app
        .post("/refresh", &tokens.refresh)
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .client
        .post(app.url("/password"))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_unauthorized(response, "Fresh token required").await;
}

#[tokio::test]
async fn a_wrong_current_password_is_401_and_changes_nothing() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    for wrong in ["not the password", "short"] {
        let response = app
            .client
            .post(app.url("/password"))
            .bearer_auth(&tokens.access)
            .json(&json!({"current_password": wrong, "new_password": NEW_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_unauthorized(response, "Current password is incorrect").await;
    }
    app.login("alice").await;
}

#[tokio::test]
async fn a_bad_body_or_a_short_new_password_is_400() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let cases = [
        (
            json!({"current_password": PASSWORD}),
            "Missing current_password or new_password",
        ),
        (
            json!({"current_password": PASSWORD, "new_password": "short"}),
            "new password must be at least 8 characters",
        ),
    ];
    for (body, msg) in cases {
        let response = app
            .client
            .post(app.url("/password"))
            .bearer_auth(&tokens.access)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, msg).await;
    }
}

#[tokio::test]
async fn without_a_token_it_is_401_even_with_a_bad_body() {
    let app = spawn_app().await;
    let response = app.post_json("/password", json!({})).await;
    assert_unauthorized(response, "Missing Authorization Header").await;
}

/// Password changes racing on one account: one wins; every other finds its current password
/// no longer right, never a server error. Counted in the log.
#[tokio::test]
async fn concurrent_changes_with_the_same_current_password_let_exactly_one_win() {
    // No throttle: the losers' wrong current passwords would lock the account, and the logins
    // below must find the winner's password.
    let app = spawn_app_with(ServeArgs {
        login_max_failures: 0,
        ..test_args()
    })
    .await;
    let token = app.registered_and_logged_in("alice").await.access;
    let candidates: Vec<String> = (0..8).map(|n| format!("{NEW_PASSWORD} {n}")).collect();
    let changes = candidates.iter().map(|new| {
        let request = app
            .client
            .post(app.url("/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": PASSWORD, "new_password": new}));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(changes).await;
    let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::OK, StatusCode::UNAUTHORIZED].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(app.events_of_type("PasswordChanged").await.len(), 1);
    let mut logs_in = 0;
    for new in &candidates {
        let status = app
            .post_json("/login", json!({"username": "alice", "password": new}))
            .await
            .status();
        logs_in += usize::from(status == StatusCode::OK);
    }
    assert_eq!(logs_in, 1, "exactly the winner's new password works");
}
