//! Erasure (`authlog user erase`): after it, no answer, table, log line or (on SQLite) byte of
//! the database files shows the user's username, password hash, client address or user agent;
//! the name can be registered again; and the log's chain still verifies.

use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    backend, contains, database_env, fresh_database_url, raw_database, raw_files, Backend, Raw,
};
use crate::process::{ServerProcess, CHEAP_HASHING};

const NAME: &str = "Zelda.Erasable";
const AGENT: &str = "ErasureProbe/7.1";
/// Zelda's address, as a trusted proxy reports it.
const ADDRESS: &str = "198.51.100.23";
/// What would be left of her, in any form: her name as typed and as the name index keeps it,
/// her device, and a password hash (everyone's is sealed, so none is in clear anywhere).
const NEEDLES: [&str; 5] = [NAME, "zelda.erasable", AGENT, ADDRESS, "$argon2"];

/// A request from Zelda's browser, behind the trusted proxy.
fn from_zelda(request: RequestBuilder) -> RequestBuilder {
    request
        .header("User-Agent", AGENT)
        .header("X-Forwarded-For", ADDRESS)
}

async fn cli(database_url: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_authlog"))
        .args(args)
        .envs(database_env(database_url))
        .output()
        .await
        .unwrap()
}

/// The needles `text` holds.
fn found_in(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    NEEDLES
        .into_iter()
        .filter(|needle| lower.contains(&needle.to_lowercase()))
        .collect()
}

/// Every text value of every table of the database, as `table.column: value`, where it holds
/// a needle.
async fn rows_holding_a_needle(database_url: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut found = Vec::new();
    match raw_database(database_url).await {
        Raw::Sqlite(mut conn) => {
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            for table in tables {
                let columns: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
                        .bind(&table)
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                for column in columns {
                    // As bytes: a column may hold binary (sealed keys), read as text where it is.
                    let values: Vec<Option<Vec<u8>>> = sqlx::query_scalar(&format!(
                        "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\""
                    ))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                    for value in values.into_iter().flatten() {
                        let value = String::from_utf8_lossy(&value);
                        if !found_in(&value).is_empty() {
                            found.push(format!("{table}.{column}: {value}"));
                        }
                    }
                }
            }
            conn.close().await.unwrap();
        }
        Raw::Postgres(mut conn) => {
            let columns: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND data_type <> 'bytea'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(columns.len() > 30, "{columns:?}");
            for (table, column) in columns {
                let values: Vec<Option<String>> =
                    sqlx::query_scalar(&format!("SELECT \"{column}\"::text FROM \"{table}\""))
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                for value in values.into_iter().flatten() {
                    if !found_in(&value).is_empty() {
                        found.push(format!("{table}.{column}: {value}"));
                    }
                }
            }
        }
    }
    found
}

/// Every event, as `GET /audit/events` pages through them.
async fn audit_everything(client: &reqwest::Client, server: &ServerProcess, token: &str) -> String {
    let mut pages = String::new();
    let mut after = 0;
    loop {
        let page: Value = client
            .get(server.url(&format!("/audit/events?limit=1000&after={after}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages.push_str(&page.to_string());
        match page["next_after"].as_u64() {
            Some(next) => after = next,
            None => return pages,
        }
    }
}

#[tokio::test]
async fn an_erased_user_is_in_no_answer_table_log_line_or_file_and_the_name_is_free_again() {
    let (database_url, dir) = fresh_database_url().await;
    let mut args = CHEAP_HASHING.to_vec();
    args.extend(["--trusted-proxies", "127.0.0.1", "--log-format", "json"]);
    let server = ServerProcess::start(&database_url, &args).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(server.url(path)).json(&body);

    // An auditor, to read the log over HTTP.
    let auditor = json!({"username": "auditor", "password": "auditor password"});
    assert_eq!(
        post("/register", auditor.clone())
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let granted = cli(&database_url, &["user", "grant-role", "auditor", "admin"]).await;
    assert!(granted.status.success(), "{granted:?}");
    let login: Value = post("/login", auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let auditor_token = login["access_token"].as_str().unwrap().to_owned();

    // Zelda's life: registration, a mistyped password, a login, a password change, a login.
    let zelda = json!({"username": NAME, "password": "first password"});
    let registered = from_zelda(post("/register", zelda.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let wrong = json!({"username": NAME, "password": "not her password"});
    let refused = from_zelda(post("/login", wrong)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let tokens: Value = from_zelda(post("/login", zelda.clone()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let change = json!({"current_password": "first password", "new_password": "second password"});
    let changed = from_zelda(post("/password", change))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let second = json!({"username": NAME, "password": "second password"});
    let tokens: Value = from_zelda(post("/login", second.clone()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Before: the log shows her, so the searches below can find her.
    let before = audit_everything(&client, &server, &auditor_token).await;
    assert_eq!(
        found_in(&before),
        [NAME, "zelda.erasable", AGENT, ADDRESS],
        "{before}"
    );
    assert!(!rows_holding_a_needle(&database_url).await.is_empty());

    let erased = cli(&database_url, &["user", "erase", NAME]).await;
    assert!(erased.status.success(), "{erased:?}");

    // Her tokens stop working, and she cannot log in; the running server learns of it within a
    // second (as of any revocation by the CLI), and opens none of her data after that.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let me = client
            .get(server.url("/me"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        let audit = audit_everything(&client, &server, &auditor_token).await;
        if me.status() == StatusCode::UNAUTHORIZED && found_in(&audit).is_empty() {
            assert!(audit.contains("[erased]"), "{audit}");
            assert!(audit.contains("UserErased"), "{audit}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still shown: {:?}",
            found_in(&audit)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refreshed = client
        .post(server.url("/refresh"))
        .bearer_auth(&refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    let login = post("/login", second.clone()).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);

    // The CLI's audit, in every format.
    for format in ["table", "json", "jsonl"] {
        let audit = cli(
            &database_url,
            &["audit", "--limit", "1000", "--format", format],
        )
        .await;
        assert!(audit.status.success(), "{audit:?}");
        let out = String::from_utf8(audit.stdout).unwrap();
        assert!(out.contains("UserErased"), "{format}: {out}");
        assert_eq!(found_in(&out), Vec::<&str>::new(), "{format}: {out}");
    }
    // Every table, the analysts' `audit_events` among them.
    assert_eq!(
        rows_holding_a_needle(&database_url).await,
        Vec::<String>::new()
    );
    let verified = cli(&database_url, &["verify"]).await;
    assert!(verified.status.success(), "{verified:?}");

    // The server's log, ended here so that it is all read: it never held any of it.
    let log = server.stop().await;
    assert!(log.contains("\"request\""), "{log}");
    assert_eq!(found_in(&log), Vec::<&str>::new(), "{log}");
    // Not a byte of her in the database, its WAL or its shared memory.
    match backend() {
        Backend::Sqlite => {
            let files = raw_files(dir.path());
            for needle in NEEDLES {
                assert!(
                    !contains(&files, needle.as_bytes()),
                    "the database files hold {needle:?}"
                );
            }
        }
        Backend::Postgres => eprintln!(
            "skipped the search of the database files: PostgreSQL keeps dead rows until VACUUM, \
             and this test cannot read its data directory"
        ),
    }

    // The name is free: someone else registers it, and logs in with their own password.
    let server = ServerProcess::start(&database_url, &args).await;
    let newcomer = json!({"username": NAME, "password": "a newcomer's password"});
    let again = client
        .post(server.url("/register"))
        .json(&newcomer)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let login = client
        .post(server.url("/login"))
        .json(&newcomer)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let old = client
        .post(server.url("/login"))
        .json(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let verified = cli(&database_url, &["verify"]).await;
    assert!(verified.status.success(), "{verified:?}");
}
