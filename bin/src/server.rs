//! `authlog serve`: the server's lifecycle. What it runs on is built by [`crate::services`].

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use authlog_application::subscribers::{wake_on, Runner};
use authlog_crypto::SystemClock;
use authlog_http::state::RenderMetrics;
use authlog_http::{ConnectionLimits, HttpConfig};
use authlog_store::postgres::redacted;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::cli::ServeArgs;
use crate::database::Database;
use crate::services::Services;

/// How long in-flight requests may take to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// A started server.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    subscribers: JoinHandle<()>,
}

impl Server {
    /// [`Server::start_with`] on `database`, with the system clock.
    ///
    /// # Errors
    /// As [`Services::open`] and [`Server::start_with`].
    pub async fn start(database: &Database, args: &ServeArgs) -> anyhow::Result<Self> {
        // Settings are checked before the database is touched (or a SQLite file made).
        check(args)?;
        let services = Services::open(database, Arc::new(SystemClock)).await?;
        Self::run(services, args).await
    }

    /// Loads (or makes) the signing keys, rebuilds the revocation view from the log, binds
    /// `args.bind` and starts serving `services` in the background.
    ///
    /// # Errors
    /// Settings that make no sense together, keys that cannot be loaded, an address that cannot
    /// be bound: each with what failed.
    pub async fn start_with(services: Services, args: &ServeArgs) -> anyhow::Result<Self> {
        check(args)?;
        Self::run(services, args).await
    }

    async fn run(services: Services, args: &ServeArgs) -> anyhow::Result<Self> {
        let serving = services.serving(args, metrics_renderer()).await?;
        let http = HttpConfig {
            body_limit: args.body_limit,
            body_timeout: Duration::from_secs(args.body_timeout.into()),
            cors_origins: args.cors_origins.clone(),
        };
        let app = authlog_http::app(serving.state, &http);

        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addr = listener
            .local_addr()
            .context("the listener has no address")?;

        let (stop, stopped) = watch::channel(false);
        let store = serving.store;
        let poll = args
            .poll_interval_ms
            .map_or_else(|| store.default_poll_interval(), Duration::from_millis);
        let subscribers = tokio::spawn(run_subscribers(
            serving.runner,
            poll,
            store.committed(),
            stopped.clone(),
        ));
        let task = tokio::spawn(authlog_http::serve(
            listener,
            app,
            connection_limits(args),
            stopped,
            DRAIN,
        ));
        Ok(Self {
            addr,
            stop,
            task,
            subscribers,
        })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    ///
    /// # Errors
    /// When the server task failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("server task panicked")??;
        self.subscribers
            .await
            .context("the subscriber task panicked")?;
        Ok(())
    }
}

/// Settings that are each valid but make no sense together, refused with one line.
fn check(args: &ServeArgs) -> anyhow::Result<()> {
    if args.access_ttl > args.refresh_ttl {
        bail!(
            "--access-ttl ({}s) must not exceed --refresh-ttl ({}s): a session must not end before its access tokens",
            args.access_ttl,
            args.refresh_ttl
        );
    }
    if !args.cookie_secure && !args.bind.ip().is_loopback() && !args.allow_insecure_cookies {
        bail!(
            "cookies without Secure on {}, which is not loopback, would travel in clear: \
             keep --cookie-secure, or pass --allow-insecure-cookies",
            args.bind
        );
    }
    if args.cookie_host_prefix && !args.cookie_secure {
        bail!("--cookie-host-prefix needs --cookie-secure: browsers refuse __Host- cookies without Secure");
    }
    args.hs256_secret()?;
    Ok(())
}

/// The connection limits of `args`, with the connection cap lowered to what the process's
/// open-file limit allows once raised as far as it goes (each connection is a descriptor, and
/// the database, the log and the listener need some too).
fn connection_limits(args: &ServeArgs) -> ConnectionLimits {
    const RESERVED: u64 = 256;
    let wanted = u64::from(args.max_connections);
    let open_files = raise_open_files_limit(wanted + RESERVED);
    let allowed = open_files.saturating_sub(RESERVED).max(1);
    if allowed < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_files,
            allowed,
            "the open-file limit allows fewer connections than --max-connections; serving {allowed}"
        );
    }
    ConnectionLimits {
        header_read_timeout: Duration::from_secs(args.header_read_timeout.into()),
        idle_timeout: Duration::from_secs(args.idle_timeout.into()),
        max_connections: usize::try_from(wanted.min(allowed)).unwrap_or(usize::MAX),
        http2_max_streams: args.http2_max_streams,
    }
}

/// Raises the soft `RLIMIT_NOFILE` towards `wanted` (never above the hard limit, never down),
/// and returns the soft limit in force. The usual soft limit, 1,024, is a relic of `select(2)`;
/// an event-driven server is expected to raise it (systemd's default hard limit is 524,288).
fn raise_open_files_limit(wanted: u64) -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    let target = limit.maximum.map_or(wanted, |hard| wanted.min(hard));
    if target <= current {
        return current;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        },
    ) {
        Ok(()) => target,
        Err(e) => {
            tracing::warn!(error = %e, current, target, "cannot raise the open-file limit");
            current
        }
    }
}

/// The process's metrics recorder, installed on first use, and how to render it.
fn metrics_renderer() -> RenderMetrics {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        let latency = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
        let batch = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
        let builder = PrometheusBuilder::new()
            .set_buckets(&latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full("authlog_append_batch_size".into()), &batch));
        let recorder = match builder {
            Ok(builder) => builder.build_recorder(),
            Err(e) => {
                tracing::warn!(error = %e, "histogram buckets refused; metrics render as summaries");
                PrometheusBuilder::new().build_recorder()
            }
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        handle
    });
    let handle = handle.clone();
    Arc::new(move || handle.render())
}

/// Keeps this process current with what any process (this one, other instances, the CLI)
/// records: runs the read models and the subscribers when `committed` signals a commit (here,
/// or announced by another instance), and every `every` in any case, until `stopped`. The same failure, pass after pass, is logged once (a halted read
/// model waits for an operator; a database down says so when it goes and when it comes back).
async fn run_subscribers(
    runner: Arc<Runner>,
    every: Duration,
    committed: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let last_error = std::sync::Mutex::new(None::<String>);
    let stop = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    wake_on(every, &committed, stop, || async {
        let error = runner.run().await.err().map(|e| e.to_string());
        let Ok(mut last) = last_error.lock() else {
            return;
        };
        match &error {
            Some(e) if last.as_ref() != Some(e) => {
                tracing::warn!(error = %e, "cannot follow the event log; retrying");
            }
            None if last.is_some() => tracing::info!("following the event log again"),
            _ => {}
        }
        *last = error;
    })
    .await;
    runner.release().await;
}

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
///
/// # Errors
/// When the server cannot start or fails.
pub async fn serve(database: &Database, args: &ServeArgs) -> anyhow::Result<()> {
    // The handlers are in place before the server says it listens: a SIGTERM that comes right
    // after that line (a supervisor, a test) is a graceful stop, not the default kill.
    let shutdown = shutdown_signal();
    let server = Server::start(database, args).await?;
    tracing::info!(addr = %server.addr(), database = %redacted(&database.url), "authlog listening");
    println!("authlog listening on http://{}", server.addr());
    shutdown.await;
    tracing::info!("shutting down");
    server.stop().await
}

/// Completes at the first SIGINT or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                one.recv().await;
            }
            // No handler could be installed: the default actions stop the process.
            (Err(_), Err(_)) => std::future::pending().await,
        }
    }
}
