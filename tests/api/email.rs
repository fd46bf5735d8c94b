//! Email through a real mail server (aiosmtpd): an address verified by a mailed code, a
//! forgotten password reset by one, codes that work once, expire and die after five tries,
//! `forgot` that says nothing about who exists, and an outbox that loses no mail to a crash.
//! They need the suite's Python (./test.sh installs aiosmtpd), so they are `#[ignore]`d with
//! the reason: without it they show as skipped, never as passed.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, assert_unauthorized, spawn_app, spawn_app_with, test_args, MailServer, TestApp,
    PASSWORD,
};

const WITHIN: Duration = Duration::from_secs(5);
const FORGOT: &str = "If the account exists, a reset code has been sent";

async fn with_mail() -> (TestApp, MailServer) {
    let mail = MailServer::start().await;
    let app = spawn_app_with(authlog::cli::ServeArgs {
        smtp_url: Some(mail.url()),
        mail_from: "authlog <noreply@example.com>".into(),
        ..test_args()
    })
    .await;
    (app, mail)
}

async fn register_with(app: &TestApp, name: &str, email: &str) -> StatusCode {
    app.post_json(
        "/register",
        json!({"username": name, "password": PASSWORD, "email": email}),
    )
    .await
    .status()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn verify(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    send(
        app,
        reqwest::Method::POST,
        "/me/email/verify",
        Some(token),
        json!({"code": code}),
    )
    .await
}

async fn forgot(app: &TestApp, body: Value) -> reqwest::Response {
    send(app, reqwest::Method::POST, "/password/forgot", None, body).await
}

async fn reset(app: &TestApp, name: &str, code: &str, new_password: &str) -> reqwest::Response {
    send(
        app,
        reqwest::Method::POST,
        "/password/reset",
        None,
        json!({"username": name, "code": code, "new_password": new_password}),
    )
    .await
}

/// `name` registered with `email`, verified from the mail; answers their tokens.
async fn verified(
    app: &TestApp,
    mail: &MailServer,
    name: &str,
    email: &str,
) -> crate::helpers::Tokens {
    assert_eq!(register_with(app, name, email).await, StatusCode::CREATED);
    let tokens = app.login(name).await;
    let code = mail.code(email, 1, WITHIN).await;
    assert_eq!(
        verify(app, &tokens.access, &code).await.status(),
        StatusCode::OK
    );
    tokens
}

#[tokio::test]
async fn without_a_mail_server_the_email_operations_are_404_and_an_address_is_refused() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let response = register_with(&app, "alice", "alice@example.com").await;
    assert_eq!(response, StatusCode::BAD_REQUEST);
    assert_eq!(app.event_count().await, before, "nothing registered");
    let tokens = app.registered_and_logged_in("alice").await;
    let access = Some(tokens.access.as_str());
    for (method, path, token, body) in [
        (
            reqwest::Method::PUT,
            "/me/email",
            access,
            json!({"email": "alice@example.com"}),
        ),
        (
            reqwest::Method::POST,
            "/me/email/verify",
            access,
            json!({"code": "123456"}),
        ),
        (
            reqwest::Method::POST,
            "/password/forgot",
            None,
            json!({"username": "alice"}),
        ),
        (
            reqwest::Method::POST,
            "/password/reset",
            None,
            json!({"username": "alice", "code": "123456", "new_password": "another password"}),
        ),
    ] {
        assert_error(
            send(&app, method, path, token, body).await,
            StatusCode::NOT_FOUND,
            "Email is not enabled on this server",
        )
        .await;
    }
}

#[tokio::test]
#[ignore = "needs aiosmtpd: ./test.sh runs it"]
async fn an_address_given_at_registration_is_verified_by_the_code_mailed_to_it() {
    let (app, mail) = with_mail().await;
    assert_eq!(
        register_with(&app, "alice", "Alice@Example.com").await,
        StatusCode::CREATED
    );
    let tokens = app.login("alice").await;
    let code = mail.code("Alice@Example.com", 1, WITHIN).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_error(
        verify(&app, &tokens.access, wrong).await,
        StatusCode::BAD_REQUEST,
        "Invalid or expired code",
    )
    .await;
    let ok = verify(&app, &tokens.access, &code).await;
    assert_eq!(ok.status(), StatusCode::OK);
    // Once: the same code again is refused.
    assert_error(
        verify(&app, &tokens.access, &code).await,
        StatusCode::BAD_REQUEST,
        "Invalid or expired code",
    )
    .await;

    // A new address: a new code to it, the old address keeps nothing.
    let changed = send(
        &app,
        reqwest::Method::PUT,
        "/me/email",
        Some(&tokens.access),
        json!({"email": "alice@example.org"}),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::ACCEPTED);
    let code = mail.code("alice@example.org", 1, WITHIN).await;
    assert_eq!(
        verify(&app, &tokens.access, &code).await.status(),
        StatusCode::OK
    );
    assert_eq!(mail.mails_to("Alice@Example.com").len(), 1);

    // The log holds the facts, not the codes; the audit trail shows them.
    let stored = app
        .query_texts("SELECT payload FROM events")
        .await
        .join("\n");
    assert!(!stored.contains(&code), "a code is stored in clear");
    let types = app
        .query_texts("SELECT event_type FROM events WHERE event_type LIKE '%Mail%' OR event_type LIKE 'Email%' ORDER BY position")
        .await;
    assert_eq!(
        types,
        [
            // The wrong code and the right one each spent a try; the used code again did not
            // get as far as a try.
            "EmailChanged",
            "MailCodeIssued",
            "MailCodeTried",
            "MailCodeTried",
            "MailCodeUsed",
            "EmailVerified",
            "EmailChanged",
            "MailCodeIssued",
            "MailCodeTried",
            "MailCodeUsed",
            "EmailVerified"
        ]
    );
    // A malformed address is a 400 that changes nothing.
    let before = app.event_count().await;
    let bad = send(
        &app,
        reqwest::Method::PUT,
        "/me/email",
        Some(&tokens.access),
        json!({"email": "not an address"}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
#[ignore = "needs aiosmtpd: ./test.sh runs it"]
async fn a_forgotten_password_is_reset_by_a_mailed_code_which_ends_every_session() {
    let (app, mail) = with_mail().await;
    let tokens = verified(&app, &mail, "bob", "bob@example.com").await;
    let other = app.login("bob").await;

    let answer = forgot(&app, json!({"username": "BOB"})).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({"msg": FORGOT})
    );
    let code = mail.code("bob@example.com", 2, WITHIN).await;
    let done = reset(&app, "bob", &code, "a brand new password").await;
    assert_eq!(done.status(), StatusCode::OK);
    for old in [&tokens, &other] {
        assert_unauthorized(
            app.get("/protected", &old.access).await,
            "Token has been revoked",
        )
        .await;
    }
    assert_eq!(
        app.post_json("/login", json!({"username": "bob", "password": PASSWORD}))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    app.login_with("bob", "a brand new password").await;
    // Once.
    assert_error(
        reset(&app, "bob", &code, "yet another password").await,
        StatusCode::BAD_REQUEST,
        "Invalid or expired code",
    )
    .await;

    // By address, after the minute between two codes: case does not matter.
    let later = forgot(&app, json!({"email": "BOB@example.com"})).await;
    assert_eq!(later.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        mail.mails_to("bob@example.com").len(),
        2,
        "within the minute: no second code"
    );
}

#[tokio::test]
#[ignore = "needs aiosmtpd: ./test.sh runs it"]
async fn a_code_dies_after_five_tries_even_sixteen_parallel_ones() {
    let (app, mail) = with_mail().await;
    app.register("carol").await;
    let tokens = app.login("carol").await;
    let set = send(
        &app,
        reqwest::Method::PUT,
        "/me/email",
        Some(&tokens.access),
        json!({"email": "carol@example.com"}),
    )
    .await;
    assert_eq!(set.status(), StatusCode::ACCEPTED);
    let code = mail.code("carol@example.com", 1, WITHIN).await;
    let wrong = if code == "999999" { "888888" } else { "999999" };
    let guesses = (0..16).map(|_| verify(&app, &tokens.access, wrong));
    let answers = futures::future::join_all(guesses).await;
    assert!(answers
        .iter()
        .all(|r| r.status() == StatusCode::BAD_REQUEST));
    // Counted in the log: at most five tries were made, whatever the race.
    let tries = app
        .query_texts("SELECT event_type FROM events WHERE event_type = 'MailCodeTried'")
        .await;
    assert_eq!(tries.len(), 5, "{tries:?}");
    // The right code now: out of tries.
    assert_error(
        verify(&app, &tokens.access, &code).await,
        StatusCode::BAD_REQUEST,
        "Invalid or expired code",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs aiosmtpd: ./test.sh runs it"]
async fn forgot_answers_alike_for_an_unknown_account_and_mails_nobody() {
    let (app, mail) = with_mail().await;
    verified(&app, &mail, "dave", "dave@example.com").await;
    let mut bodies = Vec::new();
    for body in [
        json!({"username": "nobody"}),
        json!({"email": "nobody@example.com"}),
        json!({"username": "dave"}),
    ] {
        let answer = forgot(&app, body).await;
        bodies.push((answer.status(), answer.text().await.unwrap()));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    mail.code("dave@example.com", 2, WITHIN).await;
    assert!(mail.mails_to("nobody@example.com").is_empty());
    // Malformed: 400, as the contract says.
    assert_eq!(
        forgot(&app, json!({})).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        forgot(
            &app,
            json!({"username": "dave", "email": "dave@example.com"})
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST,
        "one of them, not both"
    );
    assert_eq!(
        forgot(&app, json!({"email": "@"})).await.status(),
        StatusCode::BAD_REQUEST
    );
    // A reset for a name that is no account answers as a wrong code does.
    assert_error(
        reset(&app, "nobody", "123456", "a new password").await,
        StatusCode::BAD_REQUEST,
        "Invalid or expired code",
    )
    .await;
}

#[tokio::test]
#[ignore = "needs aiosmtpd: ./test.sh runs it"]
async fn forgot_takes_as_long_for_an_unknown_account_as_for_an_existing_one() {
    let (app, mail) = with_mail().await;
    verified(&app, &mail, "erin", "erin@example.com").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..60 {
        for (name, times) in [("erin", &mut known), ("nobody", &mut unknown)] {
            let began = Instant::now();
            let answer = forgot(&app, json!({"username": name})).await;
            assert_eq!(answer.status(), StatusCode::ACCEPTED, "round {round}");
            times.push(began.elapsed());
        }
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[30], unknown[30]);
    // Answered before any lookup, the two are alike; looked up and written first (a durable
    // commit), an account's answer would take several times as long. Generous bounds still
    // catch that while the parallel suite loads the machine (bench/run.sh mail measures it
    // closely).
    let ratio = known.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.5..=2.0).contains(&ratio),
        "median {known:?} for an account, {unknown:?} for none"
    );
    mail.code("erin@example.com", 2, WITHIN).await;
}

#[tokio::test]
#[ignore = "needs aiosmtpd: ./test.sh runs it"]
async fn a_code_issued_while_the_mail_server_is_down_goes_out_after_a_restart() {
    // The mail server is not there yet: the port is reserved, nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args = authlog::cli::ServeArgs {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        ..test_args()
    };
    let app = spawn_app_with(args).await;
    assert_eq!(
        register_with(&app, "frank", "frank@example.com").await,
        StatusCode::CREATED
    );
    // The event is in the log; the delivery fails and is retried. The server stops (its
    // outbox never sent the mail), the mail server comes up, a new server starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = app.restart().await;
    let mail = MailServer::start_on(port).await;
    let tokens = app.login("frank").await;
    let code = mail
        .code("frank@example.com", 1, Duration::from_secs(40))
        .await;
    assert_eq!(
        verify(&app, &tokens.access, &code).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        mail.mails_to("frank@example.com").len(),
        1,
        "one mail per code"
    );
}
