//! The command line.

use std::net::SocketAddr;

use anyhow::Context;
use authlog_application::ports::Metadata;
use authlog_application::roles::{ChangeRoles, RoleChange};
use authlog_crypto::SystemClock;
use authlog_domain::{Role, Username};
use clap::{Args, Parser, Subcommand};
use std::sync::Arc;

use crate::{database, server};

#[derive(Debug, Parser)]
#[command(
    name = "authlog",
    version,
    about = "An event-sourced authentication service"
)]
pub struct Cli {
    /// Where the event log lives: sqlite://PATH (created on first use).
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
    /// Print the OpenAPI document.
    Openapi,
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
    /// How often the log is polled for events other processes appended, in milliseconds.
    #[arg(long, env = "AUTHLOG_POLL_INTERVAL_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_interval_ms: u64,
}

impl Default for ServeArgs {
    /// The defaults above, without reading the environment.
    fn default() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            serve: ServeArgs,
        }
        // Every field has a default, so parsing no arguments cannot fail.
        Defaults::try_parse_from(["authlog"])
            .map(|d| d.serve)
            .unwrap_or_else(|e| unreachable!("ServeArgs defaults do not parse: {e}"))
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
            init_logging();
            server::serve(&cli.database_url, &args).await
        }
        Command::User { command } => change_role(&cli.database_url, command).await,
    }
}

async fn change_role(database_url: &str, command: UserCommand) -> anyhow::Result<()> {
    let (username, role, grant) = match command {
        UserCommand::GrantRole { username, role } => (username, role, true),
        UserCommand::RevokeRole { username, role } => (username, role, false),
    };
    let username =
        Username::parse(&username).with_context(|| format!("invalid username {username:?}"))?;
    let role = Role::parse(&role).with_context(|| format!("invalid role {role:?}"))?;
    let store = Arc::new(database::open(database_url).await?);
    let roles = ChangeRoles::new(store, Arc::new(SystemClock));
    let metadata = Metadata {
        user_agent: Some(format!("authlog-cli/{}", env!("CARGO_PKG_VERSION"))),
        ..Metadata::default()
    };
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHLOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (tests start several servers) is harmless and ignored.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
