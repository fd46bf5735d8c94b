use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_unauthorized, claims, spawn_app};

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
    let rotated: Value = app
        .post("/refresh", &tokens.refresh)
        .await
        .json()
        .await
        .unwrap();

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
