//! The command line.

use std::net::SocketAddr;

use std::sync::Arc;

use anyhow::{bail, Context};
use authlog_application::access::Caller;
use authlog_application::directory::DirectoryQuery;
use authlog_application::ports::{Checkpoints, Metadata, ReadModels, UserStatus};
use authlog_application::roles::RoleChange;
use authlog_application::signed_checkpoints::SignedCheckpoint;
use authlog_application::streams::UserRef;
use authlog_crypto::SystemClock;
use authlog_domain::{Role, Username};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::{Args, Parser, Subcommand};

use crate::audit::AuditArgs;
use crate::database::Database;
use crate::progress::Reporter;
use crate::server;
use crate::services::Services;

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

    /// The file holding the master key, which seals the secrets the database holds (signing
    /// keys). Default with SQLite: `authlog.key` beside the database, made (mode 0600) on the
    /// first start. PostgreSQL needs it named, the same file on every instance.
    #[arg(
        long,
        env = "AUTHLOG_MASTER_KEY_FILE",
        value_name = "PATH",
        global = true
    )]
    pub master_key_file: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The database and master key the flags name.
    pub fn database(&self) -> Database {
        Database {
            url: self.database_url.clone(),
            master_key_file: self.master_key_file.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrations apply themselves).
    Serve(Box<ServeArgs>),
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
    Verify {
        /// A checkpoint kept from `GET /audit/checkpoint` (its JSON): also check that the log
        /// still holds that position with that hash, which a rewritten and re-chained log or a
        /// cut tail does not.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// The read models derived from the log.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's position in the log, and how far behind the log's head it is.
    Status,
    /// Replay the log into fresh tables for projection NAME, then swap them in (the live ones
    /// keep serving meanwhile).
    Rebuild { name: String },
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
    /// Revoke signing key KID (its `kid`, as in a token's header or the JWKS), thought
    /// compromised: within a second no running server accepts a token it signed (their users
    /// log in again), the JWKS drops it, its key material is erased, and a new key signs.
    Revoke {
        /// A kid is base64url and may start with `-`: it is taken as the id, not as a flag.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List users, oldest first: id, name, roles, status, registration and last login.
    List {
        /// Only users whose name starts with this (case does not matter).
        #[arg(long)]
        query: Option<String>,
        /// How many at most: 1 to 1000 (default 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Only users after this one (the id `--after` the last page printed).
        #[arg(long)]
        after: Option<String>,
        /// Only users of this status: active or disabled.
        #[arg(long)]
        status: Option<String>,
    },
    /// Show USERNAME: id, roles, status, registration, last login, and live sessions with
    /// their devices.
    Show { username: String },
    /// Disable USERNAME: every session revoked at once, and no login (the right password
    /// answers "Account disabled") until `user enable`.
    Disable {
        username: String,
        /// Why, for the audit trail (sealed with the user's personal data).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Enable USERNAME again after `user disable`.
    Enable { username: String },
    /// Grant USERNAME the role ROLE (effective from the user's next login or refresh).
    GrantRole { username: String, role: String },
    /// Take the role ROLE from USERNAME: tokens issued before lose it on every instance within
    /// a second; the next refresh issues tokens without it.
    RevokeRole { username: String, role: String },
    /// Erase USERNAME: every session revoked, and their personal data (username, password
    /// hashes, client addresses, user agents) no longer readable by anyone, anywhere; the name
    /// may be registered again. The events stay, and `authlog verify` still passes.
    Erase { username: String },
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
    /// How long a session lives after its login, however often it is refreshed, in seconds.
    #[arg(long, env = "AUTHLOG_SESSION_MAX_AGE", default_value_t = 30 * 24 * 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_max_age: u32,
    /// Seconds after a rotation during which the refresh token it retired still answers, with
    /// the same new pair, instead of revoking the session as reused: for clients that retry a
    /// lost response and apps whose tabs refresh at once. 0 (the default): any reuse revokes.
    /// At most 300: a retry takes seconds, and a longer grace only widens the window in which
    /// a stolen, already-used token is still honoured.
    #[arg(long, env = "AUTHLOG_REFRESH_REUSE_GRACE", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=300))]
    pub refresh_reuse_grace: u32,
    /// Clock skew tolerated on `exp` and `nbf` between instances, in seconds.
    #[arg(long, env = "AUTHLOG_LEEWAY", default_value_t = 5)]
    pub leeway: u32,
    /// Largest request body, in bytes.
    #[arg(long, env = "AUTHLOG_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    /// Seconds a request body may take to arrive, once its head has (408 after that).
    #[arg(long, env = "AUTHLOG_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub body_timeout: u32,
    /// Seconds a request head (request line and headers) may take to arrive; a connection
    /// that has sent no whole request head by then is closed.
    #[arg(long, env = "AUTHLOG_HEADER_READ_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub header_read_timeout: u32,
    /// Seconds a connection may stay open with nothing in flight before it is closed.
    #[arg(long, env = "AUTHLOG_IDLE_TIMEOUT", default_value_t = 75, value_parser = clap::value_parser!(u32).range(1..))]
    pub idle_timeout: u32,
    /// Connections served at once; more wait in the kernel's accept queue. Lowered at start to
    /// what the process's open-file limit allows.
    #[arg(long, env = "AUTHLOG_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Concurrent HTTP/2 streams per connection.
    #[arg(long, env = "AUTHLOG_HTTP2_MAX_STREAMS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_streams: u32,
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
    /// Password operations (login, registration, password change) admitted at once, running
    /// or queued for a core; more are refused 503 with `Retry-After` at once (default: 16 per
    /// core, so the queue drains in well under a second with the default Argon2 cost).
    #[arg(long, env = "AUTHLOG_ADMISSION_TOTAL", value_parser = clap::value_parser!(u32).range(1..))]
    pub admission_total: Option<u32>,
    /// Password operations admitted at once from one client address (an IPv6 /64 counts as one).
    #[arg(long, env = "AUTHLOG_ADMISSION_PER_CLIENT", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub admission_per_client: u32,
    /// Sign tokens with HS256 and the shared secret in this file (its first line) instead of
    /// Ed25519; nothing is published at the JWKS endpoint then. Or put the secret itself in
    /// the environment variable AUTHLOG_JWT_SECRET. There is deliberately no flag for the secret
    /// itself: flags show in `ps` and /proc/PID/cmdline. At least 32 bytes and 128 bits of
    /// estimated entropy: `openssl rand -hex 32` makes one.
    #[arg(long, env = "AUTHLOG_JWT_SECRET_FILE", value_name = "PATH")]
    pub jwt_secret_file: Option<std::path::PathBuf>,
    /// The HS256 secret from AUTHLOG_JWT_SECRET (environment only, see `--jwt-secret-file`).
    #[arg(skip = std::env::var("AUTHLOG_JWT_SECRET").ok())]
    pub jwt_secret: Option<String>,
    /// Mark cookies `Secure` (only sent over HTTPS). Turn off only for plain-HTTP development.
    #[arg(long, env = "AUTHLOG_COOKIE_SECURE", default_value_t = true, action = clap::ArgAction::Set)]
    pub cookie_secure: bool,
    /// Name the cookies `__Host-access_token_cookie` and so on: the browser then takes them only
    /// from this exact host over HTTPS, so a sibling subdomain cannot plant or shadow them.
    /// Needs `--cookie-secure`. Off by default: the names are Flask-JWT-Extended's.
    #[arg(long, env = "AUTHLOG_COOKIE_HOST_PREFIX")]
    pub cookie_host_prefix: bool,
    /// Send the refresh token cookie only to `/refresh` (`Path=/refresh`; with
    /// `--cookie-host-prefix` it is then named `__Secure-refresh_token_cookie`, since `__Host-`
    /// requires `Path=/`). Off by default, as Flask-JWT-Extended sets it.
    #[arg(long, env = "AUTHLOG_REFRESH_COOKIE_PATH_ONLY")]
    pub refresh_cookie_path_only: bool,
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
    /// The SMTP server mail goes out through: `smtp://host:port` (plain, a relay nearby),
    /// `smtp://host:port?tls=required` (STARTTLS) or `smtps://host:port`, with `user:password@`
    /// for a login. Without it the email endpoints answer 404 and an address given at
    /// registration is refused.
    #[arg(long, env = "AUTHLOG_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// The sender of the mails.
    #[arg(
        long,
        env = "AUTHLOG_MAIL_FROM",
        default_value = "authlog <authlog@localhost>"
    )]
    pub mail_from: String,
}

impl ServeArgs {
    /// The HS256 secret, from AUTHLOG_JWT_SECRET or `--jwt-secret-file`, checked; `None` for
    /// Ed25519.
    ///
    /// # Errors
    /// Both given, an unreadable file, or a secret that is short or obviously weak.
    pub fn hs256_secret(&self) -> anyhow::Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        let (secret, source) = match (&self.jwt_secret, &self.jwt_secret_file) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => anyhow::bail!(
                "AUTHLOG_JWT_SECRET and --jwt-secret-file are both set; give the HS256 secret once"
            ),
            (Some(secret), None) => (
                zeroize::Zeroizing::new(secret.as_bytes().to_vec()),
                "AUTHLOG_JWT_SECRET".to_owned(),
            ),
            (None, Some(path)) => {
                let text =
                    zeroize::Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                        format!("cannot read the HS256 secret from {}", path.display())
                    })?);
                let line = text.lines().next().unwrap_or_default();
                (
                    zeroize::Zeroizing::new(line.as_bytes().to_vec()),
                    path.display().to_string(),
                )
            }
        };
        authlog_crypto::check_hs256_secret(&secret)
            .map_err(|refusal| anyhow::anyhow!("the HS256 secret in {source} {refusal}"))?;
        Ok(Some(secret))
    }

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
    let database = cli.database();
    match cli.command {
        Command::Openapi => {
            println!("{}", authlog_http::openapi_json());
            Ok(())
        }
        Command::Serve(args) => {
            init_logging(args.log_format);
            server::serve(&database, &args).await
        }
        Command::User { command } => user(&open(&database).await?, command).await,
        Command::Projections { command } => projections(&open(&database).await?, command).await,
        Command::Sessions {
            command: SessionsCommand::RevokeAll { username },
        } => revoke_all(&open(&database).await?, &username).await,
        Command::Keys {
            command: KeysCommand::Rotate,
        } => rotate_key(&open(&database).await?).await,
        Command::Keys {
            command: KeysCommand::Revoke { kid },
        } => revoke_key(&open(&database).await?, &kid).await,
        Command::Verify { checkpoint } => {
            // The file first: a typo should not cost a walk of the whole log.
            let checkpoint = checkpoint.as_deref().map(read_checkpoint).transpose()?;
            verify(&open(&database).await?, checkpoint).await
        }
        Command::Audit(args) => crate::audit::run(&open(&database).await?, args).await,
    }
}

/// What a command that acts on the database runs on, with the system clock.
async fn open(database: &Database) -> anyhow::Result<Services> {
    Services::open(database, Arc::new(SystemClock)).await
}

async fn verify(services: &Services, checkpoint: Option<SignedCheckpoint>) -> anyhow::Result<()> {
    let progress = Reporter::new("verifying");
    let intact = services
        .store
        .verify(&|done, total| progress.report(done, total))
        .await;
    progress.finish();
    let intact = intact.context("verification failed")?;
    let Some(checkpoint) = checkpoint else {
        println!(
            "intact: {} events, hash chain and append-only guards verified",
            intact.rows
        );
        return Ok(());
    };
    services
        .checkpoints
        .check(&checkpoint)
        .await
        .context("verification failed")?;
    println!(
        "intact: {} events, hash chain and append-only guards verified, and the checkpoint at \
         position {} (signed at {}) holds",
        intact.rows, checkpoint.position, checkpoint.recorded_at
    );
    Ok(())
}

/// A checkpoint as `GET /audit/checkpoint` answers it, read from `path`.
fn read_checkpoint(path: &std::path::Path) -> anyhow::Result<SignedCheckpoint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the checkpoint file {}", path.display()))?;
    let bad = |what: &str| {
        anyhow::anyhow!(
            "the checkpoint file {} is not a checkpoint (the JSON of GET /audit/checkpoint): {what}",
            path.display()
        )
    };
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let text_field = |name: &str| {
        json[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad(&format!("no `{name}` string")))
    };
    let signature = URL_SAFE_NO_PAD
        .decode(text_field("signature")?.trim_end_matches('='))
        .map_err(|_| bad("`signature` is not base64url"))?;
    Ok(SignedCheckpoint {
        position: json["position"]
            .as_u64()
            .ok_or_else(|| bad("no `position` number"))?,
        hash: text_field("hash")?,
        recorded_at: text_field("recorded_at")?,
        kid: text_field("kid")?,
        signature,
    })
}

/// What events appended from the command line record as their source.
fn cli_metadata() -> Metadata {
    Metadata {
        user_agent: Some(format!("authlog-cli/{}", env!("CARGO_PKG_VERSION"))),
        ..Metadata::default()
    }
}

fn parse_username(raw: &str) -> anyhow::Result<Username> {
    Username::parse(raw).with_context(|| format!("invalid username {raw:?}"))
}

async fn revoke_all(services: &Services, username: &str) -> anyhow::Result<()> {
    let username = parse_username(username)?;
    let revoked = services
        .sessions
        .end_all_for(&Caller::Operator, UserRef::Name(&username), &cli_metadata())
        .await
        .with_context(|| format!("cannot revoke the sessions of {username}"))?;
    println!("revoked {revoked} session(s) of {username}");
    Ok(())
}

async fn rotate_key(services: &Services) -> anyhow::Result<()> {
    let kid = services
        .signing_keys
        .rotate()
        .await
        .context("cannot rotate the signing key")?;
    println!("new signing key {kid}");
    Ok(())
}

async fn revoke_key(services: &Services, kid: &str) -> anyhow::Result<()> {
    let new_kid = services
        .signing_keys
        .revoke(kid)
        .await
        .with_context(|| format!("cannot revoke signing key {kid}"))?;
    println!("revoked signing key {kid}; new signing key {new_kid}");
    Ok(())
}

async fn user(services: &Services, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::List {
            query,
            limit,
            after,
            status,
        } => list_users(services, query, limit, after, status).await,
        UserCommand::Show { username } => show_user(services, &username).await,
        UserCommand::Disable { username, reason } => {
            set_status(services, &username, Some(reason)).await
        }
        UserCommand::Enable { username } => set_status(services, &username, None).await,
        UserCommand::GrantRole { username, role } => {
            change_role(services, &username, &role, true).await
        }
        UserCommand::RevokeRole { username, role } => {
            change_role(services, &username, &role, false).await
        }
        UserCommand::Erase { username } => erase_user(services, &username).await,
    }
}

async fn erase_user(services: &Services, username: &str) -> anyhow::Result<()> {
    let username = parse_username(username)?;
    // Answered once every read model (the analysts' table among them) has applied it.
    let erased = services
        .erase
        .execute(&Caller::Operator, UserRef::Name(&username), &cli_metadata())
        .await
        .with_context(|| format!("cannot erase {username}"))?;
    println!(
        "erased user {}: sessions revoked, personal data unreadable",
        erased.user_id
    );
    Ok(())
}

/// Disables USERNAME (with `disable` holding the reason, if any) or, with `None`, enables it.
async fn set_status(
    services: &Services,
    username: &str,
    disable: Option<Option<String>>,
) -> anyhow::Result<()> {
    let username = parse_username(username)?;
    let (caller, whom, metadata) = (&Caller::Operator, UserRef::Name(&username), cli_metadata());
    let disabling = disable.is_some();
    let change = match disable {
        Some(reason) => {
            services
                .status
                .disable(caller, whom, reason, &metadata)
                .await
        }
        None => services.status.enable(caller, whom, &metadata).await,
    }
    .with_context(|| format!("cannot change the status of {username}"))?;
    match (change.changed, disabling) {
        (true, true) => println!(
            "disabled {username}: {} live session(s) revoked",
            change.sessions_revoked
        ),
        (true, false) => println!("enabled {username}"),
        (false, true) => println!("{username} was disabled already"),
        (false, false) => println!("{username} was not disabled"),
    }
    Ok(())
}

async fn show_user(services: &Services, username: &str) -> anyhow::Result<()> {
    let username = parse_username(username)?;
    let detail = services
        .directory
        .show(&Caller::Operator, UserRef::Name(&username))
        .await
        .with_context(|| format!("cannot show {username}"))?;
    let user = &detail.user;
    let roles: Vec<&str> = user.roles.iter().map(Role::as_str).collect();
    let rows = [
        ["user_id".to_owned(), user.user_id.to_string()],
        ["username".to_owned(), user.username.clone()],
        [
            "roles".to_owned(),
            if roles.is_empty() {
                "-".into()
            } else {
                roles.join(",")
            },
        ],
        ["status".to_owned(), user.status.as_str().to_owned()],
        [
            "created_at".to_owned(),
            crate::audit::timestamp(user.created_at),
        ],
        [
            "last_login_at".to_owned(),
            user.last_login_at
                .map_or_else(|| "-".to_owned(), crate::audit::timestamp),
        ],
    ];
    print!("{}", crate::audit::aligned(&rows));
    let mut sessions = vec![[
        "SESSION_ID".to_owned(),
        "CREATED_AT".to_owned(),
        "LAST_USED_AT".to_owned(),
        "CLIENT_ADDR".to_owned(),
        "USER_AGENT".to_owned(),
    ]];
    for session in &detail.sessions {
        sessions.push([
            session.id.to_string(),
            crate::audit::timestamp(session.created_at),
            crate::audit::timestamp(session.last_used_at),
            session.client_addr.clone().unwrap_or_else(|| "-".into()),
            session.user_agent.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("live sessions: {}", detail.sessions.len());
    if !detail.sessions.is_empty() {
        print!("{}", crate::audit::aligned(&sessions));
    }
    Ok(())
}

async fn list_users(
    services: &Services,
    prefix: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
    status: Option<String>,
) -> anyhow::Result<()> {
    let after = after
        .map(|raw| {
            raw.parse()
                .with_context(|| format!("invalid user id {raw:?}"))
        })
        .transpose()?;
    let status = status.map(|raw| parse_status(&raw)).transpose()?;
    let page = services
        .directory
        .list(
            &Caller::Operator,
            DirectoryQuery {
                prefix,
                status,
                after,
                limit,
            },
        )
        .await
        .context("cannot list the users")?;
    let mut rows = vec![[
        "USER_ID".to_owned(),
        "USERNAME".to_owned(),
        "ROLES".to_owned(),
        "STATUS".to_owned(),
        "CREATED_AT".to_owned(),
        "LAST_LOGIN_AT".to_owned(),
    ]];
    for user in &page.users {
        let roles: Vec<&str> = user.roles.iter().map(Role::as_str).collect();
        rows.push([
            user.user_id.to_string(),
            user.username.clone(),
            if roles.is_empty() {
                "-".into()
            } else {
                roles.join(",")
            },
            user.status.as_str().to_owned(),
            crate::audit::timestamp(user.created_at),
            user.last_login_at
                .map_or_else(|| "-".to_owned(), crate::audit::timestamp),
        ]);
    }
    print!("{}", crate::audit::aligned(&rows));
    if let Some(next) = page.next_after {
        println!("(more: --after {next})");
    }
    Ok(())
}

async fn projections(services: &Services, command: ProjectionsCommand) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::Status => {
            let status = services
                .store
                .status()
                .await
                .context("cannot read the projections' checkpoints")?;
            let head = status.first().map_or(0, |p| p.head);
            let mut rows = vec![
                ["SUBSCRIBER", "KIND", "POSITION", "HEAD", "BEHIND", "STATE"].map(String::from),
            ];
            let mut halted = Vec::new();
            for projection in status {
                let state = match projection.halted {
                    Some(reason) => {
                        halted.push(reason);
                        "halted"
                    }
                    None => "following",
                };
                rows.push([
                    projection.name,
                    "read model".into(),
                    projection.position.to_string(),
                    projection.head.to_string(),
                    projection
                        .head
                        .saturating_sub(projection.position)
                        .to_string(),
                    state.to_owned(),
                ]);
            }
            let kept = services
                .store
                .checkpoints()
                .await
                .context("cannot read the subscribers' checkpoints")?;
            for checkpoint in kept {
                let state = match checkpoint.holder {
                    Some(holder) => format!("held by {holder}"),
                    None => "not running".into(),
                };
                rows.push([
                    checkpoint.name,
                    "subscriber, one instance".into(),
                    checkpoint.position.to_string(),
                    head.to_string(),
                    head.saturating_sub(checkpoint.position).to_string(),
                    state,
                ]);
            }
            for name in authlog_application::instance::NAMES {
                // Their checkpoints are in each server's memory: its /metrics has their lag
                // (authlog_subscriber_lag_events) and /readyz says when one is stuck.
                rows.push([
                    name.into(),
                    "subscriber, every instance".into(),
                    "-".into(),
                    head.to_string(),
                    "-".into(),
                    "in each server".into(),
                ]);
            }
            print!("{}", crate::audit::aligned(&rows));
            if !halted.is_empty() {
                bail!("{}", halted.join("\n"));
            }
        }
        ProjectionsCommand::Rebuild { name } => {
            let started = std::time::Instant::now();
            let progress = Reporter::new(format!("rebuilding {name}"));
            let rebuilt = services
                .store
                .rebuild(&name, &|done, total| progress.report(done, total))
                .await;
            progress.finish();
            let rebuilt = rebuilt.with_context(|| format!("cannot rebuild projection {name}"))?;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "rebuilt {name}: {} events replayed in {seconds:.2} s ({:.0} events/s); at position {}",
                rebuilt.events,
                rebuilt.events as f64 / seconds.max(f64::EPSILON),
                rebuilt.position
            );
        }
    }
    Ok(())
}

/// `active` or `disabled`.
fn parse_status(raw: &str) -> anyhow::Result<UserStatus> {
    match raw {
        "active" => Ok(UserStatus::Active),
        "disabled" => Ok(UserStatus::Disabled),
        _ => anyhow::bail!("invalid status {raw:?}: expected active or disabled"),
    }
}

async fn change_role(
    services: &Services,
    username: &str,
    role: &str,
    grant: bool,
) -> anyhow::Result<()> {
    let username = parse_username(username)?;
    let role = Role::parse(role).with_context(|| format!("invalid role {role:?}"))?;
    let metadata = cli_metadata();
    let roles = &services.roles;
    let (caller, whom) = (&Caller::Operator, UserRef::Name(&username));
    let change = if grant {
        roles.grant(caller, whom, role.clone(), &metadata).await
    } else {
        roles.revoke(caller, whom, role.clone(), &metadata).await
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
