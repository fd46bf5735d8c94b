//! authlog's benchmarks. Every figure is the median of several rounds, reported next to a
//! baseline measured in the same run, because these machines are shared and noisy.
//!
//! - `http`: GET /protected against a bare poem-openapi server (baseline A), POST /login against
//!   Argon2id on every core (baseline B), POST /refresh, and /protected p99 during a login flood.
//! - `append`: events/s appended one at a time (each waits for its durable commit) against the
//!   same number appended by 64 concurrent writers (group commit), on SQLite and PostgreSQL.
//! - `cluster`: 1, 2 and 4 instances on one PostgreSQL: durable events/s and refreshes/s
//!   together, and what one append batch costs.
//! - `audit`: audit queries (by username, type, time) on a log of 1,000 and of 1,000,000
//!   events (SQLite).
//! - `scale`: start-up time and login latency with 1,000 and with 1,000,000 events in the log.
//! - `propagation`: two instances on one PostgreSQL; a logout on A, then how long until B
//!   refuses the token (median and p99).
//! - `models`: the read models at scale: `/sessions` and logout-all at 30,000 past sessions,
//!   start-up with 100,000 recent revocations, and parallel guesses against the throttle.
//! - `rebuild`: a projection rebuilt from a log of 1,000,000 events.
//! - `feed`: the event feed with 100 and 1,000 consumers connected: `/protected` and
//!   `/refresh` beside them, memory per consumer, commit to receipt.
//! - `busy`: a login after 3,000 logins of the same account in the throttle window, against the
//!   account's first logins, on SQLite and PostgreSQL.
//!
//! Each bench also records its headline figures ([`figures`]); at the end of the run they are
//! printed as one table with their baselines, and written into BENCHMARKS.md's current figures
//! table when `AUTHLOG_BENCH_RECORD` names that file (`bench/run.sh` does).
//!
//! - `baseline-a ADDR`: serves baseline A alone until killed, for `bench/profile.sh`, which
//!   counts the instructions per request of it and of authlog under callgrind;
//!   `instructions AUTHLOG BASELINE` records the two counts it found.
//! - `refresh-load URL`: registers (or reuses) the bench's user at a running authlog and keeps
//!   32 refresh chains busy for 5 s, printing refreshes/s: a load to profile the write path
//!   under (`perf record -p PID` on the server).
//!
//! Run with `bench/run.sh` (release build). PostgreSQL comes from AUTHLOG_BENCH_POSTGRES_ADMIN_URL
//! (default `postgres://postgres@127.0.0.1:5432/postgres`); each run makes and drops its own
//! database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::Context as _;

mod admin;
mod append;
mod audit;
mod busy;
mod cluster;
mod feed;
mod figures;
mod http;
mod mail;
mod models;
mod postgres;
mod propagation;
mod scale;
mod stats;

/// Serve options for a bench that logs in only to get tokens: any port, cheap hashing, no
/// login throttle.
fn cheap_hashing() -> anyhow::Result<authlog::cli::ServeArgs> {
    Ok(authlog::cli::ServeArgs {
        bind: "127.0.0.1:0".parse()?,
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        login_max_failures: 0,
        ..authlog::cli::ServeArgs::from_env()?
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if which == "instructions" {
        return instructions();
    }
    if which == "baseline-a" {
        let addr = std::env::args()
            .nth(2)
            .context("usage: authlog-bench baseline-a ADDR")?;
        return http::serve_baseline(&addr).await;
    }
    if which == "refresh-load" {
        let url = std::env::args()
            .nth(2)
            .context("usage: authlog-bench refresh-load URL")?;
        return http::refresh_load(&url).await;
    }
    // A database of the run's own, only for the benches that use PostgreSQL, and dropped
    // whether or not they succeed.
    let uses_postgres = matches!(
        which.as_str(),
        "all" | "admin" | "append" | "busy" | "cluster" | "http" | "models" | "propagation"
    );
    let pg = match uses_postgres {
        true => Some(postgres::TempDatabase::create().await?),
        false => None,
    };
    let outcome = run(&which, pg.as_ref()).await;
    if let Some(pg) = pg {
        pg.drop_database().await?;
    }
    outcome?;
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    figures::finish(format!("bench/run.sh {command}").trim_end())
}

async fn run(which: &str, pg: Option<&postgres::TempDatabase>) -> anyhow::Result<()> {
    let pg = || pg.context("this bench needs PostgreSQL");
    if matches!(which, "all" | "append") {
        append::run(pg()?).await?;
    }
    if matches!(which, "all" | "cluster") {
        cluster::run(pg()?).await?;
    }
    if matches!(which, "all" | "http") {
        http::run(pg()?).await?;
    }
    if matches!(which, "all" | "audit") {
        audit::run().await?;
    }
    if matches!(which, "all" | "scale") {
        scale::run().await?;
    }
    if matches!(which, "all" | "models") {
        models::run(pg()?).await?;
    }
    if matches!(which, "all" | "rebuild") {
        let events = std::env::args().nth(2).map(|n| n.parse()).transpose()?;
        models::run_rebuild(events).await?;
    }
    if matches!(which, "all" | "propagation") {
        propagation::run(pg()?).await?;
    }
    if matches!(which, "all" | "busy") {
        busy::run(pg()?).await?;
    }
    if matches!(which, "all" | "admin") {
        admin::run(pg()?).await?;
    }
    if matches!(which, "all" | "mail") {
        mail::run().await?;
    }
    if matches!(which, "all" | "feed") {
        feed::run().await?;
    }
    Ok(())
}

/// `instructions AUTHLOG BASELINE`: records the instructions per GET /protected that
/// `bench/profile.sh` counted, for the current figures table.
fn instructions() -> anyhow::Result<()> {
    let count = |n: usize| -> anyhow::Result<f64> {
        let arg = std::env::args()
            .nth(n)
            .context("usage: authlog-bench instructions AUTHLOG BASELINE")?;
        Ok(arg.parse()?)
    };
    use figures::{record, Figure, Goal};
    record(
        Figure::new("instructions per GET /protected", count(2)?, "")
            .against("A", count(3)?)
            .goal(Goal::RatioAtMost(1.25)),
    );
    figures::finish("bench/profile.sh")
}

/// Registers the benches' account (`bench`) at `base` and answers its credentials. A 409 (a
/// server an earlier run or round already registered it on) leaves the account as it is.
pub async fn register_bench_user(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<serde_json::Value> {
    let credentials = serde_json::json!({"username": "bench", "password": "bench password"});
    client
        .post(format!("{base}/register"))
        .json(&credentials)
        .send()
        .await?;
    Ok(credentials)
}

/// Logs in with `credentials` at `base`; answers the access token.
pub async fn access_token(
    client: &reqwest::Client,
    base: &str,
    credentials: &serde_json::Value,
) -> anyhow::Result<String> {
    let pair: serde_json::Value = client
        .post(format!("{base}/login"))
        .json(credentials)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(pair["access_token"].as_str().unwrap_or_default().to_owned())
}

/// The users' data keys every store this process opens is started with: one master key for the
/// process, so that a database opened twice opens its keys both times.
pub fn personal() -> std::sync::Arc<dyn authlog_application::ports::PersonalData> {
    static MASTER: std::sync::OnceLock<std::sync::Arc<authlog_crypto::MasterKey>> =
        std::sync::OnceLock::new();
    let master = MASTER.get_or_init(|| {
        // The system's randomness is there on every machine this runs on.
        std::sync::Arc::new(authlog_crypto::MasterKey::generate().expect("randomness"))
    });
    std::sync::Arc::new(authlog_crypto::DataKeys::new(master.clone()))
}
