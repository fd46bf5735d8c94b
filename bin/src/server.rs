//! `authlog serve`: wiring the adapters into the services, and the server's lifecycle.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use authlog_application::audit::Audit;
use authlog_application::authenticate::Authenticate;
use authlog_application::feed::LogFeed;
use authlog_application::login::LogIn;
use authlog_application::me::Me;
use authlog_application::password::ChangePassword;
use authlog_application::ports::{Clock, TokenService};
use authlog_application::refresh::Refresh;
use authlog_application::register::RegisterUser;
use authlog_application::revocation::RevocationSet;
use authlog_application::revoke::RevokeSession;
use authlog_application::sessions::Sessions;
use authlog_application::signing_keys::SigningKeys;
use authlog_application::{Throttle, TokenLifetimes};
use authlog_crypto::{
    Argon2Hasher, Argon2Params, Ed25519KeyGenerator, JwtConfig, JwtTokens, SystemClock, UuidV7Ids,
    VerifiedTokenCache, MIN_HS256_SECRET,
};
use authlog_http::state::RenderMetrics;
use authlog_http::{AppState, CookieSettings, HttpConfig};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::listener::{Acceptor, Listener, TcpListener};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::cli::ServeArgs;
use crate::database::Database;

/// Verified tokens remembered at most (about 1 KiB each).
const TOKEN_CACHE: usize = 10_000;
/// How long in-flight requests may take to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// A started server.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Opens the store, loads (or makes) the signing keys, rebuilds the revocation view from
    /// the log, binds `args.bind` and starts serving in the background.
    ///
    /// # Errors
    /// A database that cannot be opened, keys that cannot be loaded, an address that cannot be
    /// bound: each with what failed.
    pub async fn start(database_url: &str, args: &ServeArgs) -> anyhow::Result<Self> {
        check(args)?;
        let database = Database::open(database_url).await?;
        let store = database.events();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ids = Arc::new(UuidV7Ids);
        let lifetimes = TokenLifetimes {
            access: time::Duration::seconds(args.access_ttl.into()),
            refresh: time::Duration::seconds(args.refresh_ttl.into()),
        };
        let throttle = Throttle {
            max_failures: args.login_max_failures,
            window: time::Duration::seconds(args.login_window.into()),
        };

        let keys = SigningKeys::new(
            database.keys(),
            Arc::new(Ed25519KeyGenerator),
            store.clone(),
            clock.clone(),
        )
        .load_or_create()
        .await
        .context("cannot load the signing keys")?;
        let jwt = JwtConfig {
            issuer: args.issuer.clone(),
            audience: args.audience.clone(),
            leeway_seconds: args.leeway.into(),
            max_token_lifetime: lifetimes.refresh.max(lifetimes.access),
        };
        let jwt = match &args.jwt_secret {
            Some(secret) => JwtTokens::hs256(jwt, secret.as_bytes()),
            None => JwtTokens::eddsa(jwt, keys, clock.now()),
        }?;
        let tokens: Arc<dyn TokenService> = Arc::new(VerifiedTokenCache::new(jwt, TOKEN_CACHE));
        let params = Argon2Params {
            memory_kib: args.argon2_memory_kib,
            iterations: args.argon2_iterations,
            parallelism: args.argon2_parallelism,
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let hasher = Arc::new(
            Argon2Hasher::new(params, cores)
                .await
                .context("bad Argon2 settings")?,
        );

        // A revoked session matters while one of its access tokens can still verify.
        let window = lifetimes.access
            + time::Duration::seconds(args.leeway.into())
            + time::Duration::minutes(1);
        let revocations = Arc::new(RevocationSet::new(window));
        let feed = LogFeed::start(
            store.clone(),
            revocations.clone(),
            database.keys(),
            tokens.clone(),
            clock.clone(),
            window,
        )
        .await
        .context("cannot read recent revocations from the event log")?;

        let revoke = Arc::new(RevokeSession::new(
            store.clone(),
            revocations.clone(),
            clock.clone(),
        ));
        let sessions = Arc::new(Sessions::new(store.clone(), revoke.clone(), clock.clone()));
        let state = Arc::new(AppState {
            register: RegisterUser::new(store.clone(), hasher.clone(), clock.clone(), ids.clone()),
            login: LogIn::new(
                store.clone(),
                hasher.clone(),
                tokens.clone(),
                clock.clone(),
                ids.clone(),
                lifetimes,
                throttle,
            ),
            authenticate: Authenticate::new(tokens.clone(), revocations.clone(), clock.clone()),
            refresh: Refresh::new(
                store.clone(),
                tokens.clone(),
                revocations,
                clock.clone(),
                ids,
                lifetimes,
            ),
            password: ChangePassword::new(store.clone(), hasher, clock, sessions.clone()),
            revoke,
            sessions,
            me: Me::new(store.clone()),
            audit: Audit::new(store.clone()),
            tokens,
            store,
            trusted_proxies: args.trusted_proxies.clone(),
            render_metrics: metrics_renderer(),
            cookies: CookieSettings {
                secure: args.cookie_secure,
            },
        });
        let http = HttpConfig {
            body_limit: args.body_limit,
            cors_origins: args.cors_origins.clone(),
        };
        let app = authlog_http::app(state, &http);

        let acceptor = TcpListener::bind(args.bind)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("the listener has no address")?;

        let (stop, stopped) = watch::channel(false);
        let poll = args
            .poll_interval_ms
            .map_or_else(|| database.default_poll_interval(), Duration::from_millis);
        tokio::spawn(follow_log(feed, poll, database.appended(), stopped.clone()));
        let mut shutdown = stopped;
        let task = tokio::spawn(
            poem::Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                app,
                async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                },
                Some(DRAIN),
            ),
        );
        Ok(Self { addr, stop, task })
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
    if let Some(secret) = &args.jwt_secret {
        if secret.len() < MIN_HS256_SECRET {
            bail!(
                "AUTHLOG_JWT_SECRET must be at least {MIN_HS256_SECRET} bytes for HS256, got {}",
                secret.len()
            );
        }
    }
    Ok(())
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

/// Keeps this process current with what other processes (instances, the CLI) append: polls
/// the log when `appended` signals a commit anywhere, and every `every` in any case.
async fn follow_log(
    feed: LogFeed,
    every: Duration,
    appended: Option<Arc<Notify>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let signal = appended.unwrap_or_else(|| Arc::new(Notify::new()));
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = signal.notified() => {}
            _ = stopped.changed() => return,
        }
        if let Err(e) = feed.poll().await {
            tracing::warn!(error = %e, "cannot follow the event log; retrying");
        }
    }
}

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
///
/// # Errors
/// When the server cannot start or fails.
pub async fn serve(database_url: &str, args: &ServeArgs) -> anyhow::Result<()> {
    let server = Server::start(database_url, args).await?;
    tracing::info!(addr = %server.addr(), database = %database_url, "authlog listening");
    println!("authlog listening on http://{}", server.addr());
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.stop().await
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
