//! The real binary as a process: crash safety under SIGKILL, graceful shutdown under SIGTERM,
//! and what it logs.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{assert_unauthorized, fresh_database_url};

/// `authlog serve` in a child process on `database_url`.
pub struct ServerProcess {
    child: Child,
    base: String,
}

impl ServerProcess {
    pub async fn start(database_url: &str, extra: &[&str]) -> Self {
        Self::spawn(
            Command::new(env!("CARGO_BIN_EXE_authlog")),
            database_url,
            extra,
        )
        .await
    }

    /// Started under `ulimit -n open_files` (soft and hard), as a shell would start it.
    async fn start_with_open_files(database_url: &str, extra: &[&str], open_files: u32) -> Self {
        let mut shell = Command::new("sh");
        shell.args([
            "-c",
            &format!("ulimit -n {open_files} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_authlog"),
        ]);
        Self::spawn(shell, database_url, extra).await
    }

    async fn spawn(mut command: Command, database_url: &str, extra: &[&str]) -> Self {
        let mut child = command
            .args(["serve", "--bind", "127.0.0.1:0", "--poll-interval-ms", "50"])
            .args(extra)
            .envs(crate::helpers::database_env(database_url))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the server did not start")
            .unwrap()
            .expect("the server exited before listening");
        let base = line.trim_start_matches("authlog listening on ").to_owned();
        Self { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let pid = self.child.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// The CPU time the process has used so far (user and system).
    fn cpu_time(&self) -> Duration {
        let pid = self.child.id().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // Fields after the command name, which ends at the last ')': utime and stime are the
        // 12th and 13th, in clock ticks (100 a second on Linux).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// What the process wrote to stderr (its log), once it has exited.
    async fn log(mut self) -> String {
        use tokio::io::AsyncReadExt;
        let mut log = String::new();
        let mut stderr = self.child.stderr.take().unwrap();
        stderr.read_to_string(&mut log).await.unwrap();
        log
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Stops the server (SIGTERM) and answers everything it logged.
    pub async fn stop(mut self) -> String {
        self.signal("-TERM");
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status:?}");
        self.log().await
    }
}

pub const CHEAP_HASHING: &[&str] = &[
    "--argon2-memory-kib",
    "64",
    "--argon2-iterations",
    "1",
    "--login-max-failures",
    "0",
];

#[tokio::test]
async fn every_answered_write_survives_a_sigkill_and_the_log_verifies() {
    let (database_url, _dir) = fresh_database_url().await;
    let server = ServerProcess::start(&database_url, CHEAP_HASHING).await;
    let registered = Arc::new(Mutex::new(Vec::<String>::new()));
    let logged_out = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::new();

    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (client, base) = (client.clone(), server.base.clone());
            let (registered, logged_out, stop) =
                (registered.clone(), logged_out.clone(), stop.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("w{worker}u{i}");
                    let credentials = json!({"username": name, "password": "correct horse"});
                    let Ok(response) = client
                        .post(format!("{base}/register"))
                        .json(&credentials)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if response.status() != StatusCode::CREATED {
                        continue;
                    }
                    registered.lock().unwrap().push(name);
                    let Ok(response) = client
                        .post(format!("{base}/login"))
                        .json(&credentials)
                        .send()
                        .await
                    else {
                        break;
                    };
                    let Ok(tokens) = response.json::<Value>().await else {
                        break;
                    };
                    let access = tokens["access_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let Ok(response) = client
                        .delete(format!("{base}/logout"))
                        .bearer_auth(&access)
                        .send()
                        .await
                    else {
                        break;
                    };
                    if response.status() == StatusCode::OK {
                        logged_out.lock().unwrap().push(access);
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut server = server;
    server.child.start_kill().unwrap(); // SIGKILL, mid-load
    server.child.wait().await.unwrap();
    stop.store(true, Ordering::Relaxed);
    futures::future::join_all(workers).await;

    let registered = registered.lock().unwrap().clone();
    let logged_out = logged_out.lock().unwrap().clone();
    assert!(
        registered.len() >= 10 && logged_out.len() >= 5,
        "too little load: {} / {}",
        registered.len(),
        logged_out.len()
    );

    let restarted = ServerProcess::start(&database_url, CHEAP_HASHING).await;
    for name in &registered {
        let response = client
            .post(restarted.url("/login"))
            .json(&json!({"username": name, "password": "correct horse"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{name} was acknowledged but is gone"
        );
    }
    for token in &logged_out {
        let response = client
            .get(restarted.url("/protected"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_unauthorized(response, "Token has been revoked").await;
    }
    let verify = Command::new(env!("CARGO_BIN_EXE_authlog"))
        .arg("verify")
        .envs(crate::helpers::database_env(&database_url))
        .output()
        .await
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_zero_and_logs_one_json_line_per_request() {
    let (database_url, _dir) = fresh_database_url().await;
    // Slow hashing, so that a login is still in flight when the signal arrives.
    let mut server = ServerProcess::start(
        &database_url,
        &["--argon2-iterations", "30", "--log-format", "json"],
    )
    .await;
    let client = reqwest::Client::new();
    let credentials = json!({"username": "alice", "password": "correct horse battery"});
    let registered = client
        .post(server.url("/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);

    let in_flight = tokio::spawn(client.post(server.url("/login")).json(&credentials).send());
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.signal("-TERM");
    let answered = in_flight.await.unwrap().unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let token = answered.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let status = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    let stderr = server.log().await;
    let requests: Vec<Value> = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "{stderr}");
    let login = requests.iter().find(|r| r["route"] == "login").unwrap();
    for key in ["request_id", "status", "latency_ms", "method", "path"] {
        assert!(login.get(key).is_some(), "{key} missing: {login}");
    }
    assert_eq!(login["status"], 200);
    assert!(
        !stderr.contains("correct horse"),
        "a password reached the log"
    );
    assert!(!stderr.contains(&token[..40]), "a token reached the log");
}

/// One HTTP/2 (h2c) connection opens 10,000 `POST /login` streams whose bodies never come,
/// all sent before the server's SETTINGS could arrive, as a hostile client would. The server
/// holds at most its advertised 100 and refuses the rest (hyper ends such a connection with
/// GOAWAY once it has refused 1,024 streams); its memory stays flat. Without the cap it held all
/// 10,000 and grew by 148 MB.
#[tokio::test]
async fn ten_thousand_half_open_http2_streams_are_refused_past_the_cap_and_memory_stays_flat() {
    use futures::FutureExt;

    let (database_url, _dir) = fresh_database_url().await;
    let server = ServerProcess::start(&database_url, CHEAP_HASHING).await;
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
    let before = server.rss_kib();

    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::Builder::new()
        .initial_max_send_streams(10_000)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut streams = Vec::new();
    for _ in 0..10_000 {
        client = client.ready().await.unwrap();
        let request = http::Request::post(format!("{}/login", server.base))
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        streams.push(client.send_request(request, false).unwrap());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (mut held, mut refused) = (0, 0);
    for (response, _body) in &mut streams {
        match response.now_or_never() {
            None => held += 1,
            Some(Err(_)) => refused += 1,
            Some(Ok(answer)) => panic!("a stream without its body was answered: {answer:?}"),
        }
    }
    let grown_kib = server.rss_kib().saturating_sub(before);
    assert!(
        held <= 100,
        "the server holds {held} streams of one connection"
    );
    assert_eq!(held + refused, 10_000);
    assert!(
        grown_kib < 20 * 1024,
        "resident memory grew by {grown_kib} KiB for 10,000 streams ({held} held)"
    );
    // Everyone else is still served.
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}

/// Under the classic 1,024 open-file limit (soft and hard, so it cannot be raised), 1,100 idle
/// connections exceed what the process can hold. The server caps its connections below the
/// limit (with a warning), leaves the rest waiting in the kernel's queue, cuts the idle ones
/// off at the header-read timeout, and does not spin: before, every accept failed with EMFILE
/// and was retried at once, burning a core while nobody was served.
#[tokio::test]
async fn under_a_1024_open_file_limit_1100_idle_connections_neither_spin_nor_lock_out_a_client() {
    let (database_url, _dir) = fresh_database_url().await;
    let server =
        ServerProcess::start_with_open_files(&database_url, &["--header-read-timeout", "2"], 1_024)
            .await;
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..1_100 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }

    let cpu_before = server.cpu_time();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = server.cpu_time() - cpu_before;
    assert!(
        spent < Duration::from_millis(300),
        "the server used {spent:?} of CPU in 1 s with idle connections over its file limit"
    );

    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "a client behind 1,100 idle connections waited {waited:?} (header-read timeout 2 s)"
    );
    drop(idle);
}

/// The mode bits of `path`.
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The SQLite database, its WAL and its shared-memory file hold password hashes, personal data
/// and signing keys: the binary makes them 0600, and tightens a database that an older release
/// left readable to every local user.
#[tokio::test]
async fn the_sqlite_files_are_private_to_their_owner_even_when_they_were_not() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let files =
        |name: &str| ["", "-wal", "-shm"].map(|suffix| dir.path().join(format!("{name}{suffix}")));

    let fresh = files("fresh.db");
    let server = ServerProcess::start(&format!("sqlite://{}", fresh[0].display()), &[]).await;
    for file in &fresh {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    drop(server);

    let old = files("old.db");
    std::fs::write(&old[0], b"").unwrap();
    std::fs::set_permissions(&old[0], std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = ServerProcess::start(&format!("sqlite://{}", old[0].display()), &[]).await;
    for file in &old {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    drop(server);
}

/// A database password given in the URL never reaches the log: not at start-up, not in the
/// debug output of the libraries, not in the line that reports an unreachable database, and
/// not from the CLI. (The test server trusts every local connection, so a URL with a made-up
/// password still connects.)
#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn a_database_password_in_the_url_never_reaches_the_log() {
    const SECRET: &str = "hunter2-do-not-log";
    let url = crate::helpers::postgres_schema_url().await;
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap();
    let with_password = format!("{scheme}://{user}:{SECRET}@{rest}");

    let mut debug = Command::new(env!("CARGO_BIN_EXE_authlog"));
    debug.env("AUTHLOG_LOG", "debug");
    let mut server = ServerProcess::spawn(debug, &with_password, &["--log-format", "json"]).await;
    let health = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.signal("-TERM");
    let status = server.child.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
    let served = server.log().await;
    // The start-up line names the database, password redacted.
    assert!(
        served.contains("authlog listening") && served.contains(rest),
        "{served}"
    );
    assert!(
        !served.contains(SECRET),
        "the password reached the log: {served}"
    );

    // Nothing listens on port 1: connecting fails, and the failure is reported without it.
    let unreachable = format!("{scheme}://{user}:{SECRET}@127.0.0.1:1/authlog");
    for args in [&["serve", "--bind", "127.0.0.1:0"][..], &["verify"][..]] {
        let output = Command::new(env!("CARGO_BIN_EXE_authlog"))
            .args(args)
            .env("AUTHLOG_DATABASE_URL", &unreachable)
            .env("AUTHLOG_LOG", "debug")
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{args:?} with no database");
        let written = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            written.contains("127.0.0.1:1"),
            "{args:?} names the database: {written}"
        );
        assert!(
            !written.contains(SECRET),
            "{args:?}: the password reached the log: {written}"
        );
    }
}
