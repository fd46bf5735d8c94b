//! The read models at scale (SQLite unless said):
//!
//! - `GET /sessions` and `POST /logout/all` for a user with 30,000 past sessions against the
//!   same user with 10: the projection answers from the live sessions only.
//! - Start-up with 100,000 sessions revoked inside the access-token lifetime against start-up
//!   with none: the revocation view is filled from the recent revocations only.
//! - 64 parallel wrong-password logins for one user, on SQLite and PostgreSQL: how many
//!   passwords were checked (the throttle reserves each check before hashing).
//! - `rebuild`: the sessions projection rebuilt from a log of 1,000,000 events: events per
//!   second.
//!
//! The histories are appended through the real store (hash chain included) before the server
//! starts; the server then builds its projections once, and the timed starts come after that.

use std::time::Instant;

use authlog::cli::ServeArgs;
use authlog::server::Server;
use authlog_application::ports::Clock as _;
use authlog_application::ports::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use authlog_crypto::SystemClock;
use authlog_domain::event::{LoggedIn, Registered, Revoked};
use authlog_domain::{
    Event, PasswordHash, RevocationReason, SessionId, StreamId, TokenId, UserId, Username,
};
use authlog_store::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::figures::{record, Figure, Goal};
use crate::postgres::TempDatabase;
use crate::stats::median;

const REQUESTS: usize = 30;
const STARTS: usize = 5;
const BATCH: usize = 2_000;
const PASSWORD: &str = "bench password";

fn new_event(event: Event, subject: &str, at: OffsetDateTime) -> NewEvent {
    NewEvent {
        event,
        subject: Some(subject.to_owned()),
        metadata: Metadata {
            client_addr: Some("192.0.2.10".into()),
            user_agent: Some("bench".into()),
            request_id: None,
        },
        occurred_at: at,
    }
}

/// Appends `events` in batches of [`BATCH`], each its own stream.
async fn append_all(store: &Store, events: Vec<NewEvent>, tag: &str) {
    for (n, chunk) in events.chunks(BATCH).enumerate() {
        let stream = StreamId::from_stored(format!("bench:{tag}:{n}"));
        let write = StreamWrite::new(stream, ExpectedVersion::Any, chunk.to_vec());
        store.append(vec![write]).await.unwrap();
    }
}

/// Registers `bench` through the service (so its password hash is real); answers its id.
async fn register(base: &str, client: &reqwest::Client) -> anyhow::Result<()> {
    let response = client
        .post(format!("{base}/register"))
        .json(&json!({"username": "bench", "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == StatusCode::CREATED,
        "register: {}",
        response.status()
    );
    Ok(())
}

async fn login(base: &str, client: &reqwest::Client) -> anyhow::Result<String> {
    let credentials = json!({"username": "bench", "password": PASSWORD});
    crate::access_token(client, base, &credentials).await
}

fn args() -> anyhow::Result<ServeArgs> {
    Ok(ServeArgs {
        bind: "127.0.0.1:0".parse()?,
        // Cheap hashing: these figures are about the read models, not Argon2.
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        login_max_failures: 0,
        ..ServeArgs::from_env()?
    })
}

/// `past` sessions of `user` that ended (logged in, then revoked) a day ago.
fn past_sessions(user: UserId, past: usize) -> Vec<NewEvent> {
    let at = SystemClock.now() - Duration::days(1);
    let mut events = Vec::with_capacity(past * 2);
    for n in 0..past {
        let session_id = SessionId::from_uuid(Uuid::now_v7());
        events.push(new_event(
            Event::LoggedIn(LoggedIn {
                session_id,
                user_id: user,
                refresh_token_id: TokenId::from_uuid(Uuid::from_u128(n as u128)),
                expires_at: at + Duration::days(30),
            }),
            "bench",
            at,
        ));
        events.push(new_event(
            Event::Revoked(Revoked {
                session_id,
                user_id: user,
                reason: RevocationReason::Logout,
            }),
            "bench",
            at,
        ));
    }
    events
}

/// Median milliseconds of `GET /sessions`, and of a login followed by `POST /logout/all`
/// (the logout timed), for a user with `past` ended sessions.
async fn sessions_with_history(past: usize) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let server = Server::start(&crate::postgres::database(&url), &args()?).await?;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    register(&base, &client).await?;
    let token = login(&base, &client).await?;
    let me: Value = client
        .get(format!("{base}/me"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let user = UserId::from_uuid(Uuid::parse_str(me["user_id"].as_str().unwrap_or_default())?);
    server.stop().await?;
    append_all(
        &Store::open(&url, crate::personal()).await?,
        past_sessions(user, past),
        "past",
    )
    .await;

    let server = Server::start(&crate::postgres::database(&url), &args()?).await?;
    let base = format!("http://{}", server.addr());
    let token = login(&base, &client).await?;
    let mut list = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let began = Instant::now();
        let body: Value = client
            .get(format!("{base}/sessions"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        list.push(began.elapsed().as_secs_f64() * 1000.0);
        // The session opened before the history was added, and this one.
        anyhow::ensure!(body["sessions"].as_array().map(Vec::len) == Some(2));
    }
    let mut logout_all = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let token = login(&base, &client).await?;
        let began = Instant::now();
        client
            .post(format!("{base}/logout/all"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?;
        logout_all.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    server.stop().await?;
    Ok((median(list), median(logout_all)))
}

/// Median milliseconds from `Server::start` until `/readyz` answers, on a log holding
/// `revoked` sessions revoked a minute ago (inside the access-token lifetime).
async fn start_up_with(revoked: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("startup.db").display());
    {
        let store = Store::open(&url, crate::personal()).await?;
        let at = SystemClock.now() - Duration::minutes(1);
        let user = UserId::from_uuid(Uuid::now_v7());
        let mut events = vec![new_event(
            Event::Registered(Registered {
                user_id: user,
                username: Username::parse("bench")?.into(),
                password_hash: PasswordHash::from_phc("$argon2id$bench".into()).into(),
            }),
            "bench",
            at,
        )];
        let mut sessions = past_sessions(user, revoked);
        for event in &mut sessions {
            event.occurred_at = at;
        }
        events.extend(sessions);
        append_all(&store, events, "startup").await;
    }
    let client = reqwest::Client::new();
    // The first start builds the projections from the log; the timed starts come after.
    Server::start(&crate::postgres::database(&url), &args()?)
        .await?
        .stop()
        .await?;
    let mut starts = Vec::with_capacity(STARTS);
    for _ in 0..STARTS {
        let began = Instant::now();
        let server = Server::start(&crate::postgres::database(&url), &args()?).await?;
        client
            .get(format!("http://{}/readyz", server.addr()))
            .send()
            .await?
            .error_for_status()?;
        starts.push(began.elapsed().as_secs_f64() * 1000.0);
        server.stop().await?;
    }
    Ok(median(starts))
}

/// How many passwords 64 parallel wrong-password logins for one user had checked (the
/// reservations in the log), with the default throttle.
async fn parallel_guesses(url: &str) -> anyhow::Result<(usize, usize)> {
    let args = ServeArgs {
        login_max_failures: 5,
        ..args()?
    };
    let server = Server::start(&crate::postgres::database(url), &args).await?;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::new();
    register(&base, &client).await?;
    let guesses = (0..64).map(|n| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            client
                .post(format!("{base}/login"))
                .json(&json!({"username": "bench", "password": format!("guess {n} of 64")}))
                .send()
                .await
                .map(|r| r.status())
        })
    });
    let mut refused = 0;
    for guess in futures::future::join_all(guesses).await {
        if guess?? == StatusCode::UNAUTHORIZED {
            refused += 1;
        }
    }
    server.stop().await?;
    let store = Store::open(url, crate::personal()).await?;
    let checked = authlog_application::ports::EventLog::read_after(
        &store,
        0,
        10_000,
        &[authlog_domain::EventType::LoginAttempted],
    )
    .await?
    .len();
    Ok((checked, refused))
}

/// Seconds to rebuild the sessions projection from a log of `events` synthetic events (the
/// audit benchmark's mix), and how many of them the projection applied.
async fn rebuild(events: usize) -> anyhow::Result<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("rebuild.db").display());
    let store = Store::open(&url, crate::personal()).await?;
    let filled =
        crate::audit::fill(&store, 0, events, SystemClock.now() - Duration::days(30)).await;
    eprintln!("filled {events} events in {filled:.1} s");
    let head = authlog_application::ports::EventLog::head(&store).await?;
    authlog_application::ports::ReadModels::wait_for(&store, head).await?;
    let began = Instant::now();
    let rebuilt = store.rebuild("sessions", &|_, _| {}).await?;
    Ok((began.elapsed().as_secs_f64(), rebuilt.events))
}

pub async fn run(pg: &TempDatabase) -> anyhow::Result<()> {
    println!("\n### Read models (SQLite unless said; medians)\n");
    println!("| figure | small | large | ratio | goal |");
    println!("|---|---|---|---|---|");
    let (list_small, logout_small) = sessions_with_history(10).await?;
    let (list_large, logout_large) = sessions_with_history(30_000).await?;
    println!(
        "| GET /sessions, 10 vs 30,000 past sessions ({REQUESTS} requests) | {list_small:.2} ms | {list_large:.2} ms | {:.2}× | ≤ 1.5× |",
        list_large / list_small
    );
    println!(
        "| POST /logout/all, 10 vs 30,000 past sessions ({REQUESTS} requests) | {logout_small:.2} ms | {logout_large:.2} ms | {:.2}× | ≤ 1.5× |",
        logout_large / logout_small
    );
    record(
        Figure::new("GET /sessions at 30,000 past sessions", list_large, " ms")
            .against("at 10", list_small)
            .goal(Goal::RatioAtMost(1.5)),
    );
    record(
        Figure::new(
            "POST /logout/all at 30,000 past sessions",
            logout_large,
            " ms",
        )
        .against("at 10", logout_small)
        .goal(Goal::RatioAtMost(1.5)),
    );
    let none = start_up_with(0).await?;
    let many = start_up_with(100_000).await?;
    println!(
        "| start-up until /readyz, none vs 100,000 recent revocations ({STARTS} starts) | {none:.1} ms | {many:.1} ms | {:.2}× | ≤ 1.5×, ≤ 500 ms |",
        many / none
    );
    record(
        Figure::new(
            "start-up until /readyz, 100,000 recent revocations",
            many,
            " ms",
        )
        .against("none", none)
        .goal(Goal::RatioAtMost(1.5)),
    );

    println!("\n| 64 parallel wrong-password logins for one user | passwords checked | answered 401 | goal |");
    println!("|---|---|---|---|");
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("guesses.db").display());
    let (checked, refused) = parallel_guesses(&sqlite).await?;
    println!("| SQLite | {checked} | {refused} | ≤ 5 |");
    let guesses = |backend: &str, checked| {
        Figure::new(
            format!("passwords checked of 64 parallel wrong guesses for one user, {backend}"),
            checked as f64,
            "",
        )
        .goal(Goal::AtMost(5.0))
    };
    record(guesses("SQLite", checked));
    let (checked, refused) = parallel_guesses(&pg.fresh_schema().await?).await?;
    println!("| PostgreSQL | {checked} | {refused} | ≤ 5 |");
    record(guesses("PostgreSQL", checked));

    Ok(())
}

/// The `rebuild` bench: the sessions projection rebuilt from a log of `events` events
/// (1,000,000 unless the command line says).
pub async fn run_rebuild(events: Option<usize>) -> anyhow::Result<()> {
    let events = events.unwrap_or(1_000_000);
    let (seconds, applied) = rebuild(events).await?;
    println!("\n### Projection rebuild (SQLite)\n");
    println!("| projection | log | events applied | seconds | log events/s | applied/s | goal |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| sessions | {events} | {applied} | {seconds:.1} | {:.0} | {:.0} | ≥ 50,000/s |",
        events as f64 / seconds,
        applied as f64 / seconds
    );
    record(
        Figure::new(
            format!("projection rebuild, log events/s at {events} events"),
            events as f64 / seconds,
            "",
        )
        .goal(Goal::AtLeast(50_000.0)),
    );
    Ok(())
}
