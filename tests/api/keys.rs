//! The JWKS, key rotation, HS256, and verification by an independent JOSE implementation.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{claims, claims_header, spawn_app, spawn_app_with, test_args, TestApp};
use authlog::cli::ServeArgs;

async fn jwks(app: &TestApp) -> Value {
    let response = app.get_anonymous("/.well-known/jwks.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn header(token: &str) -> Value {
    claims_header(token)
}

#[tokio::test]
async fn the_jwks_publishes_the_key_that_signs_tokens() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let set = jwks(&app).await;
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], header(&tokens.access)["kid"]);
    assert!(
        key.get("d").is_none(),
        "a private key component must never be published"
    );
}

#[tokio::test]
async fn rotating_the_key_switches_signing_while_old_tokens_keep_verifying() {
    let app = spawn_app().await;
    let before = app.registered_and_logged_in("alice").await;
    let old_kid = header(&before.access)["kid"].clone();

    let output = app.cli(&["keys", "rotate"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let after = loop {
        let tokens = app.login("alice").await;
        if header(&tokens.access)["kid"] != old_kid {
            break tokens;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still signing with the old key after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        app.get("/protected", &before.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/protected", &after.access).await.status(),
        StatusCode::OK
    );
    let kids: Vec<Value> = jwks(&app).await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, vec![old_kid, header(&after.access)["kid"].clone()]);
    let rotations = app.events_of_type("SigningKeyRotated").await;
    assert_eq!(rotations.len(), 2);
    assert!(rotations.iter().all(|e| e.get("private_key").is_none()));
}

/// Waits up to a second for the server to stop accepting `token`; answers how long it took.
async fn refused_within_a_second(app: &TestApp, token: &str) -> Duration {
    let started = tokio::time::Instant::now();
    loop {
        if app.get("/protected", token).await.status() == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a token of the revoked key still works after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn kids(set: &Value) -> Vec<Value> {
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect()
}

#[tokio::test]
async fn a_revoked_key_stops_verifying_within_a_second_and_a_new_key_signs() {
    let app = spawn_app().await;
    let before = app.registered_and_logged_in("alice").await;
    let kid = header(&before.access)["kid"].as_str().unwrap().to_owned();

    let output = app.cli(&["keys", "revoke", &kid]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    let new_kid = printed.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(printed.starts_with(&format!("revoked signing key {kid}")));

    refused_within_a_second(&app, &before.access).await;
    assert_eq!(
        app.post("/refresh", &before.refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "refresh tokens of the revoked key are refused too"
    );
    assert_eq!(kids(&jwks(&app).await), vec![Value::from(new_kid.clone())]);
    let after = app.login("alice").await;
    assert_eq!(header(&after.access)["kid"], new_kid.as_str());
    assert_eq!(
        app.get("/protected", &after.access).await.status(),
        StatusCode::OK
    );
    // The log says what happened; the database keeps no trace of the revoked key's material.
    let revoked = app.events_of_type("SigningKeyRevoked").await;
    assert_eq!(revoked, vec![serde_json::json!({ "kid": kid })]);
    assert_eq!(app.events_of_type("SigningKeyRotated").await.len(), 2);
    let (newest, _) = app.signing_key().await;
    assert_eq!(newest, new_kid);

    // It survives a restart: the revoked key is not loaded again.
    let app = app.restart().await;
    assert_eq!(
        app.get("/protected", &before.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn revoking_an_unknown_or_already_revoked_key_fails_and_changes_nothing() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let kid = header(&tokens.access)["kid"].as_str().unwrap().to_owned();
    assert!(app.cli(&["keys", "revoke", &kid]).await.status.success());
    let events = app.event_count().await;

    for bad in [kid.as_str(), "no-such-kid"] {
        let output = app.cli(&["keys", "revoke", bad]).await;
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("no signing key \"{bad}\" is in force")),
            "{stderr}"
        );
    }
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn hs256_with_a_shared_secret_is_an_opt_in_that_publishes_nothing() {
    let secret = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned();
    let app = spawn_app_with(ServeArgs {
        jwt_secret: Some(secret),
        ..test_args()
    })
    .await;
    let tokens = app.registered_and_logged_in("alice").await;
    assert_eq!(header(&tokens.access)["alg"], "HS256");
    assert_eq!(
        app.get("/protected", &tokens.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(jwks(&app).await["keys"].as_array().unwrap().len(), 0);
}

/// `authlog serve` on a free port with `args` and `env`, on `app`'s database: whether it
/// succeeded, and its stderr.
async fn serve_once(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let args = [&["serve", "--bind", "127.0.0.1:0"], args].concat();
    let output = app.cli_with_env(&args, env).await;
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_short_or_weak_hs256_secret_or_one_on_the_command_line_is_refused_at_start() {
    let app = spawn_app().await;
    let (ok, stderr) = serve_once(&app, &[], &[("AUTHLOG_JWT_SECRET", "too-short")]).await;
    assert!(!ok);
    assert!(
        stderr.trim_end().ends_with(
            "the HS256 secret in AUTHLOG_JWT_SECRET must be at least 32 bytes for HS256, got 9"
        ),
        "{stderr}"
    );

    let weak = app.dir_path().join("weak-secret");
    std::fs::write(&weak, format!("{}\n", "a".repeat(64))).unwrap();
    let (ok, stderr) = serve_once(&app, &["--jwt-secret-file", weak.to_str().unwrap()], &[]).await;
    assert!(!ok);
    assert!(
        stderr.contains("looks weak for HS256: about 0 bits of entropy"),
        "{stderr}"
    );

    // A flag would show the secret in `ps`: there is none.
    let (ok, stderr) = serve_once(&app, &["--jwt-secret", &"9f86d081".repeat(8)], &[]).await;
    assert!(!ok);
    assert!(
        stderr.contains("unexpected argument '--jwt-secret'"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_hs256_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "2jmj7l5rSw0yVb/vlWAYkK/YBwk2jmj7l5rSw0yVb/E=\n").unwrap();
    let app = spawn_app_with(ServeArgs {
        jwt_secret_file: Some(path),
        ..test_args()
    })
    .await;
    let tokens = app.registered_and_logged_in("alice").await;
    assert_eq!(header(&tokens.access)["alg"], "HS256");
    // Signed with the file's first line, without its newline.
    let key =
        jsonwebtoken::DecodingKey::from_secret(b"2jmj7l5rSw0yVb/vlWAYkK/YBwk2jmj7l5rSw0yVb/E=");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["authlog"]);
    assert!(jsonwebtoken::decode::<serde_json::Value>(&tokens.access, &key, &validation).is_ok());
}

/// PyJWT, with nothing but the JWKS URL, must accept authlog's access token. The Python
/// interpreter comes from AUTHLOG_TEST_PYTHON (set up by ./test.sh) or `python3`.
#[tokio::test]
async fn an_independent_jose_implementation_verifies_tokens_from_the_jwks_alone() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let python = std::env::var("AUTHLOG_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/verify_with_pyjwt.py"
    );
    // Asynchronously: the server runs on this test's runtime and must answer PyJWT's request.
    let output = tokio::process::Command::new(&python)
        .args([
            script,
            &app.url("/.well-known/jwks.json"),
            &tokens.access,
            "authlog",
            "authlog",
        ])
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e}; run ./test.sh, which installs PyJWT")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "PyJWT refused the token (run ./test.sh to install PyJWT):\n{stdout}\n{stderr}"
    );
    let verified: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(verified["username"], "alice");
    assert_eq!(verified["sid"], claims(&tokens.access)["sid"]);
}
