//! Two instances on one PostgreSQL database, as behind a load balancer. These need PostgreSQL
//! whichever backend the rest of the suite runs on, so they are `#[ignore]`d with the reason:
//! without a server they show as skipped, and ./test.sh runs them whenever it has one. The
//! last, how an instance's follower wakes, needs no database.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_unauthorized, drop_postgres_database, postgres_database_url, postgres_schema_url,
    spawn_on, test_args, TestApp, PASSWORD,
};

/// Instances A and B on one fresh database.
async fn pair() -> (TestApp, TestApp) {
    let url = postgres_schema_url().await;
    let a = spawn_on(url.clone(), test_args(), tempfile::tempdir().unwrap()).await;
    let b = spawn_on(url, test_args(), tempfile::tempdir().unwrap()).await;
    (a, b)
}

/// Waits up to a second for `check` to hold, as an instance follows the other's appends.
async fn within_a_second<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not seen by the other instance within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_user_registered_on_a_logs_in_on_b() {
    let (a, b) = pair().await;
    assert_eq!(a.register("alice").await, StatusCode::CREATED);
    let tokens = b.login("alice").await;
    assert_eq!(
        a.get("/protected", &tokens.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_registration_race_spread_over_a_and_b_has_exactly_one_winner() {
    let (a, b) = pair().await;
    let attempts = (0..20).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let request = app
            .client
            .post(app.url("/register"))
            .json(&json!({"username": "racer", "password": PASSWORD}));
        async move { request.send().await.unwrap().status() }
    });
    let statuses = futures::future::join_all(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 19), "{statuses:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_role_revoked_and_an_account_disabled_on_a_reach_the_tokens_b_accepts_within_a_second() {
    let (a, b) = pair().await;
    for name in ["root", "bob"] {
        a.register(name).await;
        assert!(a
            .cli(&["user", "grant-role", name, "admin"])
            .await
            .status
            .success());
    }
    let root = a.login("root").await.access;
    let bob = b.login("bob").await.access;
    assert_eq!(b.get("/admin", &bob).await.status(), StatusCode::OK);
    let page: Value = a
        .get("/admin/users?q=bob", &root)
        .await
        .json()
        .await
        .unwrap();
    let id = page["users"][0]["user_id"].as_str().unwrap().to_owned();

    let revoked = a
        .client
        .delete(a.url(&format!("/admin/users/{id}/roles/admin")))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    within_a_second(|| async { b.get("/admin", &bob).await.status() == StatusCode::FORBIDDEN })
        .await;
    // The token lost the role, nothing else.
    assert_eq!(b.get("/protected", &bob).await.status(), StatusCode::OK);

    let disabled = a.post(&format!("/admin/users/{id}/disable"), &root).await;
    assert_eq!(disabled.status(), StatusCode::OK);
    within_a_second(|| async {
        b.get("/protected", &bob).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    let login = b
        .post_json("/login", json!({"username": "bob", "password": PASSWORD}))
        .await;
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_logout_on_a_is_refused_on_b_within_a_second() {
    let (a, b) = pair().await;
    let tokens = a.registered_and_logged_in("alice").await;
    assert_eq!(
        b.get("/protected", &tokens.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        a.delete("/logout", &tokens.access).await.status(),
        StatusCode::OK
    );
    within_a_second(|| async {
        b.get("/protected", &tokens.access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_unauthorized(
        b.get("/protected", &tokens.access).await,
        "Token has been revoked",
    )
    .await;
}

/// A hundred logouts in a row, each refused on B well before B's next periodic poll (2 s): B
/// follows every one as it is announced, not only the first.
#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_hundred_logouts_on_a_are_each_refused_on_b_within_half_a_second() {
    const LOGOUTS: usize = 100;
    let (a, b) = pair().await;
    assert_eq!(a.register("alice").await, StatusCode::CREATED);
    let mut slowest = Duration::ZERO;
    for n in 0..LOGOUTS {
        let tokens = a.login("alice").await;
        assert_eq!(
            a.delete("/logout", &tokens.access).await.status(),
            StatusCode::OK
        );
        let logged_out = tokio::time::Instant::now();
        while b.get("/protected", &tokens.access).await.status() != StatusCode::UNAUTHORIZED {
            assert!(
                logged_out.elapsed() < Duration::from_millis(500),
                "logout {n} of {LOGOUTS} not seen by B within 500 ms"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        slowest = slowest.max(logged_out.elapsed());
    }
    eprintln!("slowest of {LOGOUTS} logouts to reach B: {slowest:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_refresh_token_rotated_on_a_and_replayed_on_b_triggers_reuse_detection() {
    let (a, b) = pair().await;
    let tokens = a.registered_and_logged_in("alice").await;
    let rotated: Value = a
        .post("/refresh", &tokens.refresh)
        .await
        .json()
        .await
        .unwrap();

    assert_unauthorized(
        b.post("/refresh", &tokens.refresh).await,
        "Token has been revoked",
    )
    .await;

    // The whole session is gone, on both instances.
    let new_refresh = rotated["refresh_token"].as_str().unwrap();
    let new_access = rotated["access_token"].as_str().unwrap();
    assert_unauthorized(
        a.post("/refresh", new_refresh).await,
        "Token has been revoked",
    )
    .await;
    assert_unauthorized(
        b.get("/protected", new_access).await,
        "Token has been revoked",
    )
    .await;
    within_a_second(|| async {
        a.get("/protected", new_access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn verify_passes_on_the_shared_log_after_both_instances_wrote_to_it() {
    let (a, b) = pair().await;
    a.registered_and_logged_in("alice").await;
    b.registered_and_logged_in("bob").await;
    let output = a.cli(&["verify"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("intact: "));
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn with_a_reuse_grace_tabs_refreshing_at_once_on_a_and_b_share_one_rotation() {
    let url = postgres_schema_url().await;
    let args = || authlog::cli::ServeArgs {
        refresh_reuse_grace: 10,
        ..test_args()
    };
    let a = spawn_on(url.clone(), args(), tempfile::tempdir().unwrap()).await;
    let b = spawn_on(url, args(), tempfile::tempdir().unwrap()).await;
    let tokens = a.registered_and_logged_in("alice").await;

    let tabs = (0..16).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let refresh = tokens.refresh.clone();
        async move {
            let response = app.post("/refresh", &refresh).await;
            (response.status(), response.json::<Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(tabs).await;

    let first = &answers[0].1;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["refresh_token"], first["refresh_token"]);
        assert_eq!(body["access_token"], first["access_token"]);
    }
    assert_eq!(a.events_of_type("Refreshed").await.len(), 1);
    assert_eq!(a.events_of_type("Revoked").await.len(), 0);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_key_revoked_from_the_cli_stops_verifying_on_a_and_b_within_a_second() {
    let (a, b) = pair().await;
    let tokens = a.registered_and_logged_in("alice").await;
    assert_eq!(
        b.get("/protected", &tokens.access).await.status(),
        StatusCode::OK
    );
    let kid = crate::helpers::claims_header(&tokens.access)["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    let output = a.cli(&["keys", "revoke", &kid]).await;
    assert!(output.status.success());

    for app in [&a, &b] {
        within_a_second(|| async {
            app.get("/protected", &tokens.access).await.status() == StatusCode::UNAUTHORIZED
        })
        .await;
    }
    // Both sign with the replacement, and each accepts the other's tokens.
    let on_b = b.login("alice").await;
    assert_ne!(
        crate::helpers::claims_header(&on_b.access)["kid"],
        kid.as_str()
    );
    assert_eq!(
        a.get("/protected", &on_b.access).await.status(),
        StatusCode::OK
    );
}

/// Another instance that takes the append lock and does not let go (wedged, or stopped in a
/// debugger) does not halt this one's writes for ever: they answer 503 after the lock timeout,
/// write nothing, and succeed once the lock is free.
#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_registration_stuck_behind_a_wedged_appender_answers_503_and_writes_nothing() {
    use sqlx::Connection as _;
    let (url, database) = postgres_database_url("wedged").await;
    let app = spawn_on(url.clone(), test_args(), tempfile::tempdir().unwrap()).await;
    let mut wedged = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(authlog_store::postgres::APPEND_LOCK)
        .execute(&mut wedged)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let stuck = app
        .client
        .post(app.url("/register"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(stuck.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = stuck.json().await.unwrap();
    assert_eq!(body["msg"], "Service temporarily unavailable");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "answered after {waited:?}, not after the 5 s lock timeout"
    );
    assert!(app.events_of_type("Registered").await.is_empty());

    wedged.close().await.unwrap();
    assert_eq!(app.register("alice").await, StatusCode::CREATED);
    assert_eq!(app.events_of_type("Registered").await.len(), 1);
    drop(app);
    drop_postgres_database(&database).await;
}
