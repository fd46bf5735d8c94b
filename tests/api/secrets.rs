//! Secrets at rest: the master key file, the signing keys sealed under it, and a start-up that
//! refuses a key that is missing, malformed or not the database's, in one line.

use std::path::Path;

use reqwest::StatusCode;
use tokio::process::Command;

use crate::helpers::{contains, postgres_schema_url, raw_files};
use crate::process::ServerProcess;

/// `authlog ARGS` on `database_url`, with `extra` environment; answers its exit status, stdout
/// and stderr.
async fn authlog(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_authlog"))
        .args(args)
        .env("AUTHLOG_DATABASE_URL", database_url)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap()
}

/// Asserts that `output` is a failure that says why in one line, its last, containing `needle`.
/// (The log lines before it, such as PostgreSQL's notices while migrations make a fresh schema,
/// are not the error.)
fn assert_refused_in_one_line(output: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("authlog: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{stderr}");
    assert!(errors[0].contains(needle), "no {needle:?} in: {stderr}");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A first start makes `authlog.key` beside the SQLite database, 0600; the signing key is stored
/// sealed, so the database files hold no trace of the private key.
#[tokio::test]
async fn the_master_key_is_made_private_beside_the_database_and_seals_the_signing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("authlog.db");
    let url = format!("sqlite://{}", database.display());
    let key_file = dir.path().join("authlog.key");

    let server = ServerProcess::start(&url, &[]).await;
    assert_eq!(mode(&key_file), 0o600);
    // A key file another tool left readable to every local user is made private at start,
    // as the database files are.
    drop(server);
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server = ServerProcess::start(&url, &[]).await;
    assert_eq!(mode(&key_file), 0o600);
    let log = server.stop().await;
    assert!(
        log.contains("the master key file was readable by other users"),
        "{log}"
    );
    let server = ServerProcess::start(&url, &[]).await;
    let client = reqwest::Client::new();
    let jwks: serde_json::Value = client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    drop(server);

    // The stored key is sealed under the file's key and opens to a PKCS#8 document whose
    // private part (the Ed25519 seed: an OCTET STRING inside an OCTET STRING, `04 22 04 20`) is
    // nowhere in the database's files. (The document also holds the public key, which is.)
    let stored: Vec<u8> = {
        use sqlx::ConnectOptions;
        use std::str::FromStr;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        sqlx::query_scalar("SELECT private_key FROM signing_keys WHERE kid = ?")
            .bind(&kid)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    let master = authlog_crypto::MasterKey::read(&key_file).unwrap();
    let der = master
        .open(&authlog_crypto::sealed_keys::purpose(&kid), &stored)
        .unwrap();
    assert_eq!(der[0], 0x30, "a DER document");
    let at = der
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x04, 0x20])
        .unwrap()
        + 4;
    let seed = &der[at..at + 32];
    assert!(!contains(&raw_files(dir.path()), seed));
}

/// Once secrets are sealed, start-up needs their key: a missing file (never silently made anew),
/// a malformed one and another key are each refused in one line that names the file, by the
/// server and by the CLI; the right key starts again.
#[tokio::test]
async fn a_missing_malformed_or_wrong_master_key_stops_start_up_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("authlog.db").display());
    let key_file = dir.path().join("authlog.key");
    drop(ServerProcess::start(&url, &[]).await);
    let right = std::fs::read(&key_file).unwrap();
    let serve: &[&str] = &["serve", "--bind", "127.0.0.1:0"];

    std::fs::remove_file(&key_file).unwrap();
    for args in [serve, &["verify"], &["keys", "rotate"]] {
        let output = authlog(&url, args, &[]).await;
        assert_refused_in_one_line(&output, "does not exist");
        assert!(!key_file.exists(), "{args:?} made a new key");
    }

    std::fs::write(&key_file, "not a key\n").unwrap();
    assert_refused_in_one_line(&authlog(&url, serve, &[]).await, "authlog.key");

    let other = dir.path().join("other.key");
    drop(authlog_crypto::MasterKey::create(&other).unwrap());
    let other_env = [("AUTHLOG_MASTER_KEY_FILE", other.to_str().unwrap())];
    for args in [serve, &["audit"]] {
        let output = authlog(&url, args, &other_env).await;
        assert_refused_in_one_line(&output, "wrong master key file");
        assert_refused_in_one_line(&output, "other.key");
    }

    std::fs::write(&key_file, right).unwrap();
    let server = ServerProcess::start(&url, &[]).await;
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

/// On PostgreSQL the key file must be named (instances on other machines must share it); the
/// first instance makes it, a second with another key is refused, one with the same key serves.
#[tokio::test]
#[ignore = "needs PostgreSQL: ./test.sh runs it"]
async fn postgres_needs_the_master_key_file_named_and_the_same_on_every_instance() {
    let url = postgres_schema_url().await;
    let dir = tempfile::tempdir().unwrap();
    let serve: &[&str] = &["serve", "--bind", "127.0.0.1:0"];
    assert_refused_in_one_line(&authlog(&url, serve, &[]).await, "--master-key-file");

    let first = dir.path().join("first.key");
    let first_args = ["--master-key-file", first.to_str().unwrap()];
    let a = ServerProcess::start(&url, &first_args).await;
    assert_eq!(mode(&first), 0o600);

    let second = dir.path().join("second.key");
    drop(authlog_crypto::MasterKey::create(&second).unwrap());
    let second_env = [("AUTHLOG_MASTER_KEY_FILE", second.to_str().unwrap())];
    assert_refused_in_one_line(
        &authlog(&url, serve, &second_env).await,
        "wrong master key file",
    );

    let b = ServerProcess::start(&url, &first_args).await;
    for server in [&a, &b] {
        let ready = reqwest::get(server.url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
    }
}
