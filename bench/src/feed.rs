//! The event feed (`GET /events/stream`) on one instance (SQLite), with consumers connected:
//!
//! - `GET /protected` p99 with 1,000 idle consumers against none (wrk, 32 connections, 5 s).
//! - `GET /protected` and `POST /refresh` rates with 100 consumers receiving every event (each
//!   refresh is two), against none.
//! - Commit to receipt: a registration's answer to its arrival at a consumer, with 100 connected.
//! - Memory per connected consumer: the process's resident set before and after 1,000 connect.
//!   The bench's own client connections live in the same process, so this is an upper bound.
//!
//! Rounds alternate with and without consumers, and each figure is the median of its rounds.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use authlog::server::Server;
use authlog_application::access::Caller;
use authlog_application::ports::Metadata;
use authlog_application::streams::UserRef;
use authlog_crypto::SystemClock;
use authlog_domain::{Role, Username};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::figures::{record, Figure, Goal};
use crate::stats::median;

const ROUNDS: usize = 3;
const LATENCY_SAMPLES: usize = 100;

pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("feed.db").display());
    let database = crate::postgres::database(&url);
    let server = Server::start(&database, &crate::cheap_hashing()?).await?;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let credentials = crate::register_bench_user(&client, &base).await?;
    // The feed is for admins: the bench's user is made one, as an operator would.
    let services =
        authlog::services::Services::open(&database, std::sync::Arc::new(SystemClock)).await?;
    services
        .roles
        .grant(
            &Caller::Operator,
            UserRef::Name(&Username::parse("bench")?),
            Role::admin(),
            &Metadata::default(),
        )
        .await?;
    let token = crate::access_token(&client, &base, &credentials).await?;
    let protected = format!("{base}/protected");
    let header = format!("Authorization: Bearer {token}");

    // Memory and the p99 beside 1,000 idle consumers.
    let (mut idle_p99, mut busy_p99) = (vec![], vec![]);
    let mut per_consumer = vec![];
    for _ in 0..ROUNDS {
        idle_p99.push(p99(&protected, &header).await?);
        let before = resident_kib()?;
        let consumers = connect(&base, &token, 1_000).await?;
        let after = resident_kib()?;
        per_consumer.push((after - before) as f64 / 1_000.0);
        busy_p99.push(p99(&protected, &header).await?);
        stop(consumers);
    }

    // Rates beside 100 consumers that receive every event.
    let (mut alone, mut beside) = (vec![], vec![]);
    let (mut refresh_alone, mut refresh_beside) = (vec![], vec![]);
    let mut latencies = vec![];
    for _ in 0..ROUNDS {
        alone.push(rps(&protected, &header).await?);
        refresh_alone.push(refresh_rate(&client, &base, &credentials).await?);
        let consumers = connect(&base, &token, 100).await?;
        beside.push(rps(&protected, &header).await?);
        refresh_beside.push(refresh_rate(&client, &base, &credentials).await?);
        stop(consumers);
    }
    {
        let mut watcher = Consumer::connect(&base, &token, "?type=Registered").await?;
        let others = connect(&base, &token, 99).await?;
        watcher.drain(Duration::from_millis(500)).await?;
        for n in 0..LATENCY_SAMPLES {
            let started = Instant::now();
            client
                .post(format!("{base}/register"))
                .json(&json!({"username": format!("feed-{n}"), "password": "bench password"}))
                .send()
                .await?
                .error_for_status()?;
            let answered = started.elapsed();
            watcher
                .next(Duration::from_secs(5))
                .await?
                .context("a registration never reached the feed")?;
            latencies.push((started.elapsed() - answered).as_secs_f64() * 1000.0);
        }
        stop(others);
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let (idle_p99, busy_p99) = (median(idle_p99), median(busy_p99));
    let (alone, beside) = (median(alone), median(beside));
    let (refresh_alone, refresh_beside) = (median(refresh_alone), median(refresh_beside));
    let per_consumer = median(per_consumer);

    println!("\n### The event feed (SQLite, medians of {ROUNDS} rounds)\n");
    println!("| figure | with consumers | without | ratio | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| GET /protected p99, 1,000 idle consumers | {busy_p99:.2} ms | {idle_p99:.2} ms | {:.2}× | ≤ 1.2× |",
        busy_p99 / idle_p99
    );
    println!(
        "| GET /protected rps, 100 consumers | {beside:.0} | {alone:.0} | {:.2}× | ≥ 0.9× |",
        beside / alone
    );
    println!(
        "| POST /refresh rps, 100 consumers receiving every event | {refresh_beside:.0} | {refresh_alone:.0} | {:.2}× | ≥ 0.9× |",
        refresh_beside / refresh_alone
    );
    println!("| memory per connected consumer (upper bound) | {per_consumer:.1} KiB | | | |");
    println!(
        "| commit to receipt, 100 consumers, p50 / p99 | {:.2} / {:.2} ms | | | p99 ≤ 100 ms |",
        at(0.5),
        at(0.99)
    );

    record(
        Figure::new(
            "GET /protected p99 beside 1,000 feed consumers",
            busy_p99,
            " ms",
        )
        .against("none", idle_p99)
        .goal(Goal::RatioAtMost(1.2)),
    );
    record(
        Figure::new("GET /protected rps beside 100 feed consumers", beside, "")
            .against("none", alone)
            .goal(Goal::RatioAtLeast(0.9)),
    );
    record(
        Figure::new(
            "POST /refresh rps beside 100 feed consumers",
            refresh_beside,
            "",
        )
        .against("none", refresh_alone)
        .goal(Goal::RatioAtLeast(0.9)),
    );
    record(
        Figure::new(
            "feed, commit to receipt with 100 consumers, p99",
            at(0.99),
            " ms",
        )
        .goal(Goal::AtMost(100.0)),
    );
    server.stop().await?;
    Ok(())
}

async fn p99(url: &str, header: &str) -> anyhow::Result<f64> {
    crate::http::wrk(&["-t1", "-c32", "-d5s", "--latency", "-H", header, url])
        .await?
        .p99_ms
        .context("wrk printed no p99")
}

async fn rps(url: &str, header: &str) -> anyhow::Result<f64> {
    Ok(
        crate::http::wrk(&["-t1", "-c32", "-d5s", "-H", header, url])
            .await?
            .rps,
    )
}

async fn refresh_rate(
    client: &reqwest::Client,
    base: &str,
    credentials: &Value,
) -> anyhow::Result<f64> {
    crate::cluster::refresh_rate(client, &[base.to_owned()], credentials, 32).await
}

/// `n` consumers following the feed from the log's head (attached, not catching up on the
/// history), each reading everything it is sent.
async fn connect(base: &str, token: &str, n: usize) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let head: Value = reqwest::Client::new()
        .get(format!("{base}/audit/checkpoint"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let after = format!("?after={}", head["position"]);
    let mut consumers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut consumer = Consumer::connect(base, token, &after).await?;
        consumers.push(tokio::spawn(async move {
            while consumer.response.chunk().await.ok().flatten().is_some() {}
        }));
    }
    Ok(consumers)
}

fn stop(consumers: Vec<JoinHandle<()>>) {
    for consumer in consumers {
        consumer.abort();
    }
}

/// The process's resident set, in KiB.
fn resident_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

/// One consumer of the feed, on a connection of its own.
struct Consumer {
    response: reqwest::Response,
    buffer: String,
}

impl Consumer {
    async fn connect(base: &str, token: &str, query: &str) -> anyhow::Result<Self> {
        // A client per consumer: one connection each, as separate consumers have.
        let response = reqwest::Client::new()
            .get(format!("{base}/events/stream{query}"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?;
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next event's frame, within `within`.
    async fn next(&mut self, within: Duration) -> anyhow::Result<Option<String>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if frame.contains("\ndata: ") || frame.starts_with("data: ") {
                    return Ok(Some(frame));
                }
                continue;
            }
            let Ok(chunk) = tokio::time::timeout_at(deadline, self.response.chunk()).await else {
                return Ok(None);
            };
            match chunk? {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => return Ok(None),
            }
        }
    }

    /// Reads until `quiet` passes without an event.
    async fn drain(&mut self, quiet: Duration) -> anyhow::Result<()> {
        while self.next(quiet).await?.is_some() {}
        Ok(())
    }
}
