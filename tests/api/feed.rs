//! The event feed (`GET /events/stream`): Server-Sent Events of CloudEvents, resumable.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, only_admins_and_auditors, spawn_app, TestApp};

/// One SSE event as sent: its `id`, `event` and `data` (parsed).
#[derive(Debug)]
struct Received {
    id: u64,
    event: String,
    data: Value,
}

/// A consumer reading the feed's frames as they arrive.
struct Consumer {
    response: reqwest::Response,
    buffer: String,
}

impl Consumer {
    async fn connect(app: &TestApp, token: &str, query: &str, last_id: Option<u64>) -> Self {
        let mut request = app
            .client
            .get(app.url(&format!("/events/stream{query}")))
            .bearer_auth(token);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, within `within`; `None` when none came.
    async fn next(&mut self, within: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame
                        .lines()
                        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                        .map(str::to_owned)
                };
                // A frame without data is the keep-alive comment.
                if let Some(data) = field("data") {
                    return Some(Received {
                        id: field("id").unwrap().parse().unwrap(),
                        event: field("event").unwrap(),
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .unwrap()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Every event that comes before `quiet` passes without one.
    async fn drain(&mut self, quiet: Duration) -> Vec<Received> {
        let mut all = Vec::new();
        while let Some(event) = self.next(quiet).await {
            all.push(event);
        }
        all
    }
}

async fn admin(app: &TestApp) -> String {
    app.logged_in_with_role("root", "admin").await.access
}

#[tokio::test]
async fn the_feed_sends_the_log_then_each_new_event_and_resumes_without_a_gap() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let mut consumer = Consumer::connect(&app, &token, "", None).await;
    let history = consumer.drain(Duration::from_millis(500)).await;
    let (head,): (i64,) = app
        .fetch_one("SELECT CAST(MAX(position) AS BIGINT) FROM events")
        .await;
    let ids: Vec<u64> = history.iter().map(|e| e.id).collect();
    let expected: Vec<u64> = (1..=u64::try_from(head).unwrap()).collect();
    assert_eq!(ids, expected, "the whole log, in order");

    // A new event reaches the connected consumer within a second.
    assert_eq!(app.register("alice").await, StatusCode::CREATED);
    let registered = consumer.next(Duration::from_secs(1)).await.unwrap();
    assert_eq!(registered.event, "Registered");
    let cloud = &registered.data;
    assert_eq!(cloud["specversion"], "1.0");
    assert_eq!(cloud["type"], "dev.authlog.Registered");
    assert_eq!(cloud["id"], registered.id.to_string());
    assert_eq!(cloud["authlogposition"], registered.id);
    assert_eq!(cloud["source"], "authlog");
    assert_eq!(cloud["datacontenttype"], "application/json");
    assert_eq!(cloud["data"]["type"], "Registered");
    assert_eq!(cloud["data"]["data"]["username"], "alice");
    assert!(
        !cloud["data"]["data"].to_string().contains("argon2"),
        "never a password hash: {cloud}"
    );
    assert!(
        uuid::Uuid::parse_str(cloud["subject"].as_str().unwrap()).is_ok(),
        "the subject is the user's id: {cloud}"
    );

    // Gone; the log moves on; back with Last-Event-ID: the next event, none missing.
    let last = registered.id;
    drop(consumer);
    app.login("alice").await;
    let mut consumer = Consumer::connect(&app, &token, "", Some(last)).await;
    let resumed = consumer.drain(Duration::from_millis(500)).await;
    let (head,): (i64,) = app
        .fetch_one("SELECT CAST(MAX(position) AS BIGINT) FROM events")
        .await;
    let ids: Vec<u64> = resumed.iter().map(|e| e.id).collect();
    let expected: Vec<u64> = (last + 1..=u64::try_from(head).unwrap()).collect();
    assert_eq!(ids, expected, "from just after the last one seen");
}

#[tokio::test]
async fn types_and_after_narrow_the_feed() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    app.registered_and_logged_in("alice").await;
    let mut consumer = Consumer::connect(&app, &token, "?type=Registered&after=1", None).await;
    let events = consumer.drain(Duration::from_millis(500)).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e.data["data"]["data"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "alice"]);
    assert!(events.iter().all(|e| e.event == "Registered" && e.id > 1));
    app.registered_and_logged_in("bob").await;
    let next = consumer.next(Duration::from_secs(1)).await.unwrap();
    assert_eq!(next.data["data"]["data"]["username"], "bob");
    assert!(consumer.next(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn the_feed_is_for_admins_and_auditors_and_refuses_a_bad_cursor() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let auditor = only_admins_and_auditors(&app, "/events/stream").await;
    let mut consumer = Consumer::connect(&app, &auditor.access, "", None).await;
    assert!(consumer.next(Duration::from_secs(1)).await.is_some());
    for cursor in ["yesterday", "-1", "9223372036854775808"] {
        let bad = app
            .client
            .get(app.url("/events/stream"))
            .bearer_auth(&token)
            .header("Last-Event-ID", cursor)
            .send()
            .await
            .unwrap();
        assert_error(
            bad,
            StatusCode::BAD_REQUEST,
            &format!("Last-Event-ID must be a position (a whole number), not {cursor:?}"),
        )
        .await;
    }
    let unknown = app.get("/events/stream?type=NoSuchType", &token).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let body: Value = unknown.json().await.unwrap();
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("unknown event type \"NoSuchType\""),
        "{body}"
    );
}

/// A consumer never holds a stopping server: its stream ends with the subscribers, instead of
/// the shutdown waiting out its drain (10 s) for a connection that never finishes.
#[tokio::test]
async fn a_connected_consumer_does_not_hold_a_shutdown() {
    let app = spawn_app().await;
    let token = admin(&app).await;
    let mut consumer = Consumer::connect(&app, &token, "", None).await;
    consumer.drain(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let _app = app.restart().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the shutdown waited {:?}",
        started.elapsed()
    );
    assert!(consumer.next(Duration::from_secs(1)).await.is_none());
}
