use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_unauthorized, spawn_app};

#[tokio::test]
async fn protected_answers_who_the_token_is_for() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("testuser").await;
    let response = app.get("/protected", &tokens.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"logged_in_as": "testuser"}));
}

#[tokio::test]
async fn protected_without_a_token_is_401_missing_authorization_header() {
    let app = spawn_app().await;
    let response = app.get_anonymous("/protected").await;
    assert_unauthorized(response, "Missing Authorization Header").await;
}

#[tokio::test]
async fn a_refresh_token_is_refused_at_protected() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let response = app.get("/protected", &tokens.refresh).await;
    assert_unauthorized(response, "Only non-refresh tokens are allowed").await;
}

#[tokio::test]
async fn a_tampered_token_fails_signature_verification() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let (signed, signature) = tokens.access.rsplit_once('.').unwrap();
    // Flip the first character: still valid base64url, no longer the signature.
    let first = if signature.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{signed}.{first}{}", &signature[1..]);
    let response = app.get("/protected", &forged).await;
    assert_unauthorized(response, "Signature verification failed").await;
}

#[tokio::test]
async fn garbage_tokens_are_401_with_a_short_message() {
    let app = spawn_app().await;
    for garbage in ["x", "a.b.c", &"A".repeat(8_000)] {
        let response = app.get("/protected", garbage).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{garbage}");
        let body: Value = response.json().await.unwrap();
        assert!(body["msg"].as_str().unwrap().len() < 100);
    }
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    // The default lifetime is 15 minutes; the test leeway is 0.
    app.clock
        .advance(std::time::Duration::from_secs(15 * 60 + 1));
    let response = app.get("/protected", &tokens.access).await;
    assert_unauthorized(response, "Token has expired").await;
}

#[tokio::test]
async fn me_answers_the_account_from_the_log() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("Alice").await;
    let response = app.get("/me", &tokens.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], "Alice");
    assert_eq!(body["roles"], json!([]));
    assert_eq!(
        body["user_id"],
        crate::helpers::claims(&tokens.access)["sub"]
    );
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
}
