//! The frame: the endpoint the server calls, around every request.
//!
//! It gives the request an id, hands it the application state, enforces the body's size and
//! deadline, guards against a panicking handler, turns every error into the `{"msg"}` shape
//! (CORS refusals included), adds `Allow` to 405s, records metrics and the log line, and marks
//! the answer `Cache-Control: no-store` with the security headers (CSP, `nosniff`,
//! `Referrer-Policy`, `Vary: Origin`).
//!
//! Why one endpoint and not stacked middlewares: each layer's future holds the request it was
//! given and the future of the layer inside it, and each is moved into its parent, so the
//! copies add up. Profiling `/protected` found an 8 KB future copied on every request (a third
//! of its instructions). The frame calls the routes through a boxed `DynEndpoint`, so its own
//! future stays under 2 KB, and the cookie jar and CORS wrap the routes only for the requests
//! that can use them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::FutureExt;
use metrics::{Counter, Histogram};
use poem::endpoint::{BoxEndpoint, DynEndpoint};
use poem::error::ReadBodyError;
use poem::http::{header, HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::OperationId;
use uuid::Uuid;

use crate::allow::AllowedMethods;
use crate::errors::{internal, json_error};
use crate::request::REQUEST_ID;
use crate::state::AppState;

/// The whole service as the server calls it: the frame around the routes.
pub struct Framed {
    pub state: Arc<AppState>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Time a request body may take to arrive.
    pub body_timeout: Duration,
    pub allowed: AllowedMethods,
    pub metrics: RequestMetrics,
    /// The routes behind the cookie jar and CORS, for requests that may use either.
    pub full: BoxEndpoint<'static, Response>,
    /// The routes alone, for the rest (see [`uses_cookies_or_cors`]).
    pub plain: BoxEndpoint<'static, Response>,
}

/// The per-request metric handles, registered once per route and status and then reused:
/// building a labelled key and looking it up in the recorder on every request cost more than
/// the rest of the metrics work.
#[derive(Default)]
pub struct RequestMetrics {
    handles: RwLock<HashMap<RouteStatus, (Counter, Histogram), BuildHasherDefault<Fnv>>>,
}

/// A route label and a status code.
type RouteStatus = (&'static str, u16);

/// FNV-1a, for the handles' keys: a short label and a status, from this process's own
/// operation ids (nothing a client chooses), where SipHash's defence against flooding buys
/// nothing and cost more than the rest of the lookup.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl RequestMetrics {
    fn record(&self, route: &'static str, status: StatusCode, elapsed: f64) {
        let key = (route, status.as_u16());
        if let Some((count, duration)) = self.handles.read().ok().and_then(|h| h.get(&key).cloned())
        {
            count.increment(1);
            duration.record(elapsed);
            return;
        }
        let count = metrics::counter!(
            "authlog_http_requests_total",
            "route" => route,
            "status" => status.as_str().to_owned()
        );
        let duration =
            metrics::histogram!("authlog_http_request_duration_seconds", "route" => route);
        count.increment(1);
        duration.record(elapsed);
        if let Ok(mut handles) = self.handles.write() {
            handles.insert(key, (count, duration));
        }
    }
}

impl Endpoint for Framed {
    type Output = Response;

    /// Never fails: errors, a panicking handler's included, become JSON answers.
    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let id = request_id(&mut req);
        req.extensions_mut().insert(self.state.clone());
        // A clone shares the request's bytes: the URI is kept for the log line and the labels
        // without copying the path.
        let uri = req.uri().clone();
        let method = req.method().clone();
        let routes = if uses_cookies_or_cors(&req) {
            &self.full
        } else {
            &self.plain
        };

        let answer = match read_body(&mut req, self.body_limit, self.body_timeout).await {
            // Called through `DynEndpoint`, so that this future holds only a pointer to the
            // routes' boxed future, and guarded, so that a panicking handler answers 500.
            Ok(()) => AssertUnwindSafe(DynEndpoint::call(&**routes, req))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(panicked())),
            Err(too_large) => Err(too_large),
        };
        let mut response = match answer {
            Ok(response) => response,
            Err(error) => json_error(error).await,
        };

        let elapsed = started.elapsed();
        let status = response.status();
        let path = uri.path();
        let route = route_label(&response, path);
        self.metrics.record(route, status, elapsed.as_secs_f64());
        // One line per request. Only the path: headers, query strings and bodies can carry
        // credentials, and never reach the log.
        tracing::info!(
            request_id = id.to_str().unwrap_or_default(),
            method = %method,
            route,
            path,
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );

        let headers = response.headers_mut();
        // Room for what follows at once, instead of growing the map twice on the way.
        headers.reserve(7);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            // RFC 9110 §15.5.6: a 405 lists the methods the resource does support.
            if let Some(allow) = self.allowed.for_path(path) {
                headers.insert(header::ALLOW, allow.clone());
            }
        }
        headers.insert(REQUEST_ID, id);
        headers.entry(header::CACHE_CONTROL).or_insert(NO_STORE);
        secure(headers, is_docs(path));
        Ok(response)
    }
}

/// Whether a request may need the cookie jar or CORS; the rest skip both layers (and their
/// share of every request's future). The jar is read by cookie authentication, which needs a
/// `Cookie` header, and written by the operations that set or clear cookies, none of which is a
/// GET; CORS acts only where there is an `Origin`. What is left is the bulk of the traffic:
/// bearer-token reads from API clients, and probes.
fn uses_cookies_or_cors(req: &Request) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD)
        || req.headers().contains_key(header::COOKIE)
        || req.headers().contains_key(header::ORIGIN)
}

/// A handler panicked: the client gets the usual 500 (the panic itself went to stderr).
fn panicked() -> poem::Error {
    let body = internal("a request handler panicked");
    poem::Error::from_response(
        body.with_status(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
    )
}

// The header values every answer carries, made at compile time: `HeaderValue::from_static`
// called at run time checks every byte of its text again, on every request.

/// The policy of every API answer: JSON loads nothing and is framed by nobody.
const API_POLICY: HeaderValue =
    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'");

/// Swagger UI's policy: its own scripts, styles and the spec from this origin only. React sets
/// inline `style` attributes and the icons are `data:` SVGs; no script is inline or evaluated.
const DOCS_POLICY: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'",
);
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const NO_REFERRER: HeaderValue = HeaderValue::from_static("no-referrer");
const ORIGIN: HeaderValue = HeaderValue::from_static("Origin");

/// The headers a security review checks first, on every answer: no MIME sniffing, no framing
/// (CSP `frame-ancestors`), no referrer, and `Vary: Origin`, because the CORS headers of an
/// answer depend on the request's `Origin` and a shared cache must not serve one origin's
/// answer to another.
fn secure(headers: &mut poem::http::HeaderMap, docs: bool) {
    let policy = if docs { DOCS_POLICY } else { API_POLICY };
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    headers.insert(header::REFERRER_POLICY, NO_REFERRER);
    let varies_by_origin = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("origin"))
    });
    if !varies_by_origin {
        headers.append(header::VARY, ORIGIN);
    }
}

/// The whole answer, as bytes on the wire, to a request hyper refused before any route saw it
/// (a malformed request line, two `Content-Length`s, headers too many or too long): hyper's
/// own answer has the status and an empty body, this one the contract's JSON `{"msg"}` and the
/// security headers of every other answer. The connection closes after it, as hyper's does.
pub(crate) fn protocol_error(status: StatusCode, date: Option<&[u8]>) -> Vec<u8> {
    let msg = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Request header fields too large",
        StatusCode::URI_TOO_LONG => "URI too long",
        StatusCode::PAYLOAD_TOO_LARGE => "Request body too large",
        StatusCode::NOT_IMPLEMENTED => "Not implemented",
        StatusCode::HTTP_VERSION_NOT_SUPPORTED => "HTTP version not supported",
        _ => "Malformed HTTP request",
    };
    let body = serde_json::json!({ "msg": msg }).to_string();
    let mut headers = poem::http::HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    secure(&mut headers, false);
    let mut raw = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error")
    )
    .into_bytes();
    for (name, value) in &headers {
        raw.extend_from_slice(name.as_str().as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value.as_bytes());
        raw.extend_from_slice(b"\r\n");
    }
    if let Some(date) = date {
        raw.extend_from_slice(b"date: ");
        raw.extend_from_slice(date);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(
        format!(
            "connection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    raw.extend_from_slice(body.as_bytes());
    raw
}

fn is_docs(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// The client's `X-Request-Id` if it is a sane one, else a new UUIDv7. It is left on the
/// request's headers too (replacing an insane one), where [`crate::request::Origin`] reads it
/// for the events the request causes.
fn request_id(req: &mut Request) -> HeaderValue {
    let headers = req.headers_mut();
    if let Some(id) = headers.get(REQUEST_ID).filter(|id| is_sane(id.as_bytes())) {
        return id.clone();
    }
    let mut text = Uuid::encode_buffer();
    let text = Uuid::now_v7().hyphenated().encode_lower(&mut text);
    // A UUID is hex digits and dashes, always a valid value: the fallback is never taken.
    let id = HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("-"));
    headers.insert(REQUEST_ID, id.clone());
    id
}

fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 128 && id.iter().all(u8::is_ascii_graphic)
}

/// A bounded label for the request's route: the operation id where an operation answered,
/// else a fixed name, so that paths full of ids or probes cannot explode the metric's series.
fn route_label(response: &Response, path: &str) -> &'static str {
    if let Some(operation) = response.data::<OperationId>() {
        return operation.0;
    }
    match path {
        "/openapi.json" => "openapi",
        p if is_docs(p) => "docs",
        _ => "unmatched",
    }
}

/// Reads the request body before any handler runs: at most `limit` bytes (413 beyond, whether
/// the client declared the length or streams it chunked) within `deadline` (408 after, so that a
/// client trickling a body cannot hold a request open for ever).
///
/// A declared length over the limit is refused without reading: hyper delivers no more than the
/// `Content-Length` it was given. Requests without a body (every GET) pass straight through:
/// reading one takes a 4 KiB zeroed buffer.
async fn read_body(req: &mut Request, limit: usize, deadline: Duration) -> poem::Result<()> {
    let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|len| len.parse::<u64>().ok());
    if matches!(declared, Some(len) if len > limit as u64) {
        return Err(too_large());
    }
    let body = req.take_body();
    if declared == Some(0) || body.is_empty() {
        req.set_body(body);
        return Ok(());
    }
    // Boxed, so the read buffer lives on the heap only while a body is read.
    let read = Box::pin(body.into_bytes_limit(limit));
    let bytes = tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| poem::Error::from_status(StatusCode::REQUEST_TIMEOUT))?
        .map_err(|e| match e {
            ReadBodyError::PayloadTooLarge => too_large(),
            other => other.into(),
        })?;
    req.set_body(bytes);
    Ok(())
}
