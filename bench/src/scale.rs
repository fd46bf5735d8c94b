//! Start-up time and login latency with 1,000 and with 1,000,000 events in the log (SQLite):
//! neither may replay the log, so the large log may cost at most 1.2× the small one.
//!
//! The logs are the audit benchmark's synthetic history (logins, failures, revocations of
//! 10,000 users), placed 60 days in the past: the history a long-running service accumulates.
//! One `bench` user is registered on top; start-up is `Server::start` (migrations, keys,
//! revocation set, log follower) until it answers, and login latency is a sequential
//! `POST /login` for that user (Argon2id included).

use std::time::Instant;

use authlog::cli::ServeArgs;
use authlog::server::Server;
use authlog_application::ports::Clock as _;
use authlog_crypto::SystemClock;
use authlog_store::Store;
use serde_json::json;
use time::Duration;

use crate::audit::fill;
use crate::figures::{record, Figure, Goal};
use crate::stats::median;

const STARTS: usize = 5;
const LOGINS: usize = 20;

pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let history_start = SystemClock.now() - Duration::days(60);
    let mut figures = Vec::new();
    for events in [1_000, 1_000_000] {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("{events}.db")).display()
        );
        let seconds = fill(
            &Store::open(&url, crate::personal()).await?,
            0,
            events,
            history_start,
        )
        .await;
        eprintln!("filled {events} events in {seconds:.1} s");
        let args = ServeArgs {
            bind: "127.0.0.1:0".parse()?,
            ..ServeArgs::from_env()?
        };
        let credentials = json!({"username": "bench", "password": "bench password"});
        let client = reqwest::Client::new();

        let mut starts = Vec::with_capacity(STARTS);
        let mut logins = Vec::with_capacity(LOGINS);
        for round in 0..STARTS {
            let began = Instant::now();
            let server = Server::start(&crate::postgres::database(&url), &args).await?;
            let base = format!("http://{}", server.addr());
            client
                .get(format!("{base}/readyz"))
                .send()
                .await?
                .error_for_status()?;
            starts.push(began.elapsed().as_secs_f64() * 1000.0);
            if round == 0 {
                client
                    .post(format!("{base}/register"))
                    .json(&credentials)
                    .send()
                    .await?;
            }
            if round == STARTS - 1 {
                for _ in 0..LOGINS {
                    let began = Instant::now();
                    client
                        .post(format!("{base}/login"))
                        .json(&credentials)
                        .send()
                        .await?
                        .error_for_status()?;
                    logins.push(began.elapsed().as_secs_f64() * 1000.0);
                }
            }
            server.stop().await?;
        }
        figures.push((median(starts), median(logins)));
    }
    let [(start_small, login_small), (start_large, login_large)] = [figures[0], figures[1]];
    println!("\n### Start-up and login with a long history (SQLite; medians of {STARTS} starts, {LOGINS} logins)\n");
    println!("| figure | 1,000 events | 1,000,000 events | ratio | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| start-up until /readyz answers | {start_small:.1} ms | {start_large:.1} ms | {:.2}× | ≤ 1.2× |",
        start_large / start_small
    );
    println!(
        "| POST /login latency | {login_small:.1} ms | {login_large:.1} ms | {:.2}× | ≤ 1.2× |",
        login_large / login_small
    );
    record(
        Figure::new(
            "start-up until /readyz, 1,000,000 events in the log",
            start_large,
            " ms",
        )
        .against("at 1,000", start_small)
        .goal(Goal::RatioAtMost(1.2)),
    );
    record(
        Figure::new(
            "POST /login latency, 1,000,000 events in the log",
            login_large,
            " ms",
        )
        .against("at 1,000", login_small)
        .goal(Goal::RatioAtMost(1.2)),
    );
    Ok(())
}
