//! HTTP figures against baselines measured in the same run, with wrk as the load generator
//! (2 threads, on the same 2-core machine as the server).
//!
//! - Baseline A: a bare poem + poem-openapi server answering `GET /protected` with the same JSON
//!   body and no authentication: the framework's own limit.
//! - Baseline B: Argon2id verifications per second with the service's parameters on every core:
//!   the login limit.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use authlog::cli::ServeArgs;
use authlog::server::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::EndpointExt;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, OpenApiService};
use serde_json::Value;
use tempfile::TempDir;

use crate::figures::{record, Figure, Goal};
use crate::postgres::TempDatabase;
use crate::stats::median;

const ROUNDS: usize = 3;
const DURATION: &str = "5s";

#[derive(Object)]
struct LoggedInAs {
    logged_in_as: String,
}

struct Baseline;

#[OpenApi]
impl Baseline {
    #[oai(path = "/protected", method = "get")]
    async fn protected(&self) -> Json<LoggedInAs> {
        Json(LoggedInAs {
            logged_in_as: "bench".into(),
        })
    }
}

/// Baseline A on `addr`, until the process is killed.
pub async fn serve_baseline(addr: &str) -> anyhow::Result<()> {
    let app = OpenApiService::new(Baseline, "baseline", "1").map_to_response();
    poem::Server::new(TcpListener::bind(addr.to_owned()))
        .run(app)
        .await?;
    Ok(())
}

/// Baseline A, on a free port; answers its base URL.
async fn start_baseline() -> anyhow::Result<String> {
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let addr = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .context("no address")?;
    let app = OpenApiService::new(Baseline, "baseline", "1").map_to_response();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    Ok(format!("http://{addr}"))
}

/// What wrk reported.
pub(crate) struct Wrk {
    pub rps: f64,
    pub p99_ms: Option<f64>,
}

pub(crate) async fn wrk(args: &[&str]) -> anyhow::Result<Wrk> {
    let output = tokio::process::Command::new("wrk")
        .args(args)
        .output()
        .await
        .context("wrk is not installed")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("wrk failed: {text}");
    }
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in {text}"))?;
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| parse_duration_ms(v.trim()));
    Ok(Wrk { rps, p99_ms })
}

fn parse_duration_ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => return None,
    })
}

/// Argon2id verifications per second on every core, with the service's default parameters.
fn argon2_per_second() -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let argon2 = argon2::Argon2::default();
    let hash = argon2
        .hash_password(b"bench password", &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(3);
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (argon2, hash) = (argon2.clone(), hash.clone());
            std::thread::spawn(move || {
                let parsed = argon2::PasswordHash::new(&hash).ok();
                let mut done = 0u64;
                while Instant::now() < deadline {
                    if let Some(parsed) = &parsed {
                        let _ = argon2.verify_password(b"bench password", parsed);
                    }
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    total as f64 / 3.0
}

fn write(dir: &TempDir, name: &str, text: &str) -> anyhow::Result<String> {
    let path = dir.path().join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

pub async fn run(pg: &TempDatabase) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let baseline = start_baseline().await?;
    let url = format!("sqlite://{}", dir.path().join("http.db").display());
    let args = ServeArgs {
        bind: "127.0.0.1:0".parse()?,
        login_max_failures: 0,
        ..ServeArgs::from_env()?
    };
    let server = Server::start(&crate::postgres::database(&url), &args).await?;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let credentials = crate::register_bench_user(&client, &base).await?;
    // The same service on PostgreSQL, for the refresh figure.
    let on_postgres =
        Server::start(&crate::postgres::database(pg.fresh_schema().await?), &args).await?;
    let pg_base = format!("http://{}", on_postgres.addr());
    crate::register_bench_user(&client, &pg_base).await?;
    let mut tokens = Vec::new();
    for _ in 0..64 {
        let pair: Value = client
            .post(format!("{base}/login"))
            .json(&credentials)
            .send()
            .await?
            .json()
            .await?;
        tokens.push(pair["access_token"].as_str().unwrap_or_default().to_owned());
    }
    let header = format!("Authorization: Bearer {}", tokens[0]);
    let rotating = write(
        &dir,
        "tokens.lua",
        &format!(
            "local tokens = {{ {} }}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", \"/protected\", {{ [\"Authorization\"] = \"Bearer \" .. tokens[(i % #tokens) + 1] }})\nend\n",
            tokens.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ")
        ),
    )?;
    let login = write(
        &dir,
        "login.lua",
        "wrk.method = \"POST\"\nwrk.body = '{\"username\":\"bench\",\"password\":\"bench password\"}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )?;
    let protected = format!("{base}/protected");

    let (mut a, mut reused, mut distinct, mut b, mut logins, mut p99) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut refreshes, mut pg_refreshes) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        a.push(
            wrk(&[
                "-t1",
                "-c32",
                "-d",
                DURATION,
                &format!("{baseline}/protected"),
            ])
            .await?
            .rps,
        );
        reused.push(
            wrk(&["-t1", "-c32", "-d", DURATION, "-H", &header, &protected])
                .await?
                .rps,
        );
        distinct.push(
            wrk(&["-t1", "-c32", "-d", DURATION, "-s", &rotating, &protected])
                .await?
                .rps,
        );
        b.push(tokio::task::spawn_blocking(argon2_per_second).await?);
        logins.push(
            wrk(&[
                "-t2",
                "-c8",
                "-d",
                DURATION,
                "-s",
                &login,
                &format!("{base}/login"),
            ])
            .await?
            .rps,
        );
        refreshes.push(refresh_rate(&client, &base, &credentials).await?);
        pg_refreshes.push(refresh_rate(&client, &pg_base, &credentials).await?);
        // /protected latency while a login flood keeps every core busy hashing.
        let flood_login = login.clone();
        let flood_url = format!("{base}/login");
        let flood = tokio::spawn(async move {
            wrk(&["-t1", "-c16", "-d", "7s", "-s", &flood_login, &flood_url]).await
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let during = wrk(&[
            "-t1",
            "-c8",
            "-d",
            DURATION,
            "--latency",
            "-H",
            &header,
            &protected,
        ])
        .await?;
        flood.await??;
        p99.push(during.p99_ms.unwrap_or(f64::NAN));
    }
    let (a, reused, distinct, b, logins, p99) = (
        median(a),
        median(reused),
        median(distinct),
        median(b),
        median(logins),
        median(p99),
    );
    let (refreshes, pg_refreshes) = (median(refreshes), median(pg_refreshes));
    // /protected with one wrk thread (-t1 -c32), so that the server has the other core to
    // itself; /login with two, since the server's hashing, not wrk, is its bound.
    println!(
        "\n### HTTP (median of {ROUNDS} rounds, {DURATION} each, same machine; /protected wrk \
         -t1 -c32, /login wrk -t2 -c8)\n"
    );
    println!("| figure | authlog | baseline | ratio | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| GET /protected, one reused token (rps) | {reused:.0} | A: {a:.0} | {:.2}× | ≥ 0.85× |",
        reused / a
    );
    println!(
        "| GET /protected, 64 distinct tokens (rps) | {distinct:.0} | A: {a:.0} | {:.2}× | |",
        distinct / a
    );
    println!(
        "| POST /login (rps) | {logins:.1} | B: {b:.1} Argon2id/s | {:.2}× | ≥ 0.85× |",
        logins / b
    );
    println!("| POST /refresh on SQLite, durable (rps) | {refreshes:.0} | | | ≥ 2,000/s |");
    println!("| POST /refresh on PostgreSQL, durable (rps) | {pg_refreshes:.0} | | | |");
    println!("| GET /protected p99 during a login flood | {p99:.2} ms | | | ≤ 20 ms |");
    record(
        Figure::new(
            "GET /protected, one reused token, wrk -t1 -c32 (rps)",
            reused,
            "",
        )
        .against("A", a)
        .goal(Goal::RatioAtLeast(0.85)),
    );
    record(Figure::new("GET /protected, 64 distinct tokens (rps)", distinct, "").against("A", a));
    record(
        Figure::new(
            "POST /login against Argon2id on every core (rps)",
            logins,
            "",
        )
        .against("B", b)
        .goal(Goal::RatioAtLeast(0.85)),
    );
    record(
        Figure::new("POST /refresh on SQLite, durable (rps)", refreshes, "")
            .goal(Goal::AtLeast(2_000.0)),
    );
    record(Figure::new(
        "POST /refresh on PostgreSQL, durable (rps)",
        pg_refreshes,
        "",
    ));
    record(
        Figure::new("GET /protected p99 during a login flood", p99, " ms").goal(Goal::AtMost(20.0)),
    );
    server.stop().await?;
    on_postgres.stop().await?;
    Ok(())
}

/// `refresh-load URL`: the refresh figure's load against a running server, for a profiler.
pub async fn refresh_load(base: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let credentials = crate::register_bench_user(&client, base).await?;
    let rate = refresh_rate(&client, base, &credentials).await?;
    println!("{rate:.0} refreshes/s");
    Ok(())
}

/// Refreshes per second: 32 sessions, each refreshing its own chain as fast as it can.
async fn refresh_rate(
    client: &reqwest::Client,
    base: &str,
    credentials: &Value,
) -> anyhow::Result<f64> {
    crate::cluster::refresh_rate(client, &[base.to_owned()], credentials, 32).await
}
