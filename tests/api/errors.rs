//! Every error is JSON `{"msg"}`, whatever produced it.

use reqwest::StatusCode;
use serde_json::Value;

use authlog::cli::ServeArgs;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, test_args};

#[tokio::test]
async fn an_unknown_path_is_404_json() {
    let app = spawn_app().await;
    let response = app.get_anonymous("/nope").await;
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_error(response, StatusCode::NOT_FOUND, "Not Found").await;
}

#[tokio::test]
async fn a_wrong_method_is_405_json() {
    let app = spawn_app().await;
    let response = app.client.put(app.url("/login")).send().await.unwrap();
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
    )
    .await;
}

#[tokio::test]
async fn unparseable_json_is_400_and_writes_nothing() {
    let app = spawn_app().await;
    let before = app.event_count().await;
    let response = app
        .client
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["msg"]
        .as_str()
        .unwrap()
        .starts_with("Request body is not valid JSON"));
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_400_json() {
    let app = spawn_app().await;
    let form = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=a&password=b")
        .send()
        .await
        .unwrap();
    assert_error(
        form,
        StatusCode::BAD_REQUEST,
        "Content-Type must be application/json",
    )
    .await;
    let none = app
        .client
        .post(app.url("/register"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(
        none,
        StatusCode::BAD_REQUEST,
        "Content-Type must be application/json",
    )
    .await;
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let huge = format!(
        "{{\"username\":\"a\",\"password\":\"{}\"}}",
        "x".repeat(65 * 1024)
    );
    let declared = app
        .client
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    assert_error(
        declared,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body too large",
    )
    .await;

    // Streamed without a Content-Length, the limit holds all the same.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(huge)];
    let streamed = app
        .client
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_error(
        streamed,
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request body too large",
    )
    .await;

    assert_eq!(app.get_anonymous("/healthz").await.status(), StatusCode::OK);
    assert_eq!(app.event_count().await, 1, "only the signing key's event");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_honours_a_sane_one_from_the_client() {
    let app = spawn_app().await;
    let generated = app.get_anonymous("/healthz").await;
    assert!(generated.headers().contains_key("x-request-id"));
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-123");
}

#[tokio::test]
async fn cors_preflight_is_answered() {
    let app = spawn_app().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/login"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .headers()
        .contains_key("access-control-allow-origin"));
    assert_eq!(response.headers()["vary"], "Origin");
}

/// Preflights with configured origins: an allowed one is answered and varies by origin; a
/// refused one is JSON like every other error.
#[tokio::test]
async fn a_refused_cors_preflight_is_json_and_every_cors_answer_varies_by_origin() {
    let app = spawn_app_with(ServeArgs {
        cors_origins: vec!["https://app.example".into()],
        ..test_args()
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(allowed.headers()["vary"], "Origin");

    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.headers()["vary"], "Origin");
    assert!(!refused
        .headers()
        .contains_key("access-control-allow-origin"));
    assert_error(refused, StatusCode::FORBIDDEN, "request-origin not allowed").await;

    let simple = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(simple.headers()["vary"], "Origin");
}

/// What a reviewer's scanner checks first, on an API answer, an error, and Swagger UI (whose
/// policy lets its own scripts run: the browser check in openapi/ proves the page works).
#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/healthz", "/nope", "/docs/", "/openapi.json"] {
        let response = app.get_anonymous(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        if path == "/docs/" {
            assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-eval"));
        } else {
            assert!(policy.starts_with("default-src 'none'"), "{path}: {policy}");
        }
    }
}

#[tokio::test]
async fn health_and_readiness_answer_200() {
    let app = spawn_app().await;
    let health: Value = app.get_anonymous("/healthz").await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let ready: Value = app.get_anonymous("/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
}

/// What the connection answers to `request`, read to the end (the server closes it).
async fn raw_answer(app: &crate::helpers::TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr()).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server did not close the connection")
    .unwrap();
    String::from_utf8(answer).unwrap()
}

/// Requests the HTTP layer refuses before any route sees them (hyper answers them itself,
/// with an empty body): the answer is JSON and carries the security headers, as every other.
#[tokio::test]
async fn a_request_the_http_layer_cannot_parse_is_answered_in_json_with_the_security_headers() {
    let app = spawn_app().await;
    let many_headers: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    for (request, status, msg) in [
        (
            "GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"
                .to_owned(),
            "400 Bad Request",
            "Malformed HTTP request",
        ),
        (
            "GARBAGE\r\n\r\n".to_owned(),
            "400 Bad Request",
            "Malformed HTTP request",
        ),
        (
            format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n"),
            "431 Request Header Fields Too Large",
            "Request header fields too large",
        ),
    ] {
        let answer = raw_answer(&app, request.as_bytes()).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{answer}"
        );
        for header in [
            "content-type: application/json; charset=utf-8",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "cache-control: no-store",
            "connection: close",
        ] {
            assert!(
                head.contains(&format!("\r\n{header}\r\n")),
                "{header}: {answer}"
            );
        }
        assert!(head.contains("\r\ncontent-security-policy: default-src 'none'"));
        let json: Value = serde_json::from_str(body).unwrap();
        assert_eq!(json, serde_json::json!({ "msg": msg }), "{answer}");
    }
    // A well-formed request before a malformed one on the same connection is answered as
    // usual; only the refusal is replaced.
    let answer = raw_answer(
        &app,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nGARBAGE\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("{\"status\":\"ok\"}HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("{\"msg\":\"Malformed HTTP request\"}"),
        "{answer}"
    );
}
