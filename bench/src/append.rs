//! Append throughput: one at a time vs concurrent (group commit).

use std::sync::Arc;
use std::time::Instant;

use authlog_application::ports::Clock as _;
use authlog_application::ports::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamWrite};
use authlog_domain::event::{LoginFailed, LoginFailure};
use authlog_domain::{Event, StreamId};
use authlog_store::Store;

use crate::figures::{record, Figure};
use crate::postgres::TempDatabase;
use crate::stats::median;

const ROUNDS: usize = 3;
const SEQUENTIAL: usize = 300;
pub const WRITERS: usize = 64;
pub const PER_WRITER: usize = 40;

pub fn event(n: usize) -> NewEvent {
    NewEvent {
        event: Event::LoginFailed(LoginFailed {
            reason: LoginFailure::UnknownUser,
            attempt_id: None,
        }),
        subject: Some(format!("user{n}")),
        metadata: Metadata::default(),
        occurred_at: authlog_crypto::SystemClock.now(),
    }
}

async fn sequential(store: &dyn EventStore) -> f64 {
    let start = Instant::now();
    for n in 0..SEQUENTIAL {
        let stream = StreamId::from_stored(format!("seq{n}"));
        let write = StreamWrite::new(stream, ExpectedVersion::NoStream, vec![event(n)]);
        store.append(vec![write]).await.unwrap();
    }
    SEQUENTIAL as f64 / start.elapsed().as_secs_f64()
}

/// Events/s: `WRITERS` tasks, spread over `stores` (instances of one database), each appending
/// `PER_WRITER` one-event writes to new streams and waiting for each to be durable.
pub async fn concurrent(stores: &[Arc<dyn EventStore>]) -> f64 {
    let start = Instant::now();
    let writers = (0..WRITERS).map(|w| {
        let store = stores[w % stores.len()].clone();
        tokio::spawn(async move {
            for n in 0..PER_WRITER {
                let stream = StreamId::from_stored(format!("con{w}-{n}"));
                let write = StreamWrite::new(stream, ExpectedVersion::NoStream, vec![event(n)]);
                store.append(vec![write]).await.unwrap();
            }
        })
    });
    futures::future::join_all(writers).await;
    (WRITERS * PER_WRITER) as f64 / start.elapsed().as_secs_f64()
}

async fn measure(name: &str, mut open: impl AsyncFnMut() -> Arc<dyn EventStore>) {
    let (mut one, mut many) = (vec![], vec![]);
    for _ in 0..ROUNDS {
        one.push(sequential(open().await.as_ref()).await);
        many.push(concurrent(&[open().await]).await);
    }
    let (one, many) = (median(one), median(many));
    println!("| {name} | {one:.0} | {many:.0} | {:.1}× |", many / one);
    record(
        Figure::new(
            format!("{name}: durable appends, {WRITERS} concurrent writers (events/s)"),
            many,
            "",
        )
        .against("one at a time", one),
    );
}

pub async fn run(pg: &TempDatabase) -> anyhow::Result<()> {
    println!("\n### Durable appends (events/s, median of {ROUNDS} rounds)\n");
    println!("| backend | one at a time | {WRITERS} concurrent writers (group commit) | ratio |");
    println!("|---|---|---|---|");
    let dir = tempfile::tempdir()?;
    let mut round = 0;
    measure("SQLite (WAL, synchronous=FULL)", async || {
        round += 1;
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("r{round}.db")).display()
        );
        Arc::new(Store::open(&url, crate::personal()).await.unwrap()) as Arc<dyn EventStore>
    })
    .await;
    measure("PostgreSQL (fsync on commit)", async || {
        let url = pg.fresh_schema().await.unwrap();
        Arc::new(Store::open(&url, crate::personal()).await.unwrap()) as Arc<dyn EventStore>
    })
    .await;
    Ok(())
}
