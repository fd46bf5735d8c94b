//! Email:
//!
//! - `POST /password/forgot` for an account with a verified address against a name that is no
//!   account, interleaved: medians and Welch's t on 200 samples each.
//! - Mail latency: from the commit of `MailCodeIssued` (the answer to `PUT /me/email`) to the
//!   end of the message's DATA at an SMTP server on loopback, p50 and p99.
//!
//! The SMTP server is a minimal sink here (it answers each command and notes when a message's
//! data ends), so the figure is authlog's outbox and lettre, not a mail server's queue.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authlog::server::Server;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::figures::{record, Figure, Goal};
use crate::stats::{median, percentile};

const SAMPLES: usize = 200;
const MAILS: usize = 100;

pub async fn run() -> anyhow::Result<()> {
    let sink = Sink::start().await?;
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("mail.db").display());
    let args = authlog::cli::ServeArgs {
        smtp_url: Some(format!("smtp://127.0.0.1:{}", sink.port)),
        login_max_failures: 0,
        ..crate::cheap_hashing()?
    };
    let server = Server::start(&crate::postgres::database(&url), &args).await?;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/register"))
        .json(&json!({"username": "bench", "password": "bench password", "email": "bench@example.com"}))
        .send()
        .await?
        .error_for_status()?;
    let body: Value = client
        .post(format!("{base}/login"))
        .json(&json!({"username": "bench", "password": "bench password"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = body["access_token"].as_str().unwrap_or_default().to_owned();
    let code = sink.wait_for(1).await?.1;
    client
        .post(format!("{base}/me/email/verify"))
        .bearer_auth(&token)
        .json(&json!({"code": code}))
        .send()
        .await?
        .error_for_status()?;

    // Forgot: an account (a reset code is issued at most once a minute, so most of these only
    // look the account up) against nobody, interleaved.
    let (mut known, mut unknown) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for round in 0..SAMPLES {
        // Each first in every other round: the lookup an answer leaves running in the
        // background falls on the next request of either kind alike.
        let mut pair = [("bench", &mut known), ("nobody", &mut unknown)];
        if round % 2 == 1 {
            pair.reverse();
        }
        for (name, times) in pair {
            let began = Instant::now();
            client
                .post(format!("{base}/password/forgot"))
                .json(&json!({"username": name}))
                .send()
                .await?
                .error_for_status()?;
            times.push(began.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let t = welch_t(&known, &unknown);
    let (known_median, unknown_median) = (median(known), median(unknown));
    println!("\n### Email (SQLite)\n");
    println!("| figure | value | baseline (same run) | ratio | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| POST /password/forgot, existing account, median of {SAMPLES} | {known_median:.3} ms | no account: {unknown_median:.3} ms | {:.3}× | within 10 %, no t-test difference |",
        known_median / unknown_median
    );
    println!("| Welch's t of the two samples | {t:.2} | | | \\|t\\| < 1.97 (p > 0.05) |");
    record(
        Figure::new(
            "POST /password/forgot, existing account, median",
            known_median,
            " ms",
        )
        .against("no such account", unknown_median)
        .goal(Goal::RatioAtMost(1.1)),
    );

    // Latency: a new address each time (each issues a code at once).
    let mut latencies = Vec::with_capacity(MAILS);
    for n in 0..MAILS {
        let before = sink.count();
        let began = Instant::now();
        client
            .put(format!("{base}/me/email"))
            .bearer_auth(&token)
            .json(&json!({"email": format!("bench{n}@example.com")}))
            .send()
            .await?
            .error_for_status()?;
        let (received, _) = sink.wait_for(before + 1).await?;
        latencies.push(received.saturating_duration_since(began));
    }
    let p50 = percentile(&mut latencies, 50.0);
    let p99 = percentile(&mut latencies, 99.0);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| mail, commit to receipt by the SMTP server, p50 / p99 of {MAILS} | {:.1} ms / {:.1} ms | | | p99 ≤ 1 s |",
        ms(p50),
        ms(p99)
    );
    record(
        Figure::new("mail, commit to receipt on loopback, p99", ms(p99), " ms")
            .goal(Goal::AtMost(1000.0)),
    );
    server.stop().await?;
    Ok(())
}

/// Welch's t statistic of two samples.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let stats = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var, n)
    };
    let ((ma, va, na), (mb, vb, nb)) = (stats(a), stats(b));
    (ma - mb) / (va / na + vb / nb).sqrt()
}

/// A minimal SMTP server that accepts everything and notes, per message, when its data ended
/// and the six-digit code it held.
struct Sink {
    port: u16,
    received: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Sink {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                // Answers go out at once (no delayed-ACK stall in what is measured).
                let _ = socket.set_nodelay(true);
                let kept = kept.clone();
                tokio::spawn(async move {
                    let _ = session(socket, kept).await;
                });
            }
        });
        Ok(Self { port, received })
    }

    fn count(&self) -> usize {
        self.received.lock().map_or(0, |r| r.len())
    }

    /// Waits (up to 10 s) for the `n`th message; answers when it arrived and its code.
    async fn wait_for(&self, n: usize) -> anyhow::Result<(Instant, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(message) = self
                .received
                .lock()
                .ok()
                .and_then(|r| r.get(n - 1).cloned())
            {
                return Ok(message);
            }
            anyhow::ensure!(Instant::now() < deadline, "no mail number {n} within 10 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    received: Arc<Mutex<Vec<(Instant, String)>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut in_data = false;
    let mut code = String::new();
    while let Some(line) = lines.next_line().await? {
        if in_data {
            if line == "." {
                in_data = false;
                if let Ok(mut r) = received.lock() {
                    r.push((Instant::now(), std::mem::take(&mut code)));
                }
                write.write_all(b"250 OK\r\n").await?;
            } else if line.trim().len() == 6 && line.trim().bytes().all(|b| b.is_ascii_digit()) {
                code = line.trim().to_owned();
            }
            continue;
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "DATA" => {
                in_data = true;
                b"354 go ahead\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 OK\r\n",
        };
        write.write_all(answer).await?;
    }
    Ok(())
}
