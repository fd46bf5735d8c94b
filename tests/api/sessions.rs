//! Session management: list, revoke one, revoke all; the CLI's revoke-all.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_unauthorized, claims, spawn_app};

#[tokio::test]
async fn sessions_lists_the_callers_live_sessions_with_the_current_one_marked() {
    let app = spawn_app().await;
    let first = app.registered_and_logged_in("alice").await;
    let second = app.login("alice").await;
    let third = app.login("alice").await;
    app.delete("/logout", &third.access).await;
    app.registered_and_logged_in("bob").await;

    let body: Value = app
        .get("/sessions", &second.access)
        .await
        .json()
        .await
        .unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    let ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            claims(&first.access)["sid"].as_str().unwrap(),
            claims(&second.access)["sid"].as_str().unwrap()
        ]
    );
    assert_eq!(sessions[0]["current"], false);
    assert_eq!(sessions[1]["current"], true);
    for key in ["created_at", "last_used_at", "expires_at"] {
        assert!(sessions[0][key].is_string(), "{key}");
    }
}

#[tokio::test]
async fn revoking_one_of_my_sessions_ends_it_and_only_it() {
    let app = spawn_app().await;
    let phone = app.registered_and_logged_in("alice").await;
    let laptop = app.login("alice").await;
    let phone_sid = claims(&phone.access)["sid"].as_str().unwrap().to_owned();

    let response = app
        .delete(&format!("/sessions/{phone_sid}"), &laptop.access)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_unauthorized(
        app.get("/protected", &phone.access).await,
        "Token has been revoked",
    )
    .await;
    assert_unauthorized(
        app.post("/refresh", &phone.refresh).await,
        "Token has been revoked",
    )
    .await;
    assert_eq!(
        app.get("/protected", &laptop.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn another_users_session_id_answers_404_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.registered_and_logged_in("alice").await;
    let mallory = app.registered_and_logged_in("mallory").await;
    let alice_sid = claims(&alice.access)["sid"].as_str().unwrap().to_owned();

    let response = app
        .delete(&format!("/sessions/{alice_sid}"), &mallory.access)
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "Session not found").await;
    assert_eq!(
        app.get("/protected", &alice.access).await.status(),
        StatusCode::OK
    );

    for bogus in ["not-a-uuid", "00000000-0000-7000-8000-000000000000"] {
        let response = app
            .delete(&format!("/sessions/{bogus}"), &mallory.access)
            .await;
        assert_error(response, StatusCode::NOT_FOUND, "Session not found").await;
    }
}

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_caller_and_says_how_many() {
    let app = spawn_app().await;
    let a = app.registered_and_logged_in("alice").await;
    let b = app.login("alice").await;
    let bob = app.registered_and_logged_in("bob").await;

    let response = app.post("/logout/all", &a.access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], 2);
    assert!(body["msg"].is_string());

    for token in [&a.access, &b.access] {
        assert_unauthorized(app.get("/protected", token).await, "Token has been revoked").await;
    }
    assert_unauthorized(
        app.post("/refresh", &b.refresh).await,
        "Token has been revoked",
    )
    .await;
    assert_eq!(
        app.get("/protected", &bob.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cli_revoke_all_is_honoured_by_the_running_server_within_a_second() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let output = app.cli(&["sessions", "revoke-all", "alice"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "revoked 1 session(s) of alice"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let status = app.get("/protected", &tokens.access).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "token still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One fact about the user, not one event per session.
    assert!(app.events_of_type("Revoked").await.is_empty());
    let events = app.events_of_type("SessionsRevoked").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], json!("admin"));
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_never_both_succeed() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let attempts = (0..8).map(|_| {
        let client = app.client.clone();
        let url = app.url("/refresh");
        let token = tokens.refresh.clone();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(ok <= 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn logout_racing_refresh_ends_with_the_session_revoked_and_no_live_token() {
    let app = spawn_app().await;
    let tokens = app.registered_and_logged_in("alice").await;
    let refresh = app
        .client
        .post(app.url("/refresh"))
        .bearer_auth(&tokens.refresh)
        .send();
    let logout = app
        .client
        .delete(app.url("/logout"))
        .bearer_auth(&tokens.access)
        .send();
    let (refreshed, logged_out) = tokio::join!(refresh, logout);
    assert_eq!(logged_out.unwrap().status(), StatusCode::OK);
    let refreshed = refreshed.unwrap();
    if refreshed.status() == StatusCode::OK {
        let pair: Value = refreshed.json().await.unwrap();
        let access = pair["access_token"].as_str().unwrap();
        assert_unauthorized(
            app.get("/protected", access).await,
            "Token has been revoked",
        )
        .await;
        let refresh = pair["refresh_token"].as_str().unwrap();
        assert_unauthorized(
            app.post("/refresh", refresh).await,
            "Token has been revoked",
        )
        .await;
    }
}
