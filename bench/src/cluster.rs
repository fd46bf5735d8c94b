//! The write path at cluster scale: 1, 2 and 4 instances on one PostgreSQL, all on this machine
//! (instances, database and load generator share its cores). Each instance is a whole
//! `Server` (its own store, writer, connections and LISTEN), started in this process.
//!
//! Reported: durable events/s with 64 writers spread over the instances' stores, refreshes/s
//! with 64 refresh chains spread over the instances, and what one batch costs (the figures
//! the ceiling at a 0.5 ms network round trip is worked out from in BENCHMARKS.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authlog::server::Server;
use authlog_application::ports::{EventStore, ExpectedVersion, StreamWrite};
use authlog_domain::StreamId;
use authlog_store::Store;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::append::{event, WRITERS};
use crate::figures::{record, Figure, Goal};
use crate::postgres::TempDatabase;
use crate::stats::median;

const ROUNDS: usize = 3;
const CHAINS: usize = 64;

pub async fn run(pg: &TempDatabase) -> anyhow::Result<()> {
    println!("\n### Instances on one PostgreSQL (median of {ROUNDS} rounds)\n");
    println!(
        "All on this machine: the instances, PostgreSQL and the load generator share its cores."
    );
    println!();
    println!(
        "| instances | durable events/s, {WRITERS} writers | × one | refreshes/s, {CHAINS} chains \
         | × one | machine busy while refreshing | CPU ms per refresh |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut one = None;
    for instances in [1, 2, 4] {
        let (mut events, mut refreshes, mut busy, mut cost) = (vec![], vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            events.push(appends(&pg.fresh_schema().await?, instances).await?);
            let (rate, load) = refresh_round(&pg.fresh_schema().await?, instances).await?;
            refreshes.push(rate);
            busy.push(load.busy * 100.0);
            cost.push(load.cpu_seconds / load.refreshes * 1e3);
        }
        let (events, refreshes) = (median(events), median(refreshes));
        let (e1, r1) = *one.get_or_insert((events, refreshes));
        let (busy, cost) = (median(busy), median(cost));
        println!(
            "| {instances} | {events:.0} | {:.2}× | {refreshes:.0} | {:.2}× | {busy:.0} % | {cost:.3} |",
            events / e1,
            refreshes / r1,
        );
        if instances == 1 {
            // Why more instances cannot add refreshes on this machine, when it is so.
            record(Figure::new(
                "machine busy while one instance refreshes (%)",
                busy,
                "",
            ));
        }
        if instances > 1 {
            let goal = match instances {
                2 => Goal::RatioAtLeast(1.6),
                _ => Goal::None,
            };
            record(
                Figure::new(
                    format!("refreshes/s, {instances} instances on one PostgreSQL"),
                    refreshes,
                    "",
                )
                .against("1 instance", r1)
                .goal(goal),
            );
            record(
                Figure::new(
                    format!("durable events/s, {instances} instances on one PostgreSQL"),
                    events,
                    "",
                )
                .against("1 instance", e1),
            );
        }
    }
    batch_costs(pg).await
}

/// Events/s: `WRITERS` tasks spread over `instances` stores on the database at `url`.
async fn appends(url: &str, instances: usize) -> anyhow::Result<f64> {
    let mut stores: Vec<Arc<dyn EventStore>> = Vec::new();
    for _ in 0..instances {
        stores.push(Arc::new(Store::open(url, crate::personal()).await?));
    }
    Ok(crate::append::concurrent(&stores).await)
}

/// What the whole machine did during a refresh run: every process, PostgreSQL and the load
/// generator included, from `/proc/stat`.
struct Load {
    /// Busy share of all cores, 0 to 1.
    busy: f64,
    cpu_seconds: f64,
    refreshes: f64,
}

/// The machine's busy and total CPU time so far, in clock ticks, from `/proc/stat`.
fn cpu_ticks() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().unwrap_or_default();
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    anyhow::ensure!(fields.len() >= 5, "unexpected /proc/stat: {line}");
    let total: u64 = fields.iter().sum();
    // idle and iowait
    let idle = fields[3] + fields[4];
    Ok((total - idle, total))
}

/// Refreshes/s: `CHAINS` sessions, spread over `instances` servers, each refreshing its own
/// chain at its own instance for 5 s; and what the machine spent on them.
async fn refresh_round(url: &str, instances: usize) -> anyhow::Result<(f64, Load)> {
    // The logins only set the chains up.
    let args = crate::cheap_hashing()?;
    let mut servers = Vec::new();
    for _ in 0..instances {
        servers.push(Server::start(&crate::postgres::database(url), &args).await?);
    }
    let bases: Vec<String> = servers
        .iter()
        .map(|s| format!("http://{}", s.addr()))
        .collect();
    let client = reqwest::Client::new();
    let credentials = crate::register_bench_user(&client, &bases[0]).await?;
    let (busy_before, total_before) = cpu_ticks()?;
    let started = Instant::now();
    let rate = refresh_rate(&client, &bases, &credentials, CHAINS).await?;
    let seconds = started.elapsed().as_secs_f64();
    let (busy_after, total_after) = cpu_ticks()?;
    for server in servers {
        server.stop().await?;
    }
    // Clock ticks are 1/100 s on Linux (USER_HZ).
    let busy_ticks = (busy_after - busy_before) as f64;
    let load = Load {
        busy: busy_ticks / (total_after - total_before).max(1) as f64,
        cpu_seconds: busy_ticks / 100.0,
        refreshes: rate * seconds,
    };
    Ok((rate, load))
}

/// Refreshes per second: `chains` sessions, chain `i` logged in and refreshed at
/// `bases[i % bases.len()]`, each as fast as it can for 5 s.
pub async fn refresh_rate(
    client: &reqwest::Client,
    bases: &[String],
    credentials: &Value,
    chains: usize,
) -> anyhow::Result<f64> {
    let mut started_chains = Vec::new();
    for i in 0..chains {
        let base = bases[i % bases.len()].clone();
        let pair: Value = client
            .post(format!("{base}/login"))
            .json(credentials)
            .send()
            .await?
            .json()
            .await?;
        let token = pair["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        started_chains.push((base, token));
    }
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(5);
    let workers = started_chains.into_iter().map(|(base, mut token)| {
        let (client, done) = (client.clone(), done.clone());
        tokio::spawn(async move {
            while Instant::now() < deadline {
                let Ok(response) = client
                    .post(format!("{base}/refresh"))
                    .bearer_auth(&token)
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(pair) = response.json::<Value>().await else {
                    break;
                };
                let Some(next) = pair["refresh_token"].as_str() else {
                    break;
                };
                token = next.to_owned();
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    futures::future::join_all(workers).await;
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// What one batch costs, one at a time on one store: a batch of 1 event and one of 64, and a
/// bare round trip (`SELECT 1`) on this machine's loopback.
async fn batch_costs(pg: &TempDatabase) -> anyhow::Result<()> {
    const SAMPLES: usize = 200;
    let url = pg.fresh_schema().await?;
    let store = Store::open(&url, crate::personal()).await?;
    let timed = |events: usize, n: usize| {
        let store = &store;
        async move {
            let mut samples = Vec::with_capacity(SAMPLES);
            for s in 0..SAMPLES {
                let writes = (0..events)
                    .map(|e| {
                        let stream = StreamId::from_stored(format!("b{n}-{s}-{e}"));
                        StreamWrite::new(stream, ExpectedVersion::NoStream, vec![event(e)])
                    })
                    .collect();
                let started = Instant::now();
                store.append(writes).await.unwrap();
                samples.push(started.elapsed().as_secs_f64() * 1e3);
            }
            median(samples)
        }
    };
    let one = timed(1, 1).await;
    let many = timed(64, 64).await;
    let mut conn = PgConnection::connect(&url).await?;
    let mut trips = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        trips.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let trip = median(trips);
    println!("\n### What one batch costs on PostgreSQL (median of {SAMPLES}, one at a time)\n");
    println!("| figure | ms |");
    println!("|---|---|");
    println!("| a batch of 1 event, durable | {one:.3} |");
    println!("| a batch of 64 events (64 streams), durable | {many:.3} |");
    println!("| per further event | {:.4} |", (many - one) / 63.0);
    println!("| a bare round trip (`SELECT 1`) | {trip:.3} |");
    Ok(())
}
