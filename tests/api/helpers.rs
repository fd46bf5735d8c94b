//! `spawn_app()` and friends.

use std::process::Output;

use std::sync::Arc;

use authlog::cli::ServeArgs;
use authlog::database::Database;
use authlog::server::Server;
use authlog::services::Services;
use authlog_crypto::AdjustableClock;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The database with its master key file, as the server and the CLI are given it.
    database: Database,
    /// The server's clock: a test of an expiry or a window moves it forward instead of sleeping.
    pub clock: Arc<AdjustableClock>,
    args: ServeArgs,
    server: Server,
    dir: TempDir,
}

/// Settings for tests: any free port, no clock leeway, a quick log poll, cheap Argon2 (1 MiB,
/// one pass: the suite checks what is hashed and when, not how hard; the test of login timing
/// restores the real cost with [`real_hashing`]), and admission control roomy enough for the
/// suite's 64 parallel clients on one address (the tests of admission set its bounds).
pub fn test_args() -> ServeArgs {
    ServeArgs {
        bind: "127.0.0.1:0".parse().unwrap(),
        leeway: 0,
        poll_interval_ms: Some(50),
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        admission_total: Some(10_000),
        admission_per_client: 10_000,
        ..ServeArgs::from_env().unwrap()
    }
}

/// `args` with the service's default Argon2 cost, for tests of what that cost hides.
pub fn real_hashing(args: ServeArgs) -> ServeArgs {
    let defaults = ServeArgs::from_env().unwrap();
    ServeArgs {
        argon2_memory_kib: defaults.argon2_memory_kib,
        argon2_iterations: defaults.argon2_iterations,
        argon2_parallelism: defaults.argon2_parallelism,
        ..args
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_args()).await
}

pub async fn spawn_app_with(args: ServeArgs) -> TestApp {
    let (database_url, dir) = fresh_database_url().await;
    spawn_on(database_url, args, dir).await
}

/// A fresh database on the suite's backend, and a directory that lives as long as it must.
pub async fn fresh_database_url() -> (String, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend() {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("authlog.db").display()),
        Backend::Postgres => postgres_schema_url().await,
    };
    (database_url, dir)
}

/// Starts a server on an existing database (another instance of a cluster, say), built by the
/// same composition root as `authlog serve`, on a clock the test can move.
pub async fn spawn_on(database_url: String, args: ServeArgs, dir: TempDir) -> TestApp {
    spawn_on_database(database(&database_url), args, dir).await
}

/// [`spawn_on`] with a master key file of its own (a fixture's, say).
pub async fn spawn_on_database(database: Database, args: ServeArgs, dir: TempDir) -> TestApp {
    let clock = Arc::new(AdjustableClock::default());
    let server = start(&database, &args, &clock).await;
    TestApp {
        base: format!("http://{}", server.addr()),
        client: reqwest::Client::new(),
        database_url: database.url.clone(),
        database,
        clock,
        args,
        server,
        dir,
    }
}

async fn start(database: &Database, args: &ServeArgs, clock: &Arc<AdjustableClock>) -> Server {
    let services = Services::open(database, clock.clone()).await.unwrap();
    Server::start_with(services, args).await.unwrap()
}

/// The database `url` names with its master key: on SQLite the default (`authlog.key` beside
/// the database file), on PostgreSQL [`postgres_master_key_file`].
pub fn database(url: &str) -> Database {
    match backend_of(url) {
        Backend::Sqlite => Database::new(url),
        Backend::Postgres => Database::new(url).with_master_key_file(postgres_master_key_file()),
    }
}

/// The environment that points the `authlog` binary at `url`'s database and master key.
pub fn database_env(url: &str) -> Vec<(&'static str, std::ffi::OsString)> {
    env_of(&database(url))
}

/// The environment that points the `authlog` binary at `database` and its master key.
fn env_of(database: &Database) -> Vec<(&'static str, std::ffi::OsString)> {
    let database = database.clone();
    let mut env = vec![("AUTHLOG_DATABASE_URL", database.url.into())];
    env.extend(
        database
            .master_key_file
            .map(|file| ("AUTHLOG_MASTER_KEY_FILE", file.into_os_string())),
    );
    env
}

/// The one master key file of every PostgreSQL test database: instances of a cluster must share
/// their key, and a fresh database (every test makes one) takes whichever key it is first given.
pub fn postgres_master_key_file() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("postgres-master.key")
}

/// Which database the suite runs on: SQLite unless AUTHLOG_TEST_BACKEND=postgres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn backend_of(database_url: &str) -> Backend {
    if database_url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

pub fn backend() -> Backend {
    match std::env::var("AUTHLOG_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("AUTHLOG_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

/// A URL for a fresh schema in the run's PostgreSQL database (AUTHLOG_TEST_POSTGRES_URL, made
/// and dropped by ./test.sh).
pub async fn postgres_schema_url() -> String {
    use sqlx::{Connection, Executor};
    let base = std::env::var("AUTHLOG_TEST_POSTGRES_URL").expect(
        "AUTHLOG_TEST_POSTGRES_URL is not set: run ./test.sh, which starts PostgreSQL and makes \
         a database for the run",
    );
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options[search_path]={schema}")
}

/// A database of its own beside the run's, for a test that takes the database-wide append
/// lock: advisory locks are per database, so holding it in a schema of the run's database
/// would stall every other test's appends. [`drop_postgres_database`] removes it; a run that
/// failed before that leaves it to the next run with the same name, which starts afresh.
pub async fn postgres_database_url(suffix: &str) -> (String, String) {
    use sqlx::{Connection, Executor};
    let base = std::env::var("AUTHLOG_TEST_POSTGRES_URL")
        .expect("AUTHLOG_TEST_POSTGRES_URL is not set: run ./test.sh");
    let (server, run) = base.rsplit_once('/').unwrap();
    let name = format!("{run}_{suffix}");
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    (format!("{server}/{name}"), name)
}

/// Drops a database made by [`postgres_database_url`].
pub async fn drop_postgres_database(name: &str) {
    use sqlx::{Connection, Executor};
    let base = std::env::var("AUTHLOG_TEST_POSTGRES_URL").unwrap();
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

/// An access and a refresh token.
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    /// The directory the test's database (if SQLite) and any files of its own live in.
    pub fn dir_path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Where the server listens, for tests that speak raw TCP or HTTP/2.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// A GET without credentials.
    pub async fn get_anonymous(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, username: &str) -> StatusCode {
        self.post_json(
            "/register",
            json!({"username": username, "password": PASSWORD}),
        )
        .await
        .status()
    }

    pub async fn login(&self, username: &str) -> Tokens {
        self.login_with(username, PASSWORD).await
    }

    /// Logs in with a password other than the suite's (users of an older release's database).
    pub async fn login_with(&self, username: &str, password: &str) -> Tokens {
        let response = self
            .post_json(
                "/login",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{username} logs in");
        let body: Value = response.json().await.unwrap();
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Gives `username` `role` through the command line, as an operator would.
    pub async fn grant_role(&self, username: &str, role: &str) {
        let granted = self.cli(&["user", "grant-role", username, role]).await;
        assert!(granted.status.success(), "{granted:?}");
    }

    /// `username` registered, given `role` by the command line, and logged in.
    pub async fn logged_in_with_role(&self, username: &str, role: &str) -> Tokens {
        assert_eq!(self.register(username).await, StatusCode::CREATED);
        self.grant_role(username, role).await;
        self.login(username).await
    }

    pub async fn registered_and_logged_in(&self, username: &str) -> Tokens {
        assert_eq!(self.register(username).await, StatusCode::CREATED);
        self.login(username).await
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(self) -> TestApp {
        self.server.stop().await.unwrap();
        let server = start(&self.database, &self.args, &self.clock).await;
        TestApp {
            base: format!("http://{}", server.addr()),
            server,
            ..self
        }
    }

    /// Runs the real `authlog` binary with `args` against this app's database. Awaited, not
    /// blocked on: the server under test runs on this test's runtime and must keep serving
    /// (and committing) while the command runs.
    pub async fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_env(args, &[]).await
    }

    /// [`TestApp::cli`] with extra environment variables (for settings that have no flag).
    pub async fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_authlog"))
            .args(args)
            .envs(env_of(&self.database))
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .output()
            .await
            .unwrap()
    }
}

/// Asserts the status and the `{"msg"}` of an error response.
pub async fn assert_error(response: Response, status: StatusCode, msg: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["msg"], msg, "body: {body}");
}

/// Asserts that `GET path` is for admins and auditors alone: 401 without a token, 403 for a user
/// ("bob") without either role; answers bob's tokens once he is given `auditor`.
pub async fn only_admins_and_auditors(app: &TestApp, path: &str) -> Tokens {
    assert_unauthorized(
        app.get_anonymous(path).await,
        "Missing Authorization Header",
    )
    .await;
    let bob = app.registered_and_logged_in("bob").await;
    assert_error(
        app.get(path, &bob.access).await,
        StatusCode::FORBIDDEN,
        "Admin access required",
    )
    .await;
    app.grant_role("bob", "auditor").await;
    app.login("bob").await
}

/// Asserts a 401 with the message and an RFC 6750 challenge.
pub async fn assert_unauthorized(response: Response, msg: &str) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("401 without WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_error(response, StatusCode::UNAUTHORIZED, msg).await;
}

/// The payload of a JWT, unverified: for asserting what the server put in it.
/// The header of a JWT, decoded without checking anything.
pub fn claims_header(token: &str) -> Value {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

impl TestApp {
    /// The payloads of every event of `event_type`, in log order, read straight from the
    /// database.
    pub async fn events_of_type(&self, event_type: &str) -> Vec<Value> {
        let payloads: Vec<String> = match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_scalar(
                "SELECT payload FROM events WHERE event_type = ? ORDER BY position",
            )
            .bind(event_type)
            .fetch_all(&mut conn)
            .await
            .unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_scalar(
                "SELECT payload FROM events WHERE event_type = $1 ORDER BY position",
            )
            .bind(event_type)
            .fetch_all(&mut conn)
            .await
            .unwrap(),
        };
        payloads
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect()
    }

    /// The stream of the account named `username` (canonical form), from the name index.
    pub async fn user_stream(&self, canonical: &str) -> String {
        const SQL: &str = "SELECT stream_id FROM usernames WHERE canonical = ";
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_scalar(&format!("{SQL}?"))
                .bind(canonical)
                .fetch_one(&mut conn)
                .await
                .unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_scalar(&format!("{SQL}$1"))
                .bind(canonical)
                .fetch_one(&mut conn)
                .await
                .unwrap(),
        }
    }

    /// The one text column `sql` selects, as an analyst reading the database would get it.
    pub async fn query_texts(&self, sql: &str) -> Vec<String> {
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap(),
        }
    }

    /// How many events the log holds.
    pub async fn event_count(&self) -> i64 {
        const SQL: &str = "SELECT COUNT(*) FROM events";
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_scalar(SQL).fetch_one(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_scalar(SQL).fetch_one(&mut conn).await.unwrap(),
        }
    }

    /// The newest signing key's id and PKCS#8 private key, read straight from the database and
    /// opened with the master key file: what an attacker with both would have, for forging
    /// tokens whose only flaw is a claim.
    pub async fn signing_key(&self) -> (String, Vec<u8>) {
        const SQL: &str =
            "SELECT kid, private_key FROM signing_keys ORDER BY created_at DESC LIMIT 1";
        let (kid, sealed): (String, Vec<u8>) = match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_as(SQL).fetch_one(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_as(SQL).fetch_one(&mut conn).await.unwrap(),
        };
        let master = authlog_crypto::MasterKey::read(&self.master_key_file()).unwrap();
        let open = master
            .open(&authlog_crypto::sealed_keys::purpose(&kid), &sealed)
            .expect("the signing key is sealed under the master key");
        (kid, open.to_vec())
    }

    /// Every signing key's id and private half as stored (sealed, or empty once revoked).
    pub async fn stored_private_keys(&self) -> Vec<(String, Vec<u8>)> {
        const SQL: &str = "SELECT kid, private_key FROM signing_keys ORDER BY created_at, kid";
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_as(SQL).fetch_all(&mut conn).await.unwrap(),
        }
    }

    /// The file of the master key this app's database is sealed under.
    pub fn master_key_file(&self) -> std::path::PathBuf {
        self.database.master_key_file.clone().unwrap_or_else(|| {
            self.dir
                .path()
                .join(authlog::database::DEFAULT_MASTER_KEY_FILE)
        })
    }

    /// Makes the event store unable to answer (renames the table), as an outage would.
    pub async fn break_the_store(&self) {
        self.execute("ALTER TABLE events RENAME TO events_gone")
            .await;
    }

    /// Runs `sql` on the app's database, behind the service's back.
    pub async fn execute(&self, sql: &str) {
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query(sql).execute(&mut conn).await.map(drop).unwrap(),
            Raw::Postgres(mut conn) => sqlx::query(sql).execute(&mut conn).await.map(drop).unwrap(),
        }
    }

    /// Every row `sql` selects on the app's database, behind the service's back.
    pub async fn fetch_all<T>(&self, sql: &str) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap(),
        }
    }

    /// The one row `sql` selects on the app's database, behind the service's back.
    pub async fn fetch_one<T>(&self, sql: &str) -> T
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_as(sql).fetch_one(&mut conn).await.unwrap(),
        }
    }

    /// Appends a row of `event_type` with `payload` to `stream`, chained like any other, as a
    /// newer release of authlog writing a type this one does not know would.
    pub async fn append_as_a_newer_release(&self, stream: &str, event_type: &str, payload: &str) {
        use authlog_store::chain::{self, RowContent};
        const HEAD: &str = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1";
        let (position, previous): (i64, Vec<u8>) = match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_as(HEAD).fetch_one(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_as(HEAD).fetch_one(&mut conn).await.unwrap(),
        };
        let position = position + 1;
        let version_sql = format!(
            "SELECT CAST(COALESCE(MAX(stream_version), 0) + 1 AS BIGINT) FROM events \
             WHERE stream_id = '{stream}'"
        );
        let version: i64 = match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_scalar(&version_sql)
                .fetch_one(&mut conn)
                .await
                .unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_scalar(&version_sql)
                .fetch_one(&mut conn)
                .await
                .unwrap(),
        };
        let recorded_at = "2026-11-23T00:00:00.000000Z";
        let hash = chain::link(
            &previous,
            &RowContent {
                position: position as u64,
                stream_id: stream,
                stream_version: version as u64,
                event_type,
                subject: None,
                payload,
                metadata: "{}",
                recorded_at,
                schema_version: None,
            },
        );
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let blob = match backend_of(&self.database_url) {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
        };
        self.execute(&format!(
            "INSERT INTO events (position, stream_id, stream_version, event_type, subject, \
             payload, metadata, recorded_at, hash) VALUES ({position}, '{stream}', {version}, \
             '{event_type}', NULL, '{payload}', '{{}}', '{recorded_at}', {blob})"
        ))
        .await;
    }

    async fn raw_database(&self) -> Raw {
        raw_database(&self.database_url).await
    }
}

/// A direct connection to the database `url` names, whichever it is, as an analyst (or an
/// attacker with the files) would open it.
pub async fn raw_database(url: &str) -> Raw {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    if url.starts_with("sqlite:") {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).unwrap();
        Raw::Sqlite(options.connect().await.unwrap())
    } else {
        let options = sqlx::postgres::PgConnectOptions::from_str(url).unwrap();
        Raw::Postgres(options.connect().await.unwrap())
    }
}

/// Every file in `dir` as bytes, concatenated: what a copy of the directory would hold (the
/// SQLite database, its WAL and shared memory, the key file).
pub fn raw_files(dir: &std::path::Path) -> Vec<u8> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|entry| std::fs::read(entry.unwrap().path()).unwrap_or_default())
        .collect()
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// A direct connection to a database, whichever it is.
pub enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// The PHC string of `password` hashed with Argon2id at the cheapest parameters, for a
/// `Registered` an older release might have stored (any parameters verify).
pub async fn cheap_hash(password: &str) -> String {
    use authlog_application::ports::PasswordHasher as _;
    let hasher = authlog_crypto::Argon2Hasher::new(
        authlog_crypto::Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        },
        1,
    )
    .await
    .unwrap();
    let hash = hasher
        .hash(authlog_domain::Password::offered(password.into()).unwrap())
        .await
        .unwrap();
    hash.as_phc().to_owned()
}

/// Signs `claims` with the server's own key, under `kid`.
pub fn sign(claims: &Value, kid: &str, private_der: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_der(private_der),
    )
    .unwrap()
}

/// A real SMTP server for the email tests: Python's aiosmtpd (installed by ./test.sh into the
/// suite's Python environment, `AUTHLOG_TEST_PYTHON`) delivering into a Maildir, which the
/// tests read back. Killed when dropped.
pub struct MailServer {
    pub port: u16,
    dir: TempDir,
    /// Held for its drop, which kills the server.
    _child: tokio::process::Child,
}

impl MailServer {
    /// Starts one on a free port; panics (with why) when the suite's Python is not there.
    pub async fn start() -> MailServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port).await
    }

    /// Starts one on `port` (a test that starts the mail server late).
    pub async fn start_on(port: u16) -> MailServer {
        let python = std::env::var("AUTHLOG_TEST_PYTHON").expect(
            "AUTHLOG_TEST_PYTHON is not set: run ./test.sh, which installs aiosmtpd for the email tests",
        );
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let child = tokio::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        MailServer {
            port,
            dir,
            _child: child,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every mail received so far to `to`, oldest first (headers and body as delivered).
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        let new = self.dir.path().join("mail").join("new");
        let mut mails: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(new)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let modified = e.metadata().ok()?.modified().ok()?;
                        Some((modified, std::fs::read_to_string(e.path()).ok()?))
                    })
                    .filter(|(_, mail)| mail.contains(&format!("X-RcptTo: {to}")))
                    .collect()
            })
            .unwrap_or_default();
        mails.sort();
        mails.into_iter().map(|(_, mail)| mail).collect()
    }

    /// Waits up to `within` for the `n`th mail to `to`; answers its code (the six digits it
    /// holds).
    pub async fn code(&self, to: &str, n: usize, within: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(mail) = self.mails_to(to).get(n - 1) {
                return code_in(mail).unwrap_or_else(|| panic!("no code in {mail}"));
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mail number {n} to {to} within {within:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// The six-digit code a mail's body holds.
pub fn code_in(mail: &str) -> Option<String> {
    mail.lines()
        .map(str::trim)
        .find(|line| line.len() == 6 && line.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}
