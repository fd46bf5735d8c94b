//! Serving connections: the endpoint on hyper, with the limits a hostile network needs.
//!
//! poem's own `Server` has none of them: no header-read timeout (its HTTP/1 builder has no
//! timer), no bound on connections, and an accept loop that retries at once when `accept`
//! fails, so that running out of file descriptors turns into a busy loop that starves every
//! other client (1,100 idle connections did that to a server with the usual limit of 1,024).
//! This loop is poem's, with those limits added:
//!
//! - **connections**: at most [`ConnectionLimits::max_connections`] at once. Over the cap, the
//!   loop stops accepting and new clients wait in the kernel's backlog, as Go's
//!   `netutil.LimitListener` does, instead of being accepted and starved.
//! - **the first request**: a connection that has not sent a whole request head within
//!   [`ConnectionLimits::header_read_timeout`] of being accepted is closed, whatever the
//!   protocol (this also covers the bytes hyper reads to tell HTTP/1 from HTTP/2). Later heads
//!   on a kept-alive HTTP/1 connection have hyper's header-read timeout, with the same value.
//! - **idle connections**: no bytes either way and no request in flight for
//!   [`ConnectionLimits::idle_timeout`]: closed.
//! - **HTTP/2**: at most [`ConnectionLimits::http2_max_streams`] concurrent streams per
//!   connection, advertised in SETTINGS and enforced by refusing the excess.
//! - **accept errors** (out of descriptors, say): logged and retried after a pause that
//!   doubles up to a second, so the loop never spins.
//!
//! The request body's deadline is per request, in [`crate::frame`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::http::uri::Scheme;
use poem::http::StatusCode;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, IntoEndpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Bounds on connections. The defaults, and the reasons for them, live with the `authlog serve`
/// flags that set them (and the README's configuration table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time allowed for a request head (request line and headers) to arrive.
    pub header_read_timeout: Duration,
    /// Time a connection may stay open with no request in flight and no bytes moving.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub http2_max_streams: u32,
}

/// Serves `endpoint` on `listener` until `stop` turns true, then lets the requests in flight
/// finish for up to `drain` before it returns.
///
/// # Errors
/// When the listener has no local address.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) -> io::Result<()>
where
    E: IntoEndpoint,
    E::Endpoint: Endpoint<Output = Response> + 'static,
{
    let local = LocalAddr(Addr::SocketAddr(listener.local_addr()?));
    let endpoint: Arc<dyn Served> = Arc::new(endpoint.into_endpoint());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = Backoff::default();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        match accepted {
            Ok((stream, remote)) => {
                backoff.reset();
                let connection = Connection {
                    endpoint: endpoint.clone(),
                    local: local.clone(),
                    remote,
                    limits,
                    stop: stop.clone(),
                    drain,
                };
                tokio::spawn(async move {
                    connection.run(stream).await;
                    drop(permit);
                });
            }
            Err(e) => {
                let pause = backoff.next();
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis(), "cannot accept a connection");
                tokio::time::sleep(pause).await;
            }
        }
    }
    drop(listener);
    // Every connection holds a slot until it ends: having them all back means all have ended.
    let everyone = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(drain, slots.acquire_many(everyone))
        .await
        .is_err()
    {
        tracing::warn!(
            drain_s = drain.as_secs(),
            "connections still open after the drain; closing them"
        );
    }
    Ok(())
}

/// The endpoint as each connection shares it (a trait object, so that the connection code is
/// compiled once rather than once per endpoint type).
trait Served: Send + Sync {
    fn answer(&self, req: poem::Request) -> Pin<Box<dyn Future<Output = Response> + Send + '_>>;
}

impl<E: Endpoint<Output = Response>> Served for E {
    fn answer(&self, req: poem::Request) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        Box::pin(self.get_response(req))
    }
}

/// Pauses between failed accepts: 5 ms, doubling up to 1 s (Go's `net/http` does the same).
#[derive(Default)]
struct Backoff(Option<Duration>);

impl Backoff {
    fn next(&mut self) -> Duration {
        let pause = self.0.map_or(Duration::from_millis(5), |p| {
            (p * 2).min(Duration::from_secs(1))
        });
        self.0 = Some(pause);
        pause
    }

    fn reset(&mut self) {
        self.0 = None;
    }
}

/// One accepted connection and what it needs.
struct Connection {
    endpoint: Arc<dyn Served>,
    local: LocalAddr,
    remote: SocketAddr,
    limits: ConnectionLimits,
    stop: watch::Receiver<bool>,
    drain: Duration,
}

/// What the connection's watchdog reads: cheap flags its I/O and its requests set.
#[derive(Default)]
struct Activity {
    /// Bytes moved since the watchdog last looked.
    moved: AtomicBool,
    /// A request head has arrived on this connection.
    started: AtomicBool,
    /// Requests being answered.
    in_flight: AtomicUsize,
}

/// A request being answered, counted in [`Activity::in_flight`] until it is dropped (answered,
/// or abandoned by a client that reset its HTTP/2 stream).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many quiet checks make an idle connection: the watchdog looks every quarter of the idle
/// timeout, so an idle connection closes between 1 and 1.25 timeouts after its last byte.
const QUIET_CHECKS: u32 = 4;

impl Connection {
    async fn run(self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let service = {
            let activity = activity.clone();
            let endpoint = self.endpoint.clone();
            let local = self.local.clone();
            let remote = RemoteAddr(Addr::SocketAddr(self.remote));
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let activity = activity.clone();
                let endpoint = endpoint.clone();
                let req = poem::Request::from((req, local.clone(), remote.clone(), Scheme::HTTP));
                activity.started.store(true, Ordering::Relaxed);
                async move {
                    let _in_flight = InFlight::new(activity);
                    let response = endpoint.answer(req).await;
                    Ok::<_, Infallible>(hyper::Response::from(response))
                }
            })
        };

        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.limits.http2_max_streams)
            .max_pending_accept_reset_streams(20)
            .max_header_list_size(16 * 1024);
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: activity.clone(),
            replacing: None,
        });
        let conn = builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);

        let mut stop = self.stop;
        // `interval_at` refuses a zero period; the flags never give one, a caller in Rust might.
        let period = (self.limits.idle_timeout / QUIET_CHECKS).max(Duration::from_millis(1));
        let mut checks = tokio::time::interval_at(
            tokio::time::Instant::now() + self.limits.header_read_timeout,
            period,
        );
        let mut quiet = 0;
        let mut first = true;
        loop {
            tokio::select! {
                _ = &mut conn => return,
                _ = stop.wait_for(|stop| *stop) => break,
                _ = checks.tick() => {
                    if first && !activity.started.load(Ordering::Relaxed) {
                        tracing::debug!(remote = %self.remote, "no request head in time; closing");
                        return;
                    }
                    first = false;
                    let moved = activity.moved.swap(false, Ordering::Relaxed);
                    if moved || activity.in_flight.load(Ordering::Relaxed) > 0 {
                        quiet = 0;
                    } else {
                        quiet += 1;
                        if quiet >= QUIET_CHECKS {
                            tracing::debug!(remote = %self.remote, "idle; closing");
                            return;
                        }
                    }
                }
            }
        }
        // Shutting down: finish what is in flight (HTTP/2 sends GOAWAY), for up to the drain.
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(self.drain, conn).await;
    }
}

/// The socket, noting in [`Activity::moved`] whenever bytes go either way, and putting the
/// contract's JSON answer in place of the empty one hyper writes itself for a request it cannot
/// parse ([`hyper_refusal`]).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// The answer being written in place of hyper's, while it is.
    replacing: Option<Replacement>,
}

/// An answer written in place of the `replaced` bytes hyper handed over, `written` of it so far.
struct Replacement {
    answer: Vec<u8>,
    written: usize,
    replaced: usize,
}

/// The status of `bytes` when they are an answer hyper made itself, without the endpoint: the
/// head of a 4xx or 5xx with an empty body and none of the security headers every answer of
/// the endpoint carries ([`crate::frame`]). hyper writes one when a request cannot be parsed
/// (a malformed request line, two `Content-Length`s, too many or too long headers, 400, 414 or
/// 431) and closes the connection; it offers no way to choose what it says.
///
/// Every write of an answer passes here, so the cheap tests come first: a success is told by
/// its status digit, and only an empty error head is searched.
fn hyper_refusal(bytes: &[u8]) -> Option<(StatusCode, Option<&[u8]>)> {
    let code = bytes.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    if !matches!(code.first(), Some(b'4' | b'5')) || !bytes.ends_with(b"\r\n\r\n") {
        return None;
    }
    let status = StatusCode::from_bytes(code).ok()?;
    if !contains(bytes, b"\r\ncontent-length: 0\r\n")
        || contains(bytes, b"\r\nx-content-type-options:")
    {
        return None;
    }
    let date = bytes
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"date: "))
        .map(|date| date.strip_suffix(b"\r").unwrap_or(date));
    Some((status, date))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Watched {
    /// Writes `buf`, or, when it is hyper's own refusal (or one is being replaced), the
    /// contract's answer in its place: the whole of it before `buf` counts as written.
    fn write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            if let Some((status, date)) = hyper_refusal(buf) {
                self.replacing = Some(Replacement {
                    answer: crate::frame::protocol_error(status, date),
                    written: 0,
                    replaced: buf.len(),
                });
            }
        }
        let Some(replacing) = self.replacing.as_mut() else {
            let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
            return self.note(poll);
        };
        while replacing.written < replacing.answer.len() {
            let rest = &replacing.answer[replacing.written..];
            match Pin::new(&mut self.inner).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => replacing.written += n,
                other => return other,
            }
        }
        let replaced = replacing.replaced;
        self.replacing = None;
        self.note(Poll::Ready(Ok(replaced)))
    }
}

impl Watched {
    fn note<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if matches!(poll, Poll::Ready(Ok(_))) {
            self.activity.moved.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.note(poll)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // hyper's refusal is a head alone, in one slice.
        if let Some(first) = bufs.iter().find(|buf| !buf.is_empty()) {
            if this.replacing.is_some() || hyper_refusal(first).is_some() {
                return this.write(cx, first);
            }
        }
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_own_empty_refusals_are_replaced() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
                      content-length: 0\r\ndate: Mon, 07 Dec 2026 19:34:48 GMT\r\n\r\n";
        let (status, date) = hyper_refusal(hyper).unwrap();
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(date, Some(&b"Mon, 07 Dec 2026 19:34:48 GMT"[..]));
        let answer = String::from_utf8(crate::frame::protocol_error(status, date)).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(answer.contains("\r\nx-content-type-options: nosniff\r\n"));
        assert!(answer.contains("\r\ndate: Mon, 07 Dec 2026 19:34:48 GMT\r\n"));
        assert!(answer.ends_with("\r\n\r\n{\"msg\":\"Request header fields too large\"}"));
        // The endpoint's own answers pass as they are: an empty 4xx carries the security
        // headers, and a success is never touched.
        let ours = b"HTTP/1.1 401 Unauthorized\r\nx-content-type-options: nosniff\r\n\
                     content-length: 0\r\n\r\n";
        assert!(hyper_refusal(ours).is_none());
        assert!(hyper_refusal(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(hyper_refusal(b"{\"msg\":\"HTTP/1.1 400\"}").is_none());
    }

    #[test]
    fn failed_accepts_back_off_to_a_second_and_start_over_after_a_success() {
        let mut backoff = Backoff::default();
        let pauses: Vec<_> = (0..10).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(5));
    }
}
