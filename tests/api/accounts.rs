//! Account administration over HTTP (`/admin/users...`): the directory, disable and enable,
//! roles that reach tokens already issued, forced logout and erasure, each an event in audit
//! and the same verb on the command line.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, assert_unauthorized, spawn_app, TestApp, PASSWORD};

/// An admin's access token: `name` registered, granted `admin` by the command line, logged in.
async fn admin(app: &TestApp, name: &str) -> String {
    app.logged_in_with_role(name, "admin").await.access
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str) -> Response {
    reqwest::Client::new()
        .request(method, app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The user id the directory gives `name`.
async fn id_of(app: &TestApp, admin: &str, name: &str) -> String {
    let page: Value = app
        .get(&format!("/admin/users?q={name}"), admin)
        .await
        .json()
        .await
        .unwrap();
    page["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("{name} not in {page}"))["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn login_status(app: &TestApp, name: &str, password: &str) -> (StatusCode, Value) {
    let response = app
        .post_json("/login", json!({"username": name, "password": password}))
        .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn an_admin_finds_a_user_sees_their_sessions_disables_and_enables_them() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let alice = app.registered_and_logged_in("alice").await;
    app.register("alfred").await;
    app.register("bob").await;

    // Search by prefix, in any case, in order of registration.
    let page: Value = app
        .get("/admin/users?q=AL", &root)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "alfred"]);
    assert_eq!(page["next_after"], Value::Null);
    let listed = &page["users"][0];
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["roles"], json!([]));
    assert_eq!(listed["email"], Value::Null);
    assert_eq!(listed["email_verified"], false);
    assert_eq!(listed["mfa"], json!([]));
    assert!(listed["last_login_at"].is_string(), "{listed}");

    let id = id_of(&app, &root, "alice").await;
    let shown: Value = app
        .get(&format!("/admin/users/{id}"), &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["username"], "alice");
    assert_eq!(shown["sessions"].as_array().unwrap().len(), 1, "{shown}");
    assert!(shown["sessions"][0]["client_addr"].is_string(), "{shown}");

    // Disable: her tokens die at once, refresh is refused, the right password says why.
    let response = reqwest::Client::new()
        .post(app.url(&format!("/admin/users/{id}/disable")))
        .bearer_auth(&root)
        .json(&json!({"reason": "left the company"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["msg"], "User disabled; 1 session(s) revoked");
    assert_unauthorized(
        app.get("/protected", &alice.access).await,
        "Token has been revoked",
    )
    .await;
    assert_eq!(
        app.post("/refresh", &alice.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_status(&app, "alice", PASSWORD).await,
        (StatusCode::FORBIDDEN, json!({"msg": "Account disabled"}))
    );
    assert_eq!(
        login_status(&app, "alice", "not her password").await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"msg": "Bad username or password"})
        )
    );
    let disabled: Value = app
        .get("/admin/users?status=disabled", &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["users"].as_array().unwrap().len(), 1, "{disabled}");
    assert_eq!(disabled["users"][0]["username"], "alice");
    // Again: nothing more happens (no body at all is fine too).
    let again: Value = app
        .post(&format!("/admin/users/{id}/disable"), &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["msg"], "User was already disabled");

    // Her right password several times over does not lock her out once enabled.
    for _ in 0..6 {
        assert_eq!(
            login_status(&app, "alice", PASSWORD).await.0,
            StatusCode::FORBIDDEN
        );
    }
    let enabled: Value = app
        .post(&format!("/admin/users/{id}/enable"), &root)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["msg"], "User enabled");
    assert_eq!(
        login_status(&app, "alice", PASSWORD).await.0,
        StatusCode::OK
    );

    // Every step is an event in audit, the reason included (the audit table follows the log
    // within a moment).
    let since = Instant::now();
    let audit = loop {
        let audit: Value = app
            .get(
                "/audit/events?username=alice&type=UserDisabled,UserEnabled,LoginRefused",
                &root,
            )
            .await
            .json()
            .await
            .unwrap();
        if audit["events"].as_array().unwrap().len() >= 9 || since.elapsed().as_secs() > 5 {
            break audit;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let types: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types[0], "UserDisabled", "{audit}");
    assert_eq!(*types.last().unwrap(), "UserEnabled", "{audit}");
    assert_eq!(
        types.iter().filter(|t| **t == "LoginRefused").count(),
        7,
        "{audit}"
    );
    assert_eq!(
        audit["events"][0]["data"]["reason"], "left the company",
        "{audit}"
    );
}

#[tokio::test]
async fn a_revoked_role_leaves_the_tokens_already_issued_here_at_once() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let bob = admin(&app, "bob").await;
    assert_eq!(app.get("/admin", &bob).await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/audit/events", &bob).await.status(),
        StatusCode::OK
    );

    let id = id_of(&app, &root, "bob").await;
    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/admin/users/{id}/roles/admin"),
        &root,
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    // The token issued before the revoke still verifies, without the role.
    assert_error(
        app.get("/admin", &bob).await,
        StatusCode::FORBIDDEN,
        "Admin access required",
    )
    .await;
    assert_eq!(
        app.get("/audit/events", &bob).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.get("/protected", &bob).await.status(), StatusCode::OK);
    // Idempotent; granted again, a new login carries it.
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/admin/users/{id}/roles/admin"),
            &root
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    for _ in 0..2 {
        assert_eq!(
            call(
                &app,
                Method::PUT,
                &format!("/admin/users/{id}/roles/admin"),
                &root
            )
            .await
            .status(),
            StatusCode::NO_CONTENT
        );
    }
    // A second later (tokens name whole seconds), a login carries the role again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = app.login("bob").await;
    assert_eq!(
        app.get("/admin", &again.access).await.status(),
        StatusCode::OK
    );
    let grants = app.events_of_type("RoleGranted").await;
    assert_eq!(grants.len(), 3, "root, bob, bob again: {grants:?}");
}

#[tokio::test]
async fn a_role_revoked_by_the_command_line_reaches_the_servers_tokens_within_a_second() {
    let app = spawn_app().await;
    let bob = admin(&app, "bob").await;
    assert_eq!(app.get("/admin", &bob).await.status(), StatusCode::OK);
    let revoked = app.cli(&["user", "revoke-role", "bob", "admin"]).await;
    assert!(revoked.status.success(), "{revoked:?}");
    let since = Instant::now();
    let mut passed = 0;
    loop {
        match app.get("/admin", &bob).await.status() {
            StatusCode::FORBIDDEN => break,
            StatusCode::OK => passed += 1,
            other => panic!("{other}"),
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "the old token still passed {passed} checks after a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_forced_logout_ends_every_session_and_an_erasure_the_account() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let first = app.registered_and_logged_in("carol").await;
    let second = app.login("carol").await;
    let id = id_of(&app, &root, "carol").await;

    let ended = call(
        &app,
        Method::DELETE,
        &format!("/admin/users/{id}/sessions"),
        &root,
    )
    .await;
    assert_eq!(ended.status(), StatusCode::OK);
    let body: Value = ended.json().await.unwrap();
    assert_eq!(body, json!({"msg": "2 session(s) revoked", "revoked": 2}));
    for tokens in [&first, &second] {
        assert_unauthorized(
            app.get("/protected", &tokens.access).await,
            "Token has been revoked",
        )
        .await;
    }

    let third = app.login("carol").await;
    let erased = call(&app, Method::DELETE, &format!("/admin/users/{id}"), &root).await;
    assert_eq!(erased.status(), StatusCode::NO_CONTENT);
    assert_unauthorized(
        app.get("/protected", &third.access).await,
        "Token has been revoked",
    )
    .await;
    assert_error(
        app.get(&format!("/admin/users/{id}"), &root).await,
        StatusCode::NOT_FOUND,
        "User not found",
    )
    .await;
    assert_eq!(
        login_status(&app, "carol", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Erased already: 404, and nothing more is recorded.
    let before = app.event_count().await;
    assert_eq!(
        call(&app, Method::DELETE, &format!("/admin/users/{id}"), &root)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn pages_follow_each_other_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    for n in 0..7 {
        app.register(&format!("user{n}")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/admin/users?limit=3".to_owned();
    loop {
        let page: Value = app.get(&path, &root).await.json().await.unwrap();
        for user in page["users"].as_array().unwrap() {
            seen.push(user["username"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(after) => path = format!("/admin/users?limit=3&after={after}"),
            None => break,
        }
    }
    let mut expected = vec!["root".to_owned()];
    expected.extend((0..7).map(|n| format!("user{n}")));
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn bad_input_is_a_json_error_and_a_non_admin_is_refused_everywhere() {
    let app = spawn_app().await;
    let root = admin(&app, "root").await;
    let user = app.registered_and_logged_in("dave").await;
    let id = id_of(&app, &root, "dave").await;
    let before = app.event_count().await;

    for (method, path) in [
        (Method::GET, "/admin/users".to_owned()),
        (Method::GET, format!("/admin/users/{id}")),
        (Method::POST, format!("/admin/users/{id}/disable")),
        (Method::POST, format!("/admin/users/{id}/enable")),
        (Method::PUT, format!("/admin/users/{id}/roles/admin")),
        (Method::DELETE, format!("/admin/users/{id}/roles/admin")),
        (Method::DELETE, format!("/admin/users/{id}/sessions")),
        (Method::DELETE, format!("/admin/users/{id}")),
        (Method::DELETE, "/admin/users/not-a-uuid".to_owned()),
    ] {
        assert_error(
            call(&app, method.clone(), &path, &user.access).await,
            StatusCode::FORBIDDEN,
            "Admin access required",
        )
        .await;
        let anonymous = reqwest::Client::new()
            .request(method, app.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
    }

    let unknown = "01a20d07-2457-75bb-8e0f-eef855f20471";
    for (method, path) in [
        (Method::GET, format!("/admin/users/{unknown}")),
        (Method::GET, "/admin/users/not-a-uuid".to_owned()),
        (Method::POST, format!("/admin/users/{unknown}/disable")),
        (Method::POST, format!("/admin/users/{unknown}/enable")),
        (Method::PUT, format!("/admin/users/{unknown}/roles/admin")),
        (
            Method::DELETE,
            format!("/admin/users/{unknown}/roles/admin"),
        ),
        (Method::DELETE, format!("/admin/users/{unknown}/sessions")),
        (Method::DELETE, format!("/admin/users/{unknown}")),
    ] {
        assert_error(
            call(&app, method, &path, &root).await,
            StatusCode::NOT_FOUND,
            "User not found",
        )
        .await;
    }

    for path in [
        "/admin/users?limit=0",
        "/admin/users?limit=1001",
        "/admin/users?status=gone",
        "/admin/users?after=nope",
        "/admin/users?q=%20",
    ] {
        let response = app.get(path, &root).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["msg"].is_string(), "{path}: {body}");
    }
    let bad_role = call(
        &app,
        Method::PUT,
        &format!("/admin/users/{id}/roles/Not%20A%20Role"),
        &root,
    )
    .await;
    assert_eq!(bad_role.status(), StatusCode::BAD_REQUEST);
    let bad_body = reqwest::Client::new()
        .post(app.url(&format!("/admin/users/{id}/disable")))
        .bearer_auth(&root)
        .header("content-type", "application/json")
        .body("{\"reason\": 42}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_body.status(), StatusCode::BAD_REQUEST);
    let long = reqwest::Client::new()
        .post(app.url(&format!("/admin/users/{id}/disable")))
        .bearer_auth(&root)
        .json(&json!({"reason": "x".repeat(501)}))
        .send()
        .await
        .unwrap();
    assert_error(
        long,
        StatusCode::BAD_REQUEST,
        "reason must be at most 500 characters",
    )
    .await;
    assert_eq!(app.event_count().await, before, "nothing was recorded");
    assert_eq!(
        app.get("/protected", &user.access).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_command_line_shows_disables_and_enables_as_the_api_does() {
    let app = spawn_app().await;
    let erin = app.registered_and_logged_in("erin").await;
    let shown = app.cli(&["user", "show", "erin"]).await;
    assert!(shown.status.success(), "{shown:?}");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("status") && text.contains("active"), "{text}");
    assert!(text.contains("live sessions: 1"), "{text}");

    let disabled = app
        .cli(&["user", "disable", "erin", "--reason", "on leave"])
        .await;
    assert!(disabled.status.success(), "{disabled:?}");
    assert_eq!(
        String::from_utf8_lossy(&disabled.stdout).trim(),
        "disabled erin: 1 live session(s) revoked"
    );
    // Another process recorded it: the server refuses the token within a second.
    let since = Instant::now();
    while app.get("/protected", &erin.access).await.status() == StatusCode::OK {
        assert!(since.elapsed() < Duration::from_secs(1), "still accepted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        login_status(&app, "erin", PASSWORD).await.0,
        StatusCode::FORBIDDEN
    );
    let listed = app.cli(&["user", "list", "--status", "disabled"]).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains("erin"));
    let enabled = app.cli(&["user", "enable", "erin"]).await;
    assert_eq!(
        String::from_utf8_lossy(&enabled.stdout).trim(),
        "enabled erin"
    );
    assert_eq!(login_status(&app, "erin", PASSWORD).await.0, StatusCode::OK);
    let unknown = app.cli(&["user", "disable", "nobody"]).await;
    assert!(!unknown.status.success());
}
