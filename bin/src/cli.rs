//! The command line.

use std::net::SocketAddr;

use anyhow::Context;
use authlog_application::ports::Metadata;
use authlog_application::revocation::RevocationSet;
use authlog_application::revoke::RevokeSession;
use authlog_application::roles::{ChangeRoles, RoleChange};
use authlog_application::sessions::Sessions;
use authlog_application::signing_keys::SigningKeys;
use authlog_crypto::{Ed25519KeyGenerator, SystemClock};
use authlog_domain::{RevocationReason, Role, Username};
use clap::{Args, Parser, Subcommand};
use std::sync::Arc;

use crate::audit::AuditArgs;
use crate::database::Database;
use crate::server;

#[derive(Debug, Parser)]
#[command(
    name = "authlog",
    version,
    about = "An event-sourced authentication service"
)]
pub struct Cli {
    /// Where the event log lives: sqlite://PATH (created on first use) or postgres://...
    #[arg(
        long,
        env = "AUTHLOG_DATABASE_URL",
        default_value = "sqlite://authlog.db",
        global = true
    )]
    pub database_url: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrations apply themselves).
    Serve(ServeArgs),
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Show events of the log, as GET /audit/events does (works with the server down too).
    Audit(AuditArgs),
    /// Check the log's hash chain and append-only guards; exit 0 when intact.
    Verify,
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Revoke every session of USERNAME; running servers refuse its tokens within a second.
    RevokeAll { username: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new signing key; running servers sign with it within a second, and the old keys
    /// keep verifying until their tokens expire.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Grant USERNAME the role ROLE (effective from the user's next login or refresh).
    GrantRole { username: String, role: String },
    /// Take the role ROLE from USERNAME (effective from the user's next login or refresh).
    RevokeRole { username: String, role: String },
}

/// Settings of `authlog serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "AUTHLOG_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The `iss` claim of issued tokens, and the only one accepted.
    #[arg(long, env = "AUTHLOG_ISSUER", default_value = "authlog")]
    pub issuer: String,
    /// The `aud` claim of issued tokens, and the only one accepted.
    #[arg(long, env = "AUTHLOG_AUDIENCE", default_value = "authlog")]
    pub audience: String,
    /// Access-token lifetime, in seconds.
    #[arg(long, env = "AUTHLOG_ACCESS_TTL", default_value_t = 15 * 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub access_ttl: u32,
    /// Refresh-token lifetime, in seconds.
    #[arg(long, env = "AUTHLOG_REFRESH_TTL", default_value_t = 30 * 24 * 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub refresh_ttl: u32,
    /// Clock skew tolerated on `exp` and `nbf` between instances, in seconds.
    #[arg(long, env = "AUTHLOG_LEEWAY", default_value_t = 5)]
    pub leeway: u32,
    /// Largest request body, in bytes.
    #[arg(long, env = "AUTHLOG_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    /// Allow `--cookie-secure false` on an address other than loopback (cookies would then
    /// travel in clear over the network).
    #[arg(long, env = "AUTHLOG_ALLOW_INSECURE_COOKIES")]
    pub allow_insecure_cookies: bool,
    /// Log format: `text` for people, `json` for log shippers.
    #[arg(long, env = "AUTHLOG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Comma-separated addresses of reverse proxies whose `X-Forwarded-For` is believed about
    /// the client's address (recorded with every event).
    #[arg(long, env = "AUTHLOG_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Comma-separated origins allowed by CORS (with credentials); empty allows any origin
    /// without credentials.
    #[arg(long, env = "AUTHLOG_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Argon2id memory cost, in KiB.
    #[arg(long, env = "AUTHLOG_ARGON2_MEMORY_KIB", default_value_t = 19 * 1024)]
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    #[arg(long, env = "AUTHLOG_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// Argon2id parallelism.
    #[arg(long, env = "AUTHLOG_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,
    /// Sign tokens with HS256 and this shared secret (at least 32 bytes) instead of Ed25519.
    /// Nothing is published at the JWKS endpoint then.
    #[arg(long, env = "AUTHLOG_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Mark cookies `Secure` (only sent over HTTPS). Turn off only for plain-HTTP development.
    #[arg(long, env = "AUTHLOG_COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cookie_secure: bool,
    /// Failed logins for one username within the window before logins for it are refused
    /// (0: never).
    #[arg(long, env = "AUTHLOG_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// The login-throttling window, in seconds.
    #[arg(long, env = "AUTHLOG_LOGIN_WINDOW", default_value_t = 15 * 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_window: u32,
    /// How often the log is polled for events other processes appended, in milliseconds
    /// (default: 250 on SQLite; 2000 on PostgreSQL, where LISTEN/NOTIFY wakes the follower).
    #[arg(long, env = "AUTHLOG_POLL_INTERVAL_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_interval_ms: Option<u64>,
}

impl ServeArgs {
    /// `authlog serve` with no flags: the defaults above, with any `AUTHLOG_*` variables of the
    /// environment applied, exactly as the command line would. For embedding (tests, benches).
    ///
    /// # Errors
    /// When an `AUTHLOG_*` variable holds a value its flag refuses.
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            serve: ServeArgs,
        }
        Defaults::try_parse_from(["authlog"]).map(|d| d.serve)
    }
}

/// Runs one command to completion.
///
/// # Errors
/// Whatever stopped the command, with its causes.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Openapi => {
            println!("{}", authlog_http::openapi_json());
            Ok(())
        }
        Command::Serve(args) => {
            init_logging(args.log_format);
            server::serve(&cli.database_url, &args).await
        }
        Command::User { command } => change_role(&cli.database_url, command).await,
        Command::Sessions {
            command: SessionsCommand::RevokeAll { username },
        } => revoke_all(&cli.database_url, &username).await,
        Command::Keys {
            command: KeysCommand::Rotate,
        } => rotate_key(&cli.database_url).await,
        Command::Verify => verify(&cli.database_url).await,
        Command::Audit(args) => crate::audit::run(&cli.database_url, args).await,
    }
}

async fn verify(database_url: &str) -> anyhow::Result<()> {
    let database = Database::open(database_url).await?;
    let intact = database.verify().await.context("verification failed")?;
    println!(
        "intact: {} events, hash chain and append-only guards verified",
        intact.rows
    );
    Ok(())
}

/// What events appended from the command line record as their source.
fn cli_metadata() -> Metadata {
    Metadata {
        user_agent: Some(format!("authlog-cli/{}", env!("CARGO_PKG_VERSION"))),
        ..Metadata::default()
    }
}

async fn revoke_all(database_url: &str, username: &str) -> anyhow::Result<()> {
    let username =
        Username::parse(username).with_context(|| format!("invalid username {username:?}"))?;
    let store = Database::open(database_url).await?.events();
    let clock = Arc::new(SystemClock);
    // This process serves no tokens; the view it updates is thrown away. Running servers learn
    // of the revocations from the log.
    let view = Arc::new(RevocationSet::new(time::Duration::ZERO));
    let revoke = Arc::new(RevokeSession::new(store.clone(), view, clock.clone()));
    let sessions = Sessions::new(store, revoke, clock);
    let revoked = sessions
        .revoke_all(&username, RevocationReason::Admin, None, &cli_metadata())
        .await
        .with_context(|| format!("cannot revoke the sessions of {username}"))?;
    println!("revoked {revoked} session(s) of {username}");
    Ok(())
}

async fn rotate_key(database_url: &str) -> anyhow::Result<()> {
    let database = Database::open(database_url).await?;
    let keys = SigningKeys::new(
        database.keys(),
        Arc::new(Ed25519KeyGenerator),
        database.events(),
        Arc::new(SystemClock),
    );
    let kid = keys
        .rotate()
        .await
        .context("cannot rotate the signing key")?;
    println!("new signing key {kid}");
    Ok(())
}

async fn change_role(database_url: &str, command: UserCommand) -> anyhow::Result<()> {
    let (username, role, grant) = match command {
        UserCommand::GrantRole { username, role } => (username, role, true),
        UserCommand::RevokeRole { username, role } => (username, role, false),
    };
    let username =
        Username::parse(&username).with_context(|| format!("invalid username {username:?}"))?;
    let role = Role::parse(&role).with_context(|| format!("invalid role {role:?}"))?;
    let roles = ChangeRoles::new(
        Database::open(database_url).await?.events(),
        Arc::new(SystemClock),
    );
    let metadata = cli_metadata();
    let change = if grant {
        roles.grant(&username, role.clone(), &metadata).await
    } else {
        roles.revoke(&username, role.clone(), &metadata).await
    }
    .with_context(|| format!("cannot change the roles of {username}"))?;
    let verb = if grant { "granted to" } else { "revoked from" };
    match change {
        RoleChange::Changed => println!("role {role} {verb} {username}"),
        RoleChange::Unchanged => {
            println!("role {role} already {verb} {username}; nothing recorded")
        }
    }
    Ok(())
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHLOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation is harmless and ignored.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
