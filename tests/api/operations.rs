//! Operations: metrics, readiness, configuration refusals, enumeration timing, races.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, test_args, PASSWORD};
use authlog::cli::ServeArgs;

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_promised_series() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    app.post_json(
        "/login",
        json!({"username": "alice", "password": "wrong password"}),
    )
    .await;
    app.delete("/logout", &tokens.access).await;
    let text = app.get_anonymous("/metrics").await.text().await.unwrap();
    for series in [
        r#"authlog_http_requests_total{route="login",status="200"}"#,
        r#"authlog_http_requests_total{route="login",status="401"}"#,
        "authlog_http_request_duration_seconds_bucket{route=\"register\"",
        r#"authlog_logins_total{outcome="ok"}"#,
        r#"authlog_logins_total{outcome="failed"}"#,
        r#"authlog_revocations_total{reason="logout"}"#,
        "authlog_append_duration_seconds_bucket",
        "authlog_append_batch_size_bucket",
        "authlog_revocation_set_size",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    // Unknown paths share one label, whatever they are.
    app.get_anonymous("/no/such/path/12345").await;
    let text = app.get_anonymous("/metrics").await.text().await.unwrap();
    assert!(text.contains(r#"route="unmatched""#));
    assert!(!text.contains("12345"));
}

#[tokio::test]
async fn readiness_is_503_json_when_the_store_cannot_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get_anonymous("/readyz").await.status(), StatusCode::OK);
    app.break_the_store().await;
    let response = app.get_anonymous("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert!(body["msg"].is_string());
    assert_eq!(app.get_anonymous("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn insecure_cookies_off_loopback_are_refused_unless_allowed() {
    let app = spawn_app().await;
    let output = app
        .cli(&["serve", "--bind", "0.0.0.0:0", "--cookie-secure", "false"])
        .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--allow-insecure-cookies"), "{stderr}");

    let allowed = ServeArgs {
        bind: "0.0.0.0:0".parse().unwrap(),
        cookie_secure: false,
        allow_insecure_cookies: true,
        ..test_args()
    };
    let started =
        authlog::server::Server::start(&crate::helpers::database(&app.database_url), &allowed)
            .await
            .unwrap();
    started.stop().await.unwrap();
}

#[tokio::test]
async fn an_unknown_username_takes_as_long_to_refuse_as_a_wrong_password() {
    let app = spawn_app_with(crate::helpers::real_hashing(ServeArgs {
        login_max_failures: 0,
        ..test_args()
    }))
    .await;
    app.register("alice").await;
    let time = |body: Value| {
        let request = app.client.post(app.url("/login")).json(&body);
        async move {
            let started = Instant::now();
            let status = request.send().await.unwrap().status();
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            started.elapsed()
        }
    };
    let (mut unknown, mut wrong) = (vec![], vec![]);
    for i in 0..25 {
        // Interleaved, so that load on the machine falls on both alike.
        unknown.push(time(json!({"username": format!("nobody{i}"), "password": PASSWORD})).await);
        wrong.push(time(json!({"username": "alice", "password": "not the password"})).await);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    // Without the dummy hash an unknown name is refused an order of magnitude faster (no
    // Argon2 at all), so generous bounds still catch the leak while the parallel test suite
    // loading this machine cannot make the test flaky.
    let ratio = median(unknown) / median(wrong);
    assert!(
        ratio > 0.5 && ratio < 2.0,
        "unknown/wrong median ratio {ratio:.2}"
    );
}

#[tokio::test]
async fn concurrent_role_grants_from_separate_processes_lose_nothing() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let roles: Vec<String> = (0..8).map(|i| format!("role{i}")).collect();
    let grants = roles.iter().map(|role| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_authlog"))
            .args(["user", "grant-role", "alice", role])
            .envs(crate::helpers::database_env(&app.database_url))
            .output()
    });
    for output in futures::future::join_all(grants).await {
        let output = output.unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let me: Value = app.get("/me", &tokens.access).await.json().await.unwrap();
    let mut granted: Vec<String> = me["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    granted.sort();
    assert_eq!(granted, roles);
    assert_eq!(app.events_of_type("RoleGranted").await.len(), 8);
}
