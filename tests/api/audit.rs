//! The audit trail over HTTP and from the CLI.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, assert_unauthorized, spawn_app, spawn_app_with, test_args, TestApp, Tokens,
    PASSWORD,
};
use authlog::cli::ServeArgs;

/// An app with an admin ("root") and a user ("alice") who did a bit of everything.
async fn busy_app() -> (TestApp, Tokens) {
    let app = spawn_app().await;
    let admin = app.logged_in_with_role("root", "admin").await;

    let alice = app.registered_and_logged_in("alice").await;
    app.post_json(
        "/login",
        json!({"username": "alice", "password": "wrong password"}),
    )
    .await;
    let refreshed: Value = app
        .post("/refresh", &alice.refresh)
        .await
        .json()
        .await
        .unwrap();
    app.client
        .post(app.url("/password"))
        .bearer_auth(&alice.access)
        .json(&json!({"current_password": PASSWORD, "new_password": "another fine password"}))
        .send()
        .await
        .unwrap();
    assert!(app
        .cli(&["user", "grant-role", "alice", "ops"])
        .await
        .status
        .success());
    app.delete("/logout", refreshed["access_token"].as_str().unwrap())
        .await;
    (app, admin)
}

async fn audit(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/audit/events{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn events(app: &TestApp, token: &str, query: &str) -> Value {
    let response = audit(app, token, query).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn types(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn by_username_it_answers_everything_about_that_user_in_order() {
    let (app, admin) = busy_app().await;
    let page = events(&app, &admin.access, "?username=ALICE").await;
    assert_eq!(
        types(&page),
        [
            "Registered",
            // Each password check is reserved before the hash, then concluded.
            "LoginAttempted",
            "LoggedIn",
            "LoginSucceeded",
            "LoginAttempted",
            "LoginFailed",
            "Refreshed",
            // A password change: checked, changed, every other session revoked in one fact.
            "LoginAttempted",
            "PasswordChanged",
            "SessionsRevoked",
            "LoginSucceeded",
            "RoleGranted",
            "Revoked"
        ]
    );
    let positions: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(page["next_after"], Value::Null);
    let first = &page["events"][0];
    for key in [
        "position",
        "type",
        "stream",
        "recorded_at",
        "data",
        "metadata",
    ] {
        assert!(first.get(key).is_some(), "{key}");
    }
    // Alice's stream is named after her id, not her name.
    assert_eq!(
        first["stream"].as_str().unwrap(),
        format!("user:{}", first["data"]["user_id"].as_str().unwrap())
    );
    assert_eq!(first["type"], "Registered");
}

#[tokio::test]
async fn every_event_records_where_the_request_came_from() {
    let (app, admin) = busy_app().await;
    let page = events(&app, &admin.access, "?username=alice&type=LoggedIn").await;
    let metadata = &page["events"][0]["metadata"];
    assert_eq!(metadata["client_addr"], "127.0.0.1");
    assert!(metadata["user_agent"].is_string() || metadata["user_agent"].is_null());
    assert!(metadata["request_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_for_is_believed_and_an_untrusted_ones_is_not() {
    let trusting = spawn_app_with(ServeArgs {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..test_args()
    })
    .await;
    let untrusting = spawn_app().await;
    for (app, expected) in [(&trusting, "198.51.100.7"), (&untrusting, "127.0.0.1")] {
        app.client
            .post(app.url("/register"))
            .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
            .header("user-agent", "audit-test/1.0")
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let registered = app.events_of_type("Registered").await;
        assert_eq!(registered.len(), 1);
        let output = app
            .cli(&["audit", "--type", "Registered", "--format", "json"])
            .await;
        let page: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(page["events"][0]["metadata"]["client_addr"], expected);
        assert_eq!(
            page["events"][0]["metadata"]["user_agent"],
            "audit-test/1.0"
        );
    }
}

#[tokio::test]
async fn type_filters_repeat_or_come_as_a_comma_list_as_on_the_command_line() {
    let (app, admin) = busy_app().await;
    let repeated = events(&app, &admin.access, "?type=Revoked&type=RoleGranted").await;
    assert_eq!(types(&repeated), ["RoleGranted", "RoleGranted", "Revoked"]);
    let listed = events(&app, &admin.access, "?type=Revoked,RoleGranted").await;
    assert_eq!(listed, repeated);
}

#[tokio::test]
async fn since_and_until_bound_the_time() {
    let (app, admin) = busy_app().await;
    let all = events(&app, &admin.access, "?limit=1000").await;
    let cut = all["events"][5]["recorded_at"].as_str().unwrap().to_owned();
    let encoded = cut.replace(':', "%3A").replace('+', "%2B");
    let after = events(&app, &admin.access, &format!("?since={encoded}&limit=1000")).await;
    let before = events(&app, &admin.access, &format!("?until={encoded}&limit=1000")).await;
    let total = all["events"].as_array().unwrap().len();
    assert_eq!(
        after["events"].as_array().unwrap().len() + before["events"].as_array().unwrap().len(),
        total
    );
    assert!(after["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["recorded_at"].as_str().unwrap() >= cut.as_str()));
    let none = events(&app, &admin.access, "?since=2999-01-01T00:00:00Z").await;
    assert!(none["events"].as_array().unwrap().is_empty());
    // An empty interval is no events, not an error.
    let backwards = "?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z";
    let none = events(&app, &admin.access, backwards).await;
    assert!(none["events"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn paging_by_next_after_walks_the_whole_log_once() {
    let (app, admin) = busy_app().await;
    let all = events(&app, &admin.access, "?limit=1000").await;
    let mut seen = vec![];
    let mut query = "?limit=3".to_owned();
    loop {
        let page = events(&app, &admin.access, &query).await;
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["position"].as_u64().unwrap()),
        );
        match page["next_after"].as_u64() {
            Some(next) => query = format!("?limit=3&after={next}"),
            None => break,
        }
    }
    let expected: Vec<u64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn bad_filters_are_400_with_a_clear_message() {
    let (app, admin) = busy_app().await;
    let cases = [
        ("?type=Nope", "unknown event type \"Nope\""),
        ("?type=Revoked,Nope", "unknown event type \"Nope\""),
        ("?type=Revoked,", "unknown event type \"\""),
        ("?after=-1", "failed to parse parameter `after`"),
        (
            "?after=9223372036854775808",
            "a position is 0 to 9223372036854775807",
        ),
        ("?username=has%20space", "invalid username filter"),
        ("?limit=0", "limit must be between 1 and 1000"),
        ("?limit=1001", "limit must be between 1 and 1000"),
        ("?since=yesterday", "failed to parse parameter `since`"),
        ("?after=minus-one", "failed to parse parameter `after`"),
    ];
    for (query, start) in cases {
        let response = audit(&app, &admin.access, query).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["msg"].as_str().unwrap().contains(start),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn the_role_gate_is_401_without_a_token_and_403_without_admin() {
    let (app, _) = busy_app().await;
    let anonymous = app.get_anonymous("/audit/events").await;
    assert_unauthorized(anonymous, "Missing Authorization Header").await;
    let user = app.registered_and_logged_in("bob").await;
    assert_error(
        audit(&app, &user.access, "").await,
        StatusCode::FORBIDDEN,
        "Admin access required",
    )
    .await;
}

#[tokio::test]
async fn an_auditor_reads_the_trail_and_nothing_an_admin_may_change() {
    let (app, _) = busy_app().await;
    let auditor = app.logged_in_with_role("siem", "auditor").await;
    let trail = events(&app, &auditor.access, "?username=alice").await;
    assert!(
        trail["events"]
            .as_array()
            .is_some_and(|events| events.len() >= 5),
        "{trail}"
    );
    for path in ["/admin", "/admin/users"] {
        let refused = app
            .client
            .get(app.url(path))
            .bearer_auth(&auditor.access)
            .send()
            .await
            .unwrap();
        assert_error(refused, StatusCode::FORBIDDEN, "Admin access required").await;
    }
}

#[tokio::test]
async fn no_audit_output_ever_holds_a_password_hash() {
    let (app, admin) = busy_app().await;
    let http = audit(&app, &admin.access, "?limit=1000")
        .await
        .text()
        .await
        .unwrap();
    assert!(http.contains("Registered") && http.contains("PasswordChanged"));
    let mut outputs = vec![http];
    for format in ["table", "json", "jsonl"] {
        let output = app
            .cli(&["audit", "--limit", "1000", "--format", format])
            .await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(String::from_utf8(output.stdout).unwrap());
    }
    for output in &outputs {
        assert!(
            !output.contains("$argon2"),
            "a password hash leaked: {output}"
        );
        assert!(!output.contains("password_hash"));
    }
}

#[tokio::test]
async fn the_cli_and_the_http_api_agree_on_the_same_data() {
    let (app, admin) = busy_app().await;
    for (query, args) in [
        ("?limit=1000", vec!["--limit", "1000"]),
        (
            "?username=alice&type=LoggedIn&type=Revoked",
            vec!["--username", "alice", "--type", "LoggedIn,Revoked"],
        ),
        ("?after=2&limit=4", vec!["--after", "2", "--limit", "4"]),
    ] {
        let http = events(&app, &admin.access, query).await;
        let mut cli = vec!["audit", "--format", "json"];
        cli.extend(args);
        let output = app.cli(&cli).await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let from_cli: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(from_cli, http, "{query}");
    }
}

#[tokio::test]
async fn the_cli_prints_jsonl_and_an_aligned_table() {
    let (app, _) = busy_app().await;
    let jsonl = app
        .cli(&["audit", "--username", "alice", "--format", "jsonl"])
        .await;
    let lines: Vec<Value> = String::from_utf8_lossy(&jsonl.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 13);
    assert_eq!(lines[0]["type"], "Registered");

    let table = app
        .cli(&["audit", "--username", "alice", "--format", "table"])
        .await;
    let text = String::from_utf8_lossy(&table.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].starts_with("POSITION") && rows[0].contains("TYPE") && rows[0].contains("CLIENT")
    );
    assert_eq!(rows.len(), 14);
    let type_column = rows[0].find("TYPE").unwrap();
    assert!(rows[1..]
        .iter()
        .all(|row| row[type_column..].starts_with(char::is_uppercase)));

    let bad = app.cli(&["audit", "--type", "Bogus"]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown event type"));
}

#[tokio::test]
async fn a_name_typed_at_logins_before_it_was_registered_is_not_its_owners_history() {
    let (app, admin) = busy_app().await;
    let typed = |name: &'static str| {
        app.post_json("/login", json!({"username": name, "password": "a guess!"}))
    };
    assert_eq!(typed("zed").await.status(), StatusCode::UNAUTHORIZED);
    let before = events(&app, &admin.access, "?username=zed").await;
    assert_eq!(types(&before), ["LoginAttempted", "LoginFailed"]);

    assert_eq!(app.register("Zed").await, StatusCode::CREATED);
    assert_eq!(typed("ZED").await.status(), StatusCode::UNAUTHORIZED);
    let page = events(&app, &admin.access, "?username=zed").await;
    assert_eq!(
        types(&page),
        ["Registered", "LoginAttempted", "LoginFailed"],
        "only what happened to the account, from its registration on"
    );
    // The analysts' table names the account (as it was registered), whatever its events'
    // subject; the checks typed while the name was free it knows only concealed. The projector
    // fills it as it follows the log: within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let named = loop {
        let named = app
            .query_texts(
                "SELECT event_type FROM audit_events WHERE username = 'Zed' ORDER BY position",
            )
            .await;
        if named.len() >= 3 || std::time::Instant::now() > deadline {
            break named;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(named, ["Registered", "LoginAttempted", "LoginFailed"]);
    let registered_at = page["events"][0]["position"].as_u64().unwrap();
    assert!(before["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["position"].as_u64().unwrap() < registered_at));
}

/// A password typed into the name box at a login is recorded only as a keyed hash: no table
/// and, on SQLite, no byte of the database files holds it.
#[tokio::test]
async fn a_name_typed_at_a_login_that_is_no_account_is_never_stored_in_clear() {
    let (app, admin) = busy_app().await;
    let typed = "Tr0ub4dor-and-3";
    let response = app
        .post_json("/login", json!({"username": typed, "password": "a guess!"}))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Audit still finds the checks by the name, while the day's key is kept.
    let page = events(&app, &admin.access, &format!("?username={typed}")).await;
    assert_eq!(types(&page), ["LoginAttempted", "LoginFailed"]);
    let stream = page["events"][0]["stream"].as_str().unwrap();
    assert!(stream.starts_with("login:name:"), "{stream}");

    for form in [typed.to_owned(), typed.to_lowercase()] {
        let found = app
            .query_texts(&format!(
                "SELECT stream_id FROM events WHERE stream_id LIKE '%{form}%' \
                 OR subject LIKE '%{form}%' OR payload LIKE '%{form}%' \
                 OR metadata LIKE '%{form}%'"
            ))
            .await;
        assert!(found.is_empty(), "{form} in {found:?}");
    }
    if matches!(crate::helpers::backend(), crate::helpers::Backend::Sqlite) {
        // The database, its WAL and shared memory (and the key file, random bytes).
        let files = crate::helpers::raw_files(app.dir_path());
        for form in [typed.to_owned(), typed.to_lowercase()] {
            assert!(
                !crate::helpers::contains(&files, form.as_bytes()),
                "the name is in a database file"
            );
        }
    }
}
