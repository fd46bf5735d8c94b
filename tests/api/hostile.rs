//! Hostile input: every answer is a 4xx JSON `{"msg"}`, nothing reaches the log, and the
//! server keeps serving.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, PASSWORD};

/// Sends `body` to `path` and checks for a 4xx with a JSON `msg`; answers the status.
async fn refused(app: &TestApp, path: &str, body: String) -> StatusCode {
    let response = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_client_error(),
        "{path} {}: {status}",
        &body[..body.len().min(80)]
    );
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{answer}"
    );
    status
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_400_and_writes_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let bodies = [
        "[]".to_owned(),
        "1".to_owned(),
        "true".to_owned(),
        "null".to_owned(),
        "\"alice\"".to_owned(),
        r#"{"username": 1, "password": 2}"#.to_owned(),
        r#"{"username": null, "password": null}"#.to_owned(),
        r#"{"username": {"nested": "alice"}, "password": "correct horse"}"#.to_owned(),
        r#"{"username": ["alice"], "password": ["correct horse"]}"#.to_owned(),
        r#"{"username": true, "password": false}"#.to_owned(),
        deep,
        "{\"username\": \"alice\", \"password\": \"correct horse\"".to_owned(),
        "\u{feff}garbage".to_owned(),
    ];
    for path in ["/register", "/login"] {
        for body in &bodies {
            assert_eq!(
                refused(&app, path, body.clone()).await,
                StatusCode::BAD_REQUEST
            );
        }
    }
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn hostile_usernames_are_400_and_write_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    for username in [
        "",
        " ",
        "a\u{0}b",
        "a\nb",
        "a\tb",
        "\u{202e}nimda",
        "a b",
        "<script>",
        &"a".repeat(10_000),
        &"é".repeat(65),
    ] {
        let body = json!({"username": username, "password": PASSWORD}).to_string();
        assert_eq!(
            refused(&app, "/register", body.clone()).await,
            StatusCode::BAD_REQUEST,
            "{username:?}"
        );
        assert_eq!(
            refused(&app, "/login", body).await,
            StatusCode::BAD_REQUEST,
            "{username:?}"
        );
    }
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_megabyte_password_is_refused_quickly_before_any_hashing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let body = json!({"username": "alice", "password": "x".repeat(1 << 20)}).to_string();
    let started = Instant::now();
    assert_eq!(
        refused(&app, "/register", body.clone()).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        refused(&app, "/login", body).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Under the body limit but over the password limit: refused by shape, still no hashing.
    let body = json!({"username": "alice", "password": "x".repeat(2_000)}).to_string();
    assert_eq!(
        refused(&app, "/register", body).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn an_8_mb_body_is_413_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let body = "x".repeat(8 << 20);
    assert_eq!(
        refused(&app, "/register", body).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(app.register("alice").await, StatusCode::CREATED);
}

#[tokio::test]
async fn long_or_malformed_authorization_headers_are_401_json() {
    let app = spawn_app().await;
    let long = format!("Bearer {}", "A".repeat(20_000));
    for header in [
        long.as_str(),
        "Bearer",
        "Bearer ",
        "Bearer a b c",
        "bearer",
        "Token abc",
        "Bearer ....",
        "Bearer \u{7f}x",
    ] {
        let Ok(value) = reqwest::header::HeaderValue::from_str(header) else {
            continue;
        };
        let response = app
            .client
            .get(app.url("/protected"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            &header[..header.len().min(40)]
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["msg"].is_string());
    }
    let non_utf8 = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    let response = app
        .client
        .get(app.url("/protected"))
        .header("authorization", non_utf8)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn generated_json_bodies_never_cause_a_server_error() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,80}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map("(username|password|set_cookies|.{0,12})", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let mut runner = TestRunner::deterministic();
    let app = spawn_app().await;
    for _ in 0..200 {
        let body = value.new_tree(&mut runner).unwrap().current();
        for path in ["/register", "/login"] {
            let response = app
                .client
                .post(app.url(path))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(
                !response.status().is_server_error(),
                "{path} {body}: {}",
                response.status()
            );
            let answer: Value = response.json().await.unwrap();
            assert!(answer.is_object(), "{answer}");
        }
    }
}
