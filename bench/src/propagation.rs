//! Revocation propagation between two instances on one PostgreSQL.

use std::time::{Duration, Instant};

use authlog::server::Server;
use reqwest::StatusCode;
use serde_json::Value;

use crate::figures::{record, Figure};
use crate::postgres::TempDatabase;
use crate::stats::percentile;

const SAMPLES: usize = 200;

pub async fn run(pg: &TempDatabase) -> anyhow::Result<()> {
    let url = pg.fresh_schema().await?;
    // This measures propagation, not Argon2.
    let args = crate::cheap_hashing()?;
    let a = Server::start(&crate::postgres::database(&url), &args).await?;
    let b = Server::start(&crate::postgres::database(&url), &args).await?;
    let (a_url, b_url) = (
        format!("http://{}", a.addr()),
        format!("http://{}", b.addr()),
    );
    let client = reqwest::Client::new();
    let credentials = crate::register_bench_user(&client, &a_url).await?;

    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let tokens: Value = client
            .post(format!("{a_url}/login"))
            .json(&credentials)
            .send()
            .await?
            .json()
            .await?;
        let access = tokens["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ok = client
            .get(format!("{b_url}/protected"))
            .bearer_auth(&access)
            .send()
            .await?;
        anyhow::ensure!(ok.status() == StatusCode::OK, "B does not accept A's token");
        client
            .delete(format!("{a_url}/logout"))
            .bearer_auth(&access)
            .send()
            .await?;
        let logged_out = Instant::now();
        loop {
            let status = client
                .get(format!("{b_url}/protected"))
                .bearer_auth(&access)
                .send()
                .await?
                .status();
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            anyhow::ensure!(
                logged_out.elapsed() < Duration::from_secs(5),
                "B never refused the token"
            );
        }
        samples.push(logged_out.elapsed());
    }
    let p50 = percentile(&mut samples, 50.0);
    let p99 = percentile(&mut samples, 99.0);
    println!("\n### Revocation propagation, instance A to B on PostgreSQL ({SAMPLES} logouts)\n");
    println!("| median | p99 | max |");
    println!("|---|---|---|");
    println!(
        "| {:.1} ms | {:.1} ms | {:.1} ms |",
        ms(p50),
        ms(p99),
        ms(*samples.last().unwrap_or(&p99))
    );
    record(Figure::new(
        "revocation propagation, A to B on PostgreSQL, median",
        ms(p50),
        " ms",
    ));
    record(Figure::new(
        "revocation propagation, A to B on PostgreSQL, p99",
        ms(p99),
        " ms",
    ));
    a.stop().await?;
    b.stop().await?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
