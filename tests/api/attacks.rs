//! Tokens an attacker might try (RFC 8725): each must be refused with 401.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_unauthorized, claims, sign, spawn_app, TestApp};

/// A valid login's access-token claims and the server's key, to vary one thing at a time.
async fn genuine(app: &TestApp) -> (Value, String, Vec<u8>) {
    let tokens = app.registered_and_logged_in("alice").await;
    let (kid, key) = app.signing_key().await;
    (claims(&tokens.access), kid, key)
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[tokio::test]
async fn the_genuine_claims_resigned_are_accepted_so_the_refusals_below_are_about_one_claim() {
    let app = spawn_app().await;
    let (payload, kid, key) = genuine(&app).await;
    assert_eq!(
        app.get("/protected", &sign(&payload, &kid, &key))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn alg_none_is_refused() {
    let app = spawn_app().await;
    let (payload, kid, _) = genuine(&app).await;
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    let token = format!("{}.{}.", encode_part(&header), encode_part(&payload));
    assert_unauthorized(app.get("/protected", &token).await, "Invalid algorithm").await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let app = spawn_app().await;
    let (payload, kid, _) = genuine(&app).await;
    let jwks: Value = app
        .get_anonymous("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let token = jsonwebtoken::encode(
        &header,
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_unauthorized(app.get("/protected", &token).await, "Invalid algorithm").await;
}

#[tokio::test]
async fn a_tampered_payload_granting_admin_is_refused() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let mut payload = claims(&tokens.access);
    payload["roles"] = json!(["admin"]);
    let parts: Vec<&str> = tokens.access.split('.').collect();
    let token = format!("{}.{}.{}", parts[0], encode_part(&payload), parts[2]);
    assert_unauthorized(
        app.get("/admin", &token).await,
        "Signature verification failed",
    )
    .await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let app = spawn_app().await;
    let (payload, kid, key) = genuine(&app).await;
    let now = payload["iat"].as_i64().unwrap();

    let mut expired = payload.clone();
    expired["exp"] = json!(now - 10);
    assert_unauthorized(
        app.get("/protected", &sign(&expired, &kid, &key)).await,
        "Token has expired",
    )
    .await;

    let mut early = payload.clone();
    early["nbf"] = json!(now + 3600);
    assert_unauthorized(
        app.get("/protected", &sign(&early, &kid, &key)).await,
        "The token is not yet valid (nbf)",
    )
    .await;
}

#[tokio::test]
async fn a_foreign_issuer_or_audience_is_refused() {
    let app = spawn_app().await;
    let (payload, kid, key) = genuine(&app).await;
    let mut iss = payload.clone();
    iss["iss"] = json!("https://evil.example");
    assert_unauthorized(
        app.get("/protected", &sign(&iss, &kid, &key)).await,
        "Invalid issuer",
    )
    .await;
    let mut aud = payload.clone();
    aud["aud"] = json!("someone-else");
    assert_unauthorized(
        app.get("/protected", &sign(&aud, &kid, &key)).await,
        "Invalid audience",
    )
    .await;
}

#[tokio::test]
async fn unknown_and_hostile_kids_are_refused() {
    let app = spawn_app().await;
    let (payload, _, key) = genuine(&app).await;
    for kid in [
        "unknown",
        "../../../etc/passwd",
        "' OR 1=1 --",
        &"k".repeat(5_000),
    ] {
        let token = sign(&payload, kid, &key);
        assert_unauthorized(app.get("/protected", &token).await, "Unknown signing key").await;
    }
}

#[tokio::test]
async fn a_token_without_the_type_claim_or_of_another_type_is_refused() {
    let app = spawn_app().await;
    let (payload, kid, key) = genuine(&app).await;
    let mut other = payload.clone();
    other["type"] = json!("id");
    assert_unauthorized(
        app.get("/protected", &sign(&other, &kid, &key)).await,
        "Invalid type claim",
    )
    .await;
    let mut refresh = payload.clone();
    refresh["type"] = json!("refresh");
    assert_unauthorized(
        app.get("/protected", &sign(&refresh, &kid, &key)).await,
        "Only non-refresh tokens are allowed",
    )
    .await;
}

#[tokio::test]
async fn a_non_bearer_authorization_header_is_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/protected"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send()
        .await
        .unwrap();
    assert_unauthorized(
        response,
        "Missing 'Bearer' type in 'Authorization' header. Expected 'Authorization: Bearer <JWT>'",
    )
    .await;
}
