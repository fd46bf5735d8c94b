//! `spawn_app()` and friends.

use std::process::Output;

use authlog::cli::ServeArgs;
use authlog::server::Server;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
    args: ServeArgs,
    server: Server,
    dir: TempDir,
}

/// Settings for tests: any free port, no clock leeway, a quick log poll.
pub fn test_args() -> ServeArgs {
    ServeArgs {
        bind: "127.0.0.1:0".parse().unwrap(),
        leeway: 0,
        poll_interval_ms: Some(50),
        ..ServeArgs::from_env().unwrap()
    }
}

/// Variations on [`test_args`].
pub struct ServeArgsExt;

impl ServeArgsExt {
    pub fn with_access_ttl(seconds: u32) -> ServeArgs {
        ServeArgs {
            access_ttl: seconds,
            ..test_args()
        }
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
        Backend::Postgres => postgres_schema_url().await.expect(
            "AUTHLOG_TEST_BACKEND=postgres needs AUTHLOG_TEST_POSTGRES_URL (./test.sh sets both)",
        ),
    };
    (database_url, dir)
}

/// Starts a server on an existing database (another instance of a cluster, say).
pub async fn spawn_on(database_url: String, args: ServeArgs, dir: TempDir) -> TestApp {
    let server = Server::start(&database_url, &args).await.unwrap();
    TestApp {
        base: format!("http://{}", server.addr()),
        client: reqwest::Client::new(),
        database_url,
        args,
        server,
        dir,
    }
}

/// Which database the suite runs on: SQLite unless AUTHLOG_TEST_BACKEND=postgres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("AUTHLOG_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("AUTHLOG_TEST_BACKEND={other}: expected sqlite or postgres"),
    }
}

/// A URL for a fresh schema in the run's PostgreSQL database, or `None` (with a notice) on a
/// machine without PostgreSQL. Under CI a missing database is a failure, never a skip.
pub async fn postgres_schema_url() -> Option<String> {
    use sqlx::{Connection, Executor};
    let base = match std::env::var("AUTHLOG_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("AUTHLOG_TEST_POSTGRES_URL is not set under CI: the PostgreSQL tests must run")
        }
        Err(_) => {
            not_run_notice();
            return None;
        }
    };
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options[search_path]={schema}"))
}

/// An access and a refresh token.
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl TestApp {
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
        let response = self
            .post_json(
                "/login",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn registered_and_logged_in(&self, username: &str) -> Tokens {
        assert_eq!(self.register(username).await, StatusCode::CREATED);
        self.login(username).await
    }

    /// Stops the server and starts a new one on the same database.
    pub async fn restart(self) -> TestApp {
        self.server.stop().await.unwrap();
        let server = Server::start(&self.database_url, &self.args).await.unwrap();
        TestApp {
            base: format!("http://{}", server.addr()),
            server,
            ..self
        }
    }

    /// Runs the real `authlog` binary with `args` against this app's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_authlog"))
            .args(args)
            .env("AUTHLOG_DATABASE_URL", &self.database_url)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }
}

/// Asserts the status and the `{"msg"}` of an error response.
pub async fn assert_error(response: Response, status: StatusCode, msg: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["msg"], msg, "body: {body}");
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

    /// How many events the log holds.
    pub async fn event_count(&self) -> i64 {
        const SQL: &str = "SELECT COUNT(*) FROM events";
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_scalar(SQL).fetch_one(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_scalar(SQL).fetch_one(&mut conn).await.unwrap(),
        }
    }

    /// The newest signing key's id and PKCS#8 private key, read straight from the database:
    /// what an attacker with the key would have, for forging tokens whose only flaw is a claim.
    pub async fn signing_key(&self) -> (String, Vec<u8>) {
        const SQL: &str =
            "SELECT kid, private_key FROM signing_keys ORDER BY created_at DESC LIMIT 1";
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query_as(SQL).fetch_one(&mut conn).await.unwrap(),
            Raw::Postgres(mut conn) => sqlx::query_as(SQL).fetch_one(&mut conn).await.unwrap(),
        }
    }

    /// Makes the event store unable to answer (renames the table), as an outage would.
    pub async fn break_the_store(&self) {
        const SQL: &str = "ALTER TABLE events RENAME TO events_gone";
        match self.raw_database().await {
            Raw::Sqlite(mut conn) => sqlx::query(SQL).execute(&mut conn).await.map(drop).unwrap(),
            Raw::Postgres(mut conn) => sqlx::query(SQL).execute(&mut conn).await.map(drop).unwrap(),
        }
    }

    async fn raw_database(&self) -> Raw {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        if self.database_url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.database_url).unwrap();
            Raw::Sqlite(options.connect().await.unwrap())
        } else {
            let options = sqlx::postgres::PgConnectOptions::from_str(&self.database_url).unwrap();
            Raw::Postgres(options.connect().await.unwrap())
        }
    }
}

/// A direct connection to the app's database, whichever it is.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
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

/// Says, once per test binary, that the PostgreSQL tests did not run and how to run them.
/// Written to stderr directly: libtest hides what a passing test prints with `eprintln!`.
fn not_run_notice() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\nNOTE: the PostgreSQL tests did NOT run: AUTHLOG_TEST_POSTGRES_URL is not set. \
             Run ./test.sh, which starts PostgreSQL and makes a database for the run.\n"
        );
    });
}
