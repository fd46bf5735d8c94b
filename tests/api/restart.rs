//! What the log remembers across restarts, and how the binary fails on bad configuration.

use reqwest::StatusCode;

use crate::helpers::{assert_unauthorized, spawn_app};

#[tokio::test]
async fn a_revoked_token_stays_revoked_after_a_restart() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    assert_eq!(
        app.delete("/logout", &tokens.access).await.status(),
        StatusCode::OK
    );

    let app = app.restart().await;

    assert_unauthorized(
        app.get("/protected", &tokens.access).await,
        "Token has been revoked",
    )
    .await;
    assert_unauthorized(
        app.post("/refresh", &tokens.refresh).await,
        "Token has been revoked",
    )
    .await;
}

#[tokio::test]
async fn users_and_tokens_survive_a_restart_because_keys_live_in_the_database() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;

    let app = app.restart().await;

    assert_eq!(
        app.get("/protected", &tokens.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post("/refresh", &tokens.refresh).await.status(),
        StatusCode::OK
    );
    app.login("alice").await;
}

#[tokio::test]
async fn serve_refuses_bad_configuration_with_one_line_and_a_failure_exit() {
    let app = spawn_app().await;
    let cases: [(&[&str], &str); 3] = [
        (
            &["serve", "--database-url", "mysql://localhost/x"],
            "unsupported database URL scheme",
        ),
        (
            &[
                "serve",
                "--database-url",
                "sqlite:///proc/nonexistent/dir/authlog.db",
            ],
            "cannot open database",
        ),
        (
            &["serve", "--bind", app.base.trim_start_matches("http://")],
            "cannot listen on",
        ),
    ];
    for (args, expected) in cases {
        let output = app.cli(args).await;
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("authlog: error:") && last.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn verify_reports_an_intact_log() {
    let app = spawn_app().await;
    app.registered_and_logged_in("alice").await;
    let output = app.cli(&["verify"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The first key's rotation, the registration, and the login: reserved, opened, concluded.
    assert!(stdout.starts_with("intact: 5 events"), "{stdout}");
}

/// The SQL an attacker with write access to the database runs to cut the log's last `n`
/// events: the guard dropped (disabled, on PostgreSQL), the rows deleted, the guard put back.
pub(crate) fn cut_the_tail(n: u32) -> Vec<String> {
    let delete =
        format!("DELETE FROM events WHERE position > (SELECT MAX(position) - {n} FROM events)");
    match crate::helpers::backend() {
        crate::helpers::Backend::Sqlite => vec![
            "DROP TRIGGER events_refuse_delete".into(),
            delete,
            "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events BEGIN \
             SELECT RAISE(ABORT, 'events is append-only: DELETE refused'); END"
                .into(),
        ],
        crate::helpers::Backend::Postgres => vec![
            "ALTER TABLE events DISABLE TRIGGER events_refuse_delete".into(),
            delete,
            "ALTER TABLE events ENABLE TRIGGER events_refuse_delete".into(),
        ],
    }
}

/// The log's tail cut behind the service's back (or an older backup restored under newer read
/// models): the read models have applied events the log no longer holds, and the events the
/// service writes next reuse those positions. Trusting the checkpoints would skip them for
/// good; each projection is halted instead, readiness says which and where, and a rebuild is
/// the way out.
#[tokio::test]
async fn a_checkpoint_the_log_no_longer_bears_out_halts_its_projection_until_rebuilt() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    // Logged out, and every read model holds the revocation at the head: the lagging audit
    // projection too, or readiness could name it at a position between the cut and the head
    // (CI saw "audit has applied the log up to position 5" with the head at 6).
    let logout = app.delete("/logout", &tokens.access).await;
    assert_eq!(logout.status(), StatusCode::OK);
    let head: (i64,) = app
        .fetch_one("SELECT CAST(MAX(position) AS BIGINT) FROM events")
        .await;
    let lowest = "SELECT CAST(MIN(position) AS BIGINT) FROM projections";
    let mut reached = 0;
    for _ in 0..100 {
        (reached,) = app.fetch_one(lowest).await;
        if reached == head.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(reached, head.0, "the read models did not reach the head");
    for sql in cut_the_tail(2) {
        app.execute(&sql).await;
    }
    let app = app.restart().await;

    let ready = app.get_anonymous("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    let msg = body["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "up to position {}, but the log's head is {}",
            head.0,
            head.0 - 2
        )) && msg.contains("authlog projections rebuild"),
        "{msg}"
    );
    // Reads of a halted read model fail with the reason instead of answering from it.
    let tokens = app.login("alice").await;
    let sessions = app.get("/sessions", &tokens.access).await;
    assert_eq!(sessions.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The operator sees which, and rebuilds them.
    let status = app.cli(&["projections", "status"]).await;
    assert!(!status.status.success());
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(stdout.contains("halted"), "{stdout}");
    for name in ["sessions", "users", "audit"] {
        let rebuilt = app.cli(&["projections", "rebuild", name]).await;
        assert!(
            rebuilt.status.success(),
            "{}",
            String::from_utf8_lossy(&rebuilt.stderr)
        );
    }
    let status = app.cli(&["projections", "status"]).await;
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // The running server follows them again, with the events written at the reused
    // positions applied: the new session is listed.
    let mut ready = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        ready = app.get_anonymous("/readyz").await.status();
        if ready == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ready, StatusCode::OK);
    let sessions: serde_json::Value = app
        .get("/sessions", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        2,
        "{sessions}"
    );
}
