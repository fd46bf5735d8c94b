use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_unauthorized, spawn_app};

#[tokio::test]
async fn admin_without_the_role_is_403() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    assert_error(
        app.get("/admin", &tokens.access).await,
        StatusCode::FORBIDDEN,
        "Admin access required",
    )
    .await;
}

#[tokio::test]
async fn admin_is_200_after_grant_role_and_a_new_login() {
    let app = spawn_app().await;
    let before = app.registered_and_logged_in("alice").await;

    let output = app.cli(&["user", "grant-role", "alice", "admin"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "role admin granted to alice"
    );

    let after = app.login("alice").await;
    let response = app.get("/admin", &after.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"message": "Welcome, admin!"}));

    // Tokens carry roles: the token from before the grant still lacks it.
    assert_eq!(
        app.get("/admin", &before.access).await.status(),
        StatusCode::FORBIDDEN
    );
    let me: Value = app.get("/me", &before.access).await.json().await.unwrap();
    assert_eq!(me["roles"], json!(["admin"]));
}

#[tokio::test]
async fn a_refresh_picks_up_a_role_revoked_since_login() {
    let app = spawn_app().await;
    app.register("alice").await;
    assert!(app
        .cli(&["user", "grant-role", "alice", "admin"])
        .await
        .status
        .success());
    let tokens = app.login("alice").await;
    assert!(app
        .cli(&["user", "revoke-role", "alice", "admin"])
        .await
        .status
        .success());

    let refreshed: Value = app
        .post("/refresh", &tokens.refresh)
        .await
        .json()
        .await
        .unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/admin", access).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn granting_a_role_twice_records_it_once() {
    let app = spawn_app().await;
    app.register("alice").await;
    assert!(app
        .cli(&["user", "grant-role", "alice", "admin"])
        .await
        .status
        .success());
    let again = app.cli(&["user", "grant-role", "ALICE", "admin"]).await;
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing recorded"));
}

#[tokio::test]
async fn grant_role_for_an_unknown_user_or_a_bad_role_fails_with_one_line() {
    let app = spawn_app().await;
    let unknown = app.cli(&["user", "grant-role", "nobody", "admin"]).await;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no such user"), "{stderr}");

    let bad_role = app
        .cli(&["user", "grant-role", "alice", "Not A Role"])
        .await;
    assert!(!bad_role.status.success());
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("invalid role"));
}

#[tokio::test]
async fn admin_without_a_token_is_401() {
    let app = spawn_app().await;
    let response = app.get_anonymous("/admin").await;
    assert_unauthorized(response, "Missing Authorization Header").await;
}
