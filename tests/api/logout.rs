use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_unauthorized, spawn_app};

#[tokio::test]
async fn logout_then_the_token_has_been_revoked() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("testuser").await;
    let response = app.delete("/logout", &tokens.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"msg": "Successfully logged out"}));

    assert_unauthorized(
        app.get("/protected", &tokens.access).await,
        "Token has been revoked",
    )
    .await;
}

#[tokio::test]
async fn logout_revokes_the_refresh_token_too() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    assert_eq!(
        app.delete("/logout", &tokens.access).await.status(),
        StatusCode::OK
    );
    assert_unauthorized(
        app.post("/refresh", &tokens.refresh).await,
        "Token has been revoked",
    )
    .await;
}

#[tokio::test]
async fn post_logout_works_like_delete() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    assert_eq!(
        app.post("/logout", &tokens.access).await.status(),
        StatusCode::OK
    );
    assert_unauthorized(
        app.get("/protected", &tokens.access).await,
        "Token has been revoked",
    )
    .await;
}

#[tokio::test]
async fn logout_ends_only_that_session() {
    let app = spawn_app().await;
    let first = app.registered_and_logged_in("alice").await;
    let second = app.login("alice").await;
    assert_eq!(
        app.delete("/logout", &first.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/protected", &second.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_without_a_token_is_401() {
    let app = spawn_app().await;
    let response = app.client.delete(app.url("/logout")).send().await.unwrap();
    assert_unauthorized(response, "Missing Authorization Header").await;
}

#[tokio::test]
async fn logout_is_recorded_in_the_log_as_revoked_with_reason_logout() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    app.delete("/logout", &tokens.access).await;
    let revoked = app.events_of_type("Revoked").await;
    let reason = revoked[0]["reason"].as_str().unwrap();
    assert_eq!(reason, "logout");
}
