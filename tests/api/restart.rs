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
