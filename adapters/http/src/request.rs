//! Who is calling, and the middleware that prepares each request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use authlog_application::ports::Metadata;
use poem::http::{header, HeaderValue, StatusCode};
use poem::{Endpoint, FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::OperationId;
use uuid::Uuid;

use crate::state::AppState;

/// The header that carries the request id, in and out.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest user agent recorded; the rest is cut (a header can be kilobytes of junk).
const MAX_USER_AGENT: usize = 256;

/// This request's id, set by [`request_context`].
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Where the request came from, for the events it causes.
pub struct Caller(pub Metadata);

impl<'a> FromRequest<'a> for Caller {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let user_agent = req
            .header(header::USER_AGENT)
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
        let trusted = req
            .data::<Arc<AppState>>()
            .map_or(&[][..], |state| state.trusted_proxies.as_slice());
        let forwarded = req.header("x-forwarded-for");
        Ok(Self(Metadata {
            client_addr: peer.map(|peer| client_address(peer, forwarded, trusted).to_string()),
            user_agent,
            request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
        }))
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy (entries further
/// left were written by whoever sent the request and prove nothing).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(chain) = forwarded_for else {
        return peer;
    };
    let mut nearest = peer;
    for hop in chain.rsplit(',').map(str::trim) {
        let Ok(address) = hop.parse::<IpAddr>() else {
            break;
        };
        nearest = address;
        if !trusted.contains(&address) {
            break;
        }
    }
    nearest
}

/// Gives the request an id (the client's `X-Request-Id` if it is a sane one, else a new
/// UUIDv7), echoes it on the response, and marks every response `Cache-Control: no-store`:
/// answers of an auth service (tokens above all) must not sit in caches.
pub async fn request_context<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let id = req
        .header(REQUEST_ID)
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut response = next.call(req).await?.into_response();
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = route_label(&response, &path);
    metrics::counter!("authlog_http_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("authlog_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    // One line per request. Only the path: headers, query strings and bodies can carry
    // credentials, and never reach the log.
    tracing::info!(
        request_id = %id,
        method = %method,
        route,
        path = %path,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(REQUEST_ID, value);
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A bounded label for the request's route: the operation id where an operation answered,
/// else a fixed name, so that paths full of ids or probes cannot explode the metric's series.
fn route_label(response: &Response, path: &str) -> &'static str {
    if let Some(operation) = response.data::<OperationId>() {
        return operation.0;
    }
    match path {
        "/openapi.json" => "openapi",
        p if p == "/docs" || p.starts_with("/docs/") => "docs",
        _ => "unmatched",
    }
}

/// Refuses bodies over `limit` bytes with 413, whether the client declared the length or
/// streams the body chunked, before any handler buffers or parses it.
pub async fn limit_body<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    limit: usize,
) -> poem::Result<Response> {
    let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|len| len.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let body = req
        .take_body()
        .into_bytes_limit(limit)
        .await
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => too_large(),
            other => other.into(),
        })?;
    req.set_body(body);
    Ok(next.call(req).await?.into_response())
}

#[cfg(test)]
mod tests {
    use super::client_address;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            client_address(ip("203.0.113.9"), Some("1.2.3.4"), &[ip("10.0.0.1")]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let chain = "6.6.6.6, 198.51.100.7, 10.0.0.2";
        assert_eq!(
            client_address(ip("10.0.0.1"), Some(chain), &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_garbled_forwarded_header_stops_at_the_last_good_hop() {
        let trusted = [ip("10.0.0.1")];
        assert_eq!(
            client_address(ip("10.0.0.1"), Some("nonsense"), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), None, &trusted),
            ip("10.0.0.1")
        );
    }
}
