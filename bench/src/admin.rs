//! Account administration:
//!
//! - `GET /admin/users` at 100,000 users (SQLite): the first page of 100, a page deep in the
//!   list (after the 90,000th user), a rare and a common name prefix, against the first page at
//!   100 users in the same run.
//! - Role revoke to refusal on another instance (PostgreSQL): `DELETE
//!   /admin/users/{id}/roles/admin` on A, then B asked in a tight loop until the token it
//!   accepted as an admin's is refused `/admin`.
//!
//! The users are appended through the real store (sealed, hash chain included) before the
//! server starts, as `models` does.

use std::time::{Duration, Instant};

use authlog::server::Server;
use authlog_application::ports::Clock as _;
use authlog_application::ports::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use authlog_crypto::SystemClock;
use authlog_domain::event::{Registered, RoleGranted};
use authlog_domain::{Event, PasswordHash, Role, StreamId, UserId, Username};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::figures::{record, Figure, Goal};
use crate::postgres::TempDatabase;
use crate::stats::{median, percentile};

const REQUESTS: usize = 30;
const BATCH: usize = 2_000;
const SAMPLES: usize = 60;

pub async fn run(pg: &TempDatabase) -> anyhow::Result<()> {
    println!("\n### Account administration (medians of {REQUESTS} requests)\n");
    println!("| figure | 100 users | 100,000 users | ratio | goal |");
    println!("|---|---|---|---|---|");
    let small = directory(100).await?;
    let large = directory(100_000).await?;
    let rows = [
        ("first page of 100", small.first, large.first),
        ("page after the 90,000th user", small.deep, large.deep),
        ("prefix matching 1 in 10 users", small.common, large.common),
        ("prefix matching no user", small.rare, large.rare),
    ];
    for (what, at_small, at_large) in rows {
        println!(
            "| GET /admin/users, {what} | {at_small:.2} ms | {at_large:.2} ms | {:.2}× | ≤ 10 ms |",
            at_large / at_small
        );
        record(
            Figure::new(
                format!("GET /admin/users at 100,000 users, {what}"),
                at_large,
                " ms",
            )
            .against("first page at 100 users", small.first)
            .goal(Goal::AtMost(10.0)),
        );
    }
    role_revoke_propagation(pg).await
}

/// Median milliseconds of each kind of directory page.
struct Pages {
    first: f64,
    deep: f64,
    common: f64,
    rare: f64,
}

/// Median milliseconds of directory pages, with `users` accounts and an admin.
async fn directory(users: usize) -> anyhow::Result<Pages> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("directory.db").display());
    let args = crate::cheap_hashing()?;
    let server = Server::start(&crate::postgres::database(&url), &args).await?;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    let credentials = crate::register_bench_user(&client, &base).await?;
    let token = crate::access_token(&client, &base, &credentials).await?;
    let me: Value = client
        .get(format!("{base}/me"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let admin = UserId::from_uuid(Uuid::parse_str(me["user_id"].as_str().unwrap_or_default())?);
    server.stop().await?;

    // Opened as the server opens it (the master key beside the database).
    let services = authlog::services::Services::open(
        &crate::postgres::database(&url),
        std::sync::Arc::new(SystemClock),
    )
    .await?;
    let store = services.store.clone();
    let (events, deep_after) = registrations(users);
    for (n, chunk) in events.chunks(BATCH).enumerate() {
        let stream = StreamId::from_stored(format!("bench:users:{n}"));
        let write = StreamWrite::new(stream, ExpectedVersion::Any, chunk.to_vec());
        store.append(vec![write]).await?;
    }
    let grant = NewEvent {
        event: Event::RoleGranted(RoleGranted {
            user_id: admin,
            role: Role::admin(),
        }),
        subject: Some(admin.to_string()),
        metadata: Metadata::default(),
        occurred_at: SystemClock.now(),
    };
    store
        .append(vec![StreamWrite::new(
            StreamId::user(admin),
            ExpectedVersion::Any,
            vec![grant],
        )])
        .await?;
    drop(store);
    drop(services);

    let server = Server::start(&crate::postgres::database(&url), &args).await?;
    let base = format!("http://{}", server.addr());
    let token = crate::access_token(&client, &base, &credentials).await?;
    let page = |query: String| {
        let (client, base, token) = (&client, &base, &token);
        async move {
            let mut times = Vec::with_capacity(REQUESTS);
            let mut listed = 0;
            for _ in 0..REQUESTS {
                let began = Instant::now();
                let body: Value = client
                    .get(format!("{base}/admin/users?{query}"))
                    .bearer_auth(token)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                times.push(began.elapsed().as_secs_f64() * 1000.0);
                listed = body["users"].as_array().map_or(0, Vec::len);
            }
            anyhow::Ok((median(times), listed))
        }
    };
    let (first, listed) = page("limit=100".into()).await?;
    anyhow::ensure!(listed == 100, "the first page held {listed} users");
    let (deep, listed) = page(format!("limit=100&after={deep_after}")).await?;
    anyhow::ensure!(listed > 0, "the deep page was empty");
    let (common, listed) = page("limit=100&q=user1".into()).await?;
    anyhow::ensure!(listed > 0, "no user matched user1");
    let (rare, listed) = page("limit=100&q=nobody".into()).await?;
    anyhow::ensure!(listed == 0, "{listed} users matched nobody");
    server.stop().await?;
    Ok(Pages {
        first,
        deep,
        common,
        rare,
    })
}

/// `users` registrations (`user0`, `user1`, ...; ids in registration order), and the id of the
/// user 90 % of the way in (the 90,000th of 100,000).
fn registrations(users: usize) -> (Vec<NewEvent>, UserId) {
    let at = SystemClock.now();
    let hash = PasswordHash::from_phc("$argon2id$v=19$m=64,t=1,p=1$bench$bench".into());
    let mut deep = None;
    let events = (0..users)
        .map(|n| {
            let user_id = UserId::from_uuid(Uuid::now_v7());
            if n == users * 9 / 10 {
                deep = Some(user_id);
            }
            let username = Username::parse(&format!("user{n}")).expect("a valid name");
            NewEvent {
                event: Event::Registered(Registered {
                    user_id,
                    username: username.into(),
                    password_hash: hash.clone().into(),
                }),
                subject: Some(user_id.to_string()),
                metadata: Metadata::default(),
                occurred_at: at,
            }
        })
        .collect();
    (events, deep.unwrap_or(UserId::from_uuid(Uuid::nil())))
}

/// Role revoke on A to refusal on B, `SAMPLES` times: an admin token of `bench` issued by B,
/// the role revoked through A's admin API by `root`, B asked until it refuses `/admin`.
async fn role_revoke_propagation(pg: &TempDatabase) -> anyhow::Result<()> {
    let url = pg.fresh_schema().await?;
    let args = crate::cheap_hashing()?;
    let a = Server::start(&crate::postgres::database(&url), &args).await?;
    let b = Server::start(&crate::postgres::database(&url), &args).await?;
    let (a_url, b_url) = (
        format!("http://{}", a.addr()),
        format!("http://{}", b.addr()),
    );
    let client = reqwest::Client::new();
    let bench = crate::register_bench_user(&client, &a_url).await?;
    let root = json!({"username": "root", "password": "root password"});
    client
        .post(format!("{a_url}/register"))
        .json(&root)
        .send()
        .await?
        .error_for_status()?;
    // The first admin comes from the command line's use case, as an operator would make it.
    let services = authlog::services::Services::open(
        &crate::postgres::database(&url),
        std::sync::Arc::new(SystemClock),
    )
    .await?;
    let operator = authlog_application::access::Caller::Operator;
    let root_name = Username::parse("root")?;
    services
        .roles
        .grant(
            &operator,
            authlog_application::streams::UserRef::Name(&root_name),
            Role::admin(),
            &Metadata::default(),
        )
        .await?;
    let root_token = crate::access_token(&client, &a_url, &root).await?;
    let found: Value = client
        .get(format!("{a_url}/admin/users?q=bench"))
        .bearer_auth(&root_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let bench_id = found["users"][0]["user_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let role = format!("{a_url}/admin/users/{bench_id}/roles/admin");

    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        client
            .put(&role)
            .bearer_auth(&root_token)
            .send()
            .await?
            .error_for_status()?;
        // A token issued in a later second than the previous revoke (`iat` has whole seconds,
        // and a token of the revoke's second counts as issued before it).
        let into_second = SystemClock.now().millisecond();
        tokio::time::sleep(Duration::from_millis(u64::from(1_020 - into_second))).await;
        let token = crate::access_token(&client, &b_url, &bench).await?;
        let ok = client
            .get(format!("{b_url}/admin"))
            .bearer_auth(&token)
            .send()
            .await?;
        anyhow::ensure!(ok.status() == StatusCode::OK, "B does not accept the admin");
        client
            .delete(&role)
            .bearer_auth(&root_token)
            .send()
            .await?
            .error_for_status()?;
        let revoked = Instant::now();
        loop {
            let status = client
                .get(format!("{b_url}/admin"))
                .bearer_auth(&token)
                .send()
                .await?
                .status();
            if status == StatusCode::FORBIDDEN {
                break;
            }
            anyhow::ensure!(
                revoked.elapsed() < Duration::from_secs(5),
                "B never refused the revoked role"
            );
        }
        samples.push(revoked.elapsed());
    }
    let p50 = percentile(&mut samples, 50.0);
    let p99 = percentile(&mut samples, 99.0);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "\n### Role revoke on A to refusal on B, PostgreSQL ({SAMPLES} revokes)\n\n\
         | median | p99 | max | goal |\n|---|---|---|---|\n| {:.1} ms | {:.1} ms | {:.1} ms | p99 ≤ 1 s |",
        ms(p50),
        ms(p99),
        ms(*samples.last().unwrap_or(&p99))
    );
    record(
        Figure::new(
            "role revoke, A to refusal on B, PostgreSQL, p99",
            ms(p99),
            " ms",
        )
        .goal(Goal::AtMost(1000.0)),
    );
    a.stop().await?;
    b.stop().await?;
    Ok(())
}
