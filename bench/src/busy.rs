//! A busy account: does a login cost more after thousands of logins of the same account inside
//! the throttle window? (It did: the throttle folded every check of the window, so a shared
//! service account, or someone holding one valid password, slowed every login of it.)
//!
//! On SQLite and on PostgreSQL, with the default throttle (5 failures in 15 minutes) and Argon2
//! parameters cheap enough (64 KiB, 1 pass) that the hash does not hide the reads:
//!
//! - the median of [`TIMED`] sequential logins of a fresh account, then of [`TIMED`] more after
//!   [`HISTORY`] logins of it (the history made by 4 clients at once, to be quick);
//! - answers/s of 16 parallel login loops of that account after the history, for 5 s (most
//!   are 429: checks in flight fill the limit, as they should).

use std::time::{Duration, Instant};

use authlog::cli::ServeArgs;
use authlog::server::Server;
use serde_json::json;

use crate::figures::{record, Figure, Goal};
use crate::postgres::TempDatabase;
use crate::stats::median;

/// Logins timed, before and after the history.
const TIMED: usize = 50;
/// Logins of the account between the two.
const HISTORY: usize = 3_000;
/// Parallel login loops for the throughput figure.
const LOOPS: usize = 16;

struct Busy {
    /// Median milliseconds of a login of a fresh account.
    first_ms: f64,
    /// The same after [`HISTORY`] logins.
    after_ms: f64,
    /// A new account's logins after the history: what the database's growth alone costs.
    newcomer_ms: f64,
    /// Answers/s (logins and refusals) of [`LOOPS`] parallel loops after the history.
    parallel_rps: f64,
}

async fn attempt(client: &reqwest::Client, base: &str) -> anyhow::Result<reqwest::Response> {
    attempt_as(client, base, "bench").await
}

async fn attempt_as(
    client: &reqwest::Client,
    base: &str,
    username: &str,
) -> anyhow::Result<reqwest::Response> {
    Ok(client
        .post(format!("{base}/login"))
        .json(&json!({"username": username, "password": "bench password"}))
        .send()
        .await?)
}

/// The median milliseconds of [`TIMED`] sequential logins as `username`.
async fn timed_logins(client: &reqwest::Client, base: &str, username: &str) -> anyhow::Result<f64> {
    let mut times = Vec::with_capacity(TIMED);
    for _ in 0..TIMED {
        let began = Instant::now();
        attempt_as(client, base, username)
            .await?
            .error_for_status()?;
        times.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(median(times))
}

async fn busy_account(url: &str) -> anyhow::Result<Busy> {
    let args = ServeArgs {
        bind: "127.0.0.1:0".parse()?,
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        // The default throttle: the point is what its read costs.
        login_max_failures: 5,
        login_window: 900,
        ..ServeArgs::from_env()?
    };
    let server = Server::start(&crate::postgres::database(url), &args).await?;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    crate::register_bench_user(&client, &base).await?;
    let first_ms = timed_logins(&client, &base, "bench").await?;
    client
        .post(format!("{base}/register"))
        .json(&json!({"username": "newcomer", "password": "bench password"}))
        .send()
        .await?
        .error_for_status()?;
    let history = (0..4).map(|_| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let mut done = 0;
            while done < HISTORY / 4 {
                // Four at once can still meet the bound now and then (a reservation that loses
                // its race too often is answered 429 too): that one is simply tried again.
                match attempt(&client, &base).await?.status() {
                    reqwest::StatusCode::TOO_MANY_REQUESTS => continue,
                    status if status.is_success() => done += 1,
                    status => anyhow::bail!("login: {status}"),
                }
            }
            anyhow::Ok(())
        })
    });
    for loop_ in futures::future::join_all(history).await {
        loop_??;
    }
    // Let the read models that may lag (the analysts' table) catch up with the history, then
    // time the account and, as the control, a new account on the database as the history
    // left it, alternately: what the account's history costs, told from what a larger
    // database costs, under the same conditions.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut after, mut newcomer) = (Vec::new(), Vec::new());
    for _ in 0..TIMED {
        for (username, times) in [("bench", &mut after), ("newcomer", &mut newcomer)] {
            let began = Instant::now();
            attempt_as(&client, &base, username)
                .await?
                .error_for_status()?;
            times.push(began.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let (after_ms, newcomer_ms) = (median(after), median(newcomer));
    let until = Instant::now() + Duration::from_secs(5);
    let loops = (0..LOOPS).map(|_| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                attempt(&client, &base).await?;
                done += 1;
            }
            anyhow::Ok(done)
        })
    });
    let began = Instant::now();
    let mut logins = 0;
    for loop_ in futures::future::join_all(loops).await {
        logins += loop_??;
    }
    let parallel_rps = logins as f64 / began.elapsed().as_secs_f64();
    server.stop().await?;
    Ok(Busy {
        first_ms,
        after_ms,
        newcomer_ms,
        parallel_rps,
    })
}

pub async fn run(pg: &TempDatabase) -> anyhow::Result<()> {
    println!("\n### A busy account (cheap Argon2, the default throttle; medians)\n");
    println!("| backend | login, fresh account | after {HISTORY} logins | ratio | goal | a new account, after (alternating) | after / new account | {LOOPS} parallel loops after (answers/s) |");
    println!("|---|---|---|---|---|---|---|---|");
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("busy.db").display());
    for (backend, url) in [("SQLite", sqlite), ("PostgreSQL", pg.fresh_schema().await?)] {
        let busy = busy_account(&url).await?;
        println!(
            "| {backend} | {:.2} ms | {:.2} ms | {:.2}× | ≤ 1.2× | {:.2} ms | {:.2}× | {:.0} |",
            busy.first_ms,
            busy.after_ms,
            busy.after_ms / busy.first_ms,
            busy.newcomer_ms,
            busy.after_ms / busy.newcomer_ms,
            busy.parallel_rps
        );
        record(
            Figure::new(
                format!("login after {HISTORY} logins of the account, {backend}"),
                busy.after_ms,
                " ms",
            )
            .against("first logins", busy.first_ms)
            .goal(Goal::RatioAtMost(1.2)),
        );
    }
    Ok(())
}
