//! Rules that span streams, held under many parallel clients (on SQLite, and again on
//! PostgreSQL). Each counts what happened, in the log, not only what was answered.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, test_args, TestApp, Tokens, PASSWORD};
use authlog::cli::ServeArgs;

async fn log_in_with(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/login",
        json!({"username": username, "password": password}),
    )
    .await
}

fn tokens_of(body: &Value) -> Tokens {
    Tokens {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// Whether any token of `tokens` still works: the access token at /protected, or the refresh
/// token at /refresh.
async fn still_works(app: &TestApp, tokens: &Tokens) -> bool {
    app.get("/protected", &tokens.access).await.status() == StatusCode::OK
        || app.post("/refresh", &tokens.refresh).await.status() == StatusCode::OK
}

#[tokio::test]
async fn sixty_four_parallel_guesses_have_at_most_five_passwords_checked() {
    let app = spawn_app().await;
    app.register("alice").await;
    let guesses = (0..64).map(|n| {
        let app = &app;
        async move {
            log_in_with(app, "alice", &format!("guess number {n}"))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(refused + throttled, 64, "{statuses:?}");
    // Every check of a password is reserved before it is hashed: count the reservations.
    let checked = app.events_of_type("LoginAttempted").await.len();
    assert!(checked <= 5, "{checked} passwords checked");
    assert_eq!(checked, refused);
    assert_eq!(app.events_of_type("LoginFailed").await.len(), refused);
}

#[tokio::test]
async fn wrong_current_passwords_count_toward_the_login_limit() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let change = json!({"current_password": "not my password", "new_password": "a new passphrase"});
    for _ in 0..5 {
        let response = app
            .client
            .post(app.url("/password"))
            .bearer_auth(&tokens.access)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let failed = app.events_of_type("LoginFailed").await;
    assert_eq!(failed.len(), 5, "each wrong password is recorded");
    let throttled = log_in_with(&app, "alice", PASSWORD).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let sixth = app
        .client
        .post(app.url("/password"))
        .bearer_auth(&tokens.access)
        .json(&json!({"current_password": PASSWORD, "new_password": "a new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(sixth.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn no_session_opened_with_a_password_survives_its_change_even_a_racing_one() {
    let app = Arc::new(
        spawn_app_with(ServeArgs {
            login_max_failures: 0,
            ..test_args()
        })
        .await,
    );
    for trial in 0..5 {
        let name = format!("owner{trial}");
        let owner = app.registered_and_logged_in(&name).await;
        let racers = (0..4).map(|_| {
            let (app, name) = (app.clone(), name.clone());
            tokio::spawn(async move {
                let mut opened = Vec::new();
                for _ in 0..3 {
                    let response = log_in_with(&app, &name, PASSWORD).await;
                    if response.status() == StatusCode::OK {
                        opened.push(tokens_of(&response.json().await.unwrap()));
                    }
                }
                opened
            })
        });
        let racers: Vec<_> = racers.collect();
        let change = app
            .client
            .post(app.url("/password"))
            .bearer_auth(&owner.access)
            .json(&json!({"current_password": PASSWORD, "new_password": "the new passphrase"}))
            .send()
            .await
            .unwrap();
        assert_eq!(change.status(), StatusCode::OK, "trial {trial}");
        let mut opened = Vec::new();
        for racer in racers {
            opened.extend(racer.await.unwrap());
        }
        let mut survivors = 0;
        for tokens in &opened {
            if still_works(&app, tokens).await {
                survivors += 1;
            }
        }
        assert_eq!(
            survivors,
            0,
            "trial {trial}: {survivors} of {} sessions on the old password survive",
            opened.len()
        );
        assert!(
            still_works(&app, &owner).await,
            "the owner's own session goes on"
        );
    }
}

/// Refreshes the session of `tokens` as fast as it can until told to stop; answers how many
/// refreshes succeeded.
fn keep_refreshing(
    app: &Arc<TestApp>,
    tokens: &Tokens,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    let (app, stop) = (app.clone(), stop.clone());
    let mut refresh = tokens.refresh.clone();
    tokio::spawn(async move {
        let mut done = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let response = app.post("/refresh", &refresh).await;
            if response.status() != StatusCode::OK {
                break;
            }
            let body: Value = response.json().await.unwrap();
            refresh = body["refresh_token"].as_str().unwrap().to_owned();
            done += 1;
        }
        done
    })
}

#[tokio::test]
async fn revocation_always_wins_over_refreshes_running_at_the_same_time() {
    let app = Arc::new(spawn_app().await);
    app.register("alice").await;
    // Every kind of revocation, each with refreshes of the sessions it ends running meanwhile.
    for revocation in ["logout", "logout/all", "cli", "password"] {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut sessions = vec![app.login("alice").await, app.login("alice").await];
        let loops: Vec<_> = sessions
            .iter()
            .map(|s| keep_refreshing(&app, s, &stop))
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let target = sessions.pop().unwrap();
        let ok = match revocation {
            "logout" => app.delete("/logout", &target.access).await.status() == StatusCode::OK,
            "logout/all" => {
                app.post("/logout/all", &target.access).await.status() == StatusCode::OK
            }
            "cli" => app
                .cli(&["sessions", "revoke-all", "alice"])
                .await
                .status
                .success(),
            _ => {
                let fresh = app.login("alice").await;
                let changed = app
                    .client
                    .post(app.url("/password"))
                    .bearer_auth(&fresh.access)
                    .json(&json!({"current_password": PASSWORD, "new_password": PASSWORD}))
                    .send()
                    .await
                    .unwrap();
                changed.status() == StatusCode::OK
            }
        };
        assert!(
            ok,
            "{revocation} did not succeed beside concurrent refreshes"
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for refreshing in loops {
            refreshing.await.unwrap();
        }
        // The revoked session's tokens are dead, whatever the refreshes did meanwhile.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            app.get("/protected", &target.access).await.status(),
            StatusCode::UNAUTHORIZED,
            "{revocation}"
        );
    }
}

#[tokio::test]
async fn logout_everywhere_is_one_fact_about_the_user() {
    let app = spawn_app().await;
    let first = app.registered_and_logged_in("alice").await;
    app.login("alice").await;
    app.login("alice").await;
    let response = app.post("/logout/all", &first.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], 3);
    assert_eq!(app.events_of_type("SessionsRevoked").await.len(), 1);
    assert!(app.events_of_type("Revoked").await.is_empty());
}

#[tokio::test]
async fn a_session_ends_at_its_maximum_age_however_often_it_is_refreshed() {
    let app = spawn_app_with(ServeArgs {
        session_max_age: 3_600,
        ..test_args()
    })
    .await;
    let mut tokens = app.registered_and_logged_in("alice").await;
    for _ in 0..2 {
        app.clock.advance(Duration::from_secs(20 * 60));
        let response = app.post("/refresh", &tokens.refresh).await;
        assert_eq!(response.status(), StatusCode::OK);
        tokens = tokens_of(&response.json().await.unwrap());
    }
    let sessions: Value = app
        .get("/sessions", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    let session = &sessions["sessions"][0];
    let at = |field: &str| {
        time::OffsetDateTime::parse(
            session[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(
        at("expires_at"),
        at("created_at") + time::Duration::hours(1)
    );

    app.clock.advance(Duration::from_secs(20 * 60 + 1));
    let expired = app.post("/refresh", &tokens.refresh).await;
    crate::helpers::assert_unauthorized(expired, "Token has expired").await;
}

#[tokio::test]
async fn sessions_show_the_device_they_were_opened_from() {
    let app = spawn_app().await;
    app.register("alice").await;
    let response = app
        .client
        .post(app.url("/login"))
        .header("user-agent", "Firefox/140.0 (the tests)")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let tokens = tokens_of(&response.json().await.unwrap());
    let sessions: Value = app
        .get("/sessions", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    let session = &sessions["sessions"][0];
    assert_eq!(session["user_agent"], "Firefox/140.0 (the tests)");
    assert_eq!(session["client_addr"], "127.0.0.1");
    assert_eq!(session["current"], true);
}

#[tokio::test]
async fn an_event_type_this_release_does_not_know_stops_nothing() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    // A newer release records a fact on alice's own stream that this one has never heard of.
    let stream = app.user_stream("alice").await;
    app.append_as_a_newer_release(&stream, "UserTagged", r#"{"tag":"beta"}"#)
        .await;
    // Loading alice passes over it (and counts it): she logs in as before.
    app.login("alice").await;
    let output = app.cli(&["sessions", "revoke-all", "alice"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The running server follows past the unknown row and honours the revocation after it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while app.get("/protected", &tokens.access).await.status() != StatusCode::UNAUTHORIZED {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not honoured within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.get_anonymous("/readyz").await.status(), StatusCode::OK);
    let metrics = app.get_anonymous("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("authlog_unknown_events_total"),
        "{metrics}"
    );
    let verify = app.cli(&["verify"]).await;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let audit = app.cli(&["audit", "--format", "jsonl"]).await;
    assert!(String::from_utf8_lossy(&audit.stdout).contains("\"UserTagged\""));
}

#[tokio::test]
async fn an_instance_more_than_five_seconds_behind_the_log_is_not_ready() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    assert_eq!(app.get_anonymous("/readyz").await.status(), StatusCode::OK);
    // The revocations can no longer be read (nor projected), and one is recorded: the
    // subscriber that keeps the revocation view cannot take it in...
    app.execute("ALTER TABLE revoked_sessions RENAME TO revoked_sessions_gone")
        .await;
    app.delete("/logout", &tokens.access).await;
    app.clock.advance(Duration::from_secs(6));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = app.get_anonymous("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    // ...and once it can again, it catches up and is ready.
    app.execute("ALTER TABLE revoked_sessions_gone RENAME TO revoked_sessions")
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while app.get_anonymous("/readyz").await.status() != StatusCode::OK {
        assert!(tokio::time::Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_erasure_racing_sixteen_refreshing_sessions_and_eight_logins_leaves_nothing_alive() {
    let app = Arc::new(spawn_app().await);
    app.register("alice").await;
    let sessions: Vec<Tokens> =
        futures::future::join_all((0..16).map(|_| app.login("alice"))).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refreshing: Vec<_> = sessions
        .iter()
        .map(|s| keep_refreshing(&app, s, &stop))
        .collect();
    // (Each loop rotates its session's refresh token: the one kept below is then retired,
    // and would be refused anyway; its access token is what tells.)
    // Logins keep coming until the account is gone; each keeps its tokens.
    let logging_in: Vec<_> = (0..8)
        .map(|_| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut opened = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = log_in_with(&app, "alice", PASSWORD).await;
                    if response.status() != StatusCode::OK {
                        break;
                    }
                    opened.push(tokens_of(&response.json().await.unwrap()));
                }
                opened
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let erased = app.cli(&["user", "erase", "alice"]).await;
    assert!(erased.status.success(), "{erased:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refreshes = 0;
    for task in refreshing {
        refreshes += task.await.unwrap();
    }
    let mut opened = sessions;
    for task in logging_in {
        opened.extend(task.await.unwrap());
    }
    assert!(
        refreshes > 0 && opened.len() > 16,
        "the race did not run: {refreshes} refreshes, {} sessions",
        opened.len()
    );

    // Counted in the log: nothing of alice's was recorded after her erasure (a login or a
    // refresh that read her before it lost its append), and no session of hers survives.
    let erased_at: i64 = app
        .query_texts("SELECT CAST(position AS TEXT) FROM events WHERE event_type = 'UserErased'")
        .await[0]
        .parse()
        .unwrap();
    let after = app
        .query_texts(&format!(
            "SELECT event_type FROM events WHERE position > {erased_at} \
             AND event_type IN ('LoggedIn', 'Refreshed')"
        ))
        .await;
    assert_eq!(after, Vec::<String>::new());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut alive = 0;
    for tokens in &opened {
        if still_works(&app, tokens).await {
            alive += 1;
        }
    }
    assert_eq!(alive, 0, "of {} sessions", opened.len());
    assert_eq!(
        log_in_with(&app, "alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_disable_racing_sixteen_refreshing_sessions_and_eight_logins_leaves_nothing_alive() {
    let app = Arc::new(spawn_app().await);
    app.register("root").await;
    assert!(app
        .cli(&["user", "grant-role", "root", "admin"])
        .await
        .status
        .success());
    let root = app.login("root").await.access;
    app.register("alice").await;
    let page: serde_json::Value = app
        .get("/admin/users?q=alice", &root)
        .await
        .json()
        .await
        .unwrap();
    let id = page["users"][0]["user_id"].as_str().unwrap().to_owned();
    let sessions: Vec<Tokens> =
        futures::future::join_all((0..16).map(|_| app.login("alice"))).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refreshing: Vec<_> = sessions
        .iter()
        .map(|s| keep_refreshing(&app, s, &stop))
        .collect();
    let logging_in: Vec<_> = (0..8)
        .map(|_| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut opened = Vec::new();
                let mut refused = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = log_in_with(&app, "alice", PASSWORD).await;
                    if response.status() != StatusCode::OK {
                        refused.push(response.status());
                        break;
                    }
                    opened.push(tokens_of(&response.json().await.unwrap()));
                }
                (opened, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let disabled = app.post(&format!("/admin/users/{id}/disable"), &root).await;
    assert_eq!(disabled.status(), StatusCode::OK);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refreshes = 0;
    for task in refreshing {
        refreshes += task.await.unwrap();
    }
    let mut opened = sessions;
    let mut refused = Vec::new();
    for task in logging_in {
        let (more, why) = task.await.unwrap();
        opened.extend(more);
        refused.extend(why);
    }
    assert!(
        refreshes > 0 && opened.len() > 16,
        "the race did not run: {refreshes} refreshes, {} sessions",
        opened.len()
    );
    // A login refused in the race was refused because the account was disabled.
    assert!(
        refused.iter().all(|s| *s == StatusCode::FORBIDDEN),
        "{refused:?}"
    );

    // Counted in the log: no login or refresh of alice's recorded after the disable, and no
    // session of hers survives it.
    let disabled_at: i64 = app
        .query_texts("SELECT CAST(position AS TEXT) FROM events WHERE event_type = 'UserDisabled'")
        .await[0]
        .parse()
        .unwrap();
    let after = app
        .query_texts(&format!(
            "SELECT event_type FROM events WHERE position > {disabled_at} \
             AND event_type IN ('LoggedIn', 'Refreshed')"
        ))
        .await;
    assert_eq!(after, Vec::<String>::new());
    let mut alive = 0;
    for tokens in &opened {
        if still_works(&app, tokens).await {
            alive += 1;
        }
    }
    assert_eq!(alive, 0, "of {} sessions", opened.len());
    let shown: serde_json::Value = app
        .get(&format!("/admin/users/{id}"), &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["sessions"], serde_json::json!([]), "{shown}");

    // Enabled again: a new login works, and none of the old sessions comes back.
    assert_eq!(
        app.post(&format!("/admin/users/{id}/enable"), &root)
            .await
            .status(),
        StatusCode::OK
    );
    let fresh = app.login("alice").await;
    assert!(still_works(&app, &fresh).await);
    let mut revived = 0;
    for tokens in &opened {
        if still_works(&app, tokens).await {
            revived += 1;
        }
    }
    assert_eq!(revived, 0);
}
