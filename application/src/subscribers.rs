//! One way to consume the log. A [`Subscriber`] names the event types it reads and handles
//! them in batches, in log order; one [`Runner`] runs every subscriber of a process: it claims
//! each one's checkpoint, wakes when the log moves ([`wake_on`]: the in-process signal, or
//! NOTIFY from another instance) and polls as a safety net, retries a failing subscriber with
//! backoff, reports each one's lag (`authlog_subscriber_lag_events`), and refuses, never
//! skipping, to go on from a checkpoint the log no longer reaches.
//!
//! Two scopes ([`Scope`]): a subscriber that keeps this process's memory current (the revoked
//! sessions, the signing keys) runs in every instance, from the log's head at its start; one
//! with an effect outside (mail, webhooks) runs once across every instance, from a checkpoint
//! in the database ([`Checkpoints`]), at least once: a batch handled and not yet checkpointed
//! when its instance dies is handled again by the next holder.
//!
//! The read models are the other kind of consumer, with a transactional sink: their rows and
//! their checkpoint are written in one transaction (exactly once), all of them in one
//! transaction per pass. The runner brings them up to date first in every pass
//! ([`ReadModels::catch_up`]); they obey the same refusal and are listed with the subscribers.
//!
//! Models: cqrs-es `Query::dispatch` (read models and side effects are one kind of consumer),
//! zero-to-production's `issue_delivery_worker.rs` (a worker that claims, sends, records).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use authlog_domain::EventType;
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::ports::{Checkpoints, Clock, EventLog, ReadModels, RecordedEvent, StoreError};

/// Events read at a time.
const BATCH: u32 = 1_000;
/// How long a lease on a cluster subscriber lasts without renewal: its holder renews it at
/// every run, so another instance takes over within this long of the holder's death.
const LEASE: Duration = Duration::seconds(30);
/// The first pause after a failed batch; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::milliseconds(100);
const MAX_BACKOFF: Duration = Duration::seconds(30);

/// Who runs a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every instance runs its own, from the log's head at its start (its checkpoint is in
    /// memory): what keeps this process's memory current.
    Instance,
    /// One instance at a time runs it, from a checkpoint kept in the database: an effect
    /// outside the process, at least once.
    Cluster,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Cluster => "cluster",
        }
    }
}

/// Why a subscriber did not handle a batch. The batch is handled again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Failed(String),
}

/// A consumer of the log.
#[async_trait]
pub trait Subscriber: Send + Sync {
    /// Its name in metrics, `authlog projections status` and the checkpoint table.
    fn name(&self) -> &'static str;

    /// The event types it reads (every type when empty); it never sees any other.
    fn event_types(&self) -> &'static [EventType];

    fn scope(&self) -> Scope;

    /// Raised when what it does with the log changes so that it must see it all again: a
    /// cluster subscriber whose stored version differs starts again from the beginning.
    fn version(&self) -> u32 {
        1
    }

    /// Once, when the runner starts and the read models hold the log's head: an instance
    /// subscriber fills its memory from them here (the recent revocations, say), and then
    /// follows the log from that head.
    ///
    /// # Errors
    /// [`HandleError`] stops the start.
    async fn start(&self) -> Result<(), HandleError> {
        Ok(())
    }

    /// Handles `events` (of its types, in log order, each once unless a failure makes the
    /// runner hand a batch over again).
    ///
    /// # Errors
    /// [`HandleError`]: the runner backs off and hands the same events over again.
    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandleError>;
}

/// Where a subscriber stands, for `status` and readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberStatus {
    pub name: &'static str,
    pub scope: Scope,
    /// The last position it handled, as this process knows it (`None`: another instance
    /// holds a cluster subscriber).
    pub position: Option<u64>,
    /// Why it is not following the log: a failure it is backing off from, or a checkpoint the
    /// log no longer reaches.
    pub trouble: Option<String>,
}

/// One subscriber and what the runner keeps of it.
struct Running {
    subscriber: Arc<dyn Subscriber>,
    /// The last position handled (an instance subscriber's checkpoint; a cluster one's as last
    /// leased).
    position: AtomicU64,
    /// Whether this process holds it (always, for an instance subscriber).
    held: std::sync::atomic::AtomicBool,
    state: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Consecutive failures, and when the next attempt may run.
    failures: u32,
    retry_at: Option<OffsetDateTime>,
    trouble: Option<String>,
    /// The checkpoint refused as ahead of the log: refused for as long as the subscriber stands
    /// there (the log growing past it again is no reason to go on), until it is reset.
    refused: Option<u64>,
}

/// The runner of every subscriber of one process.
pub struct Runner {
    log: Arc<dyn EventLog>,
    read_models: Arc<dyn ReadModels>,
    checkpoints: Arc<dyn Checkpoints>,
    clock: Arc<dyn Clock>,
    /// This process, as the holder of cluster leases.
    holder: String,
    subscribers: Vec<Running>,
    /// One pass at a time.
    running: tokio::sync::Mutex<()>,
    progress: Mutex<Progress>,
    /// The log's head as each pass reads it, for what follows the log without being a
    /// subscriber (an event feed's consumers, each at its own position).
    heads: tokio::sync::watch::Sender<u64>,
    /// Set once this process stops following the log: what follows it through [`Runner::heads`]
    /// ends then, instead of holding the shutdown.
    stopped: tokio::sync::watch::Sender<bool>,
}

/// The log's head at the previous pass, and when this process last held all of it.
struct Progress {
    head: u64,
    current_at: OffsetDateTime,
    halted: Option<String>,
}

impl Runner {
    /// Starts `subscribers`: waits until the read models hold the log's head (a halted one is
    /// said by readiness, not fatal: what it holds is all there is meanwhile), lets each
    /// instance subscriber fill its memory ([`Subscriber::start`]) and follow the log from
    /// that head. `holder` names this process in cluster leases.
    ///
    /// # Errors
    /// [`HandleError`] when the store cannot be read or a subscriber cannot start.
    pub async fn start(
        log: Arc<dyn EventLog>,
        read_models: Arc<dyn ReadModels>,
        checkpoints: Arc<dyn Checkpoints>,
        clock: Arc<dyn Clock>,
        holder: String,
        subscribers: Vec<Arc<dyn Subscriber>>,
    ) -> Result<Self, HandleError> {
        let head = log.head().await?;
        match read_models.wait_for(head).await {
            Err(StoreError::Halted(reason)) => tracing::error!("{reason}"),
            waited => waited?,
        }
        let halted = read_models
            .status()
            .await?
            .into_iter()
            .find_map(|p| p.halted);
        let mut running = Vec::with_capacity(subscribers.len());
        for subscriber in subscribers {
            let instance = subscriber.scope() == Scope::Instance;
            if instance {
                subscriber.start().await?;
            }
            running.push(Running {
                subscriber,
                // The read models held the head before the start: an instance subscriber
                // follows from there.
                position: AtomicU64::new(if instance { head } else { 0 }),
                held: std::sync::atomic::AtomicBool::new(instance),
                state: Mutex::new(Health::default()),
            });
        }
        Ok(Self {
            log,
            read_models,
            checkpoints,
            clock: clock.clone(),
            holder,
            subscribers: running,
            running: tokio::sync::Mutex::new(()),
            progress: Mutex::new(Progress {
                head,
                current_at: clock.now(),
                halted,
            }),
            heads: tokio::sync::watch::Sender::new(head),
            stopped: tokio::sync::watch::Sender::new(false),
        })
    }

    /// The log's head, as of this process's latest pass (one follows every commit here, and
    /// every announced one elsewhere): a receiver sees each change.
    pub fn heads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.heads.subscribe()
    }

    /// Becomes `true` when this process stops following the log ([`Runner::release`]).
    pub fn stopped(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopped.subscribe()
    }

    /// Gives up this process's leases on the cluster subscribers it runs, once it stops running
    /// them: another instance takes them at once instead of when the leases lapse (a rolling
    /// restart does not hold the mail for 30 seconds). Waits for a pass under way. Says so to
    /// [`Runner::stopped`] first.
    pub async fn release(&self) {
        self.stopped.send_replace(true);
        let _running = self.running.lock().await;
        for running in &self.subscribers {
            if running.subscriber.scope() != Scope::Cluster || !running.held.load(Ordering::Acquire)
            {
                continue;
            }
            let name = running.subscriber.name();
            if let Err(e) = self.checkpoints.release(name, &self.holder).await {
                tracing::warn!(subscriber = name, error = %e, "cannot give up the lease; it lapses by itself");
            }
            running.held.store(false, Ordering::Release);
        }
    }

    /// One pass: brings the read models ([`ReadModels::catch_up`]) and then every subscriber
    /// this process runs up to the log's head (those backing off from a failure wait for their
    /// time), then notes whether this process holds all of the log the previous pass saw.
    /// Failures are the subscribers' own: logged once, backed off, tried again.
    ///
    /// # Errors
    /// [`StoreError`] when the read models cannot be brought up to date, or the log's head or
    /// their status cannot be read.
    pub async fn run(&self) -> Result<(), StoreError> {
        let _running = self.running.lock().await;
        // The read models first: several subscribers read what they hold. A halted one is
        // said by readiness; a failure is this pass's answer, after the subscribers have had
        // their turn (the signing keys need no read model).
        let read_models = match self.read_models.catch_up().await {
            Err(StoreError::Halted(_)) => Ok(()),
            caught_up => caught_up,
        };
        let now = self.clock.now();
        let head = self.log.head().await?;
        self.heads.send_if_modified(|known| {
            let moved = *known != head;
            *known = head;
            moved
        });
        let mut lowest = head;
        for running in &self.subscribers {
            if let Some(position) = self.run_one(running, head, now).await {
                lowest = lowest.min(position);
            } else if running.subscriber.scope() == Scope::Instance {
                lowest = 0;
            }
        }
        let projections = self.read_models.status().await?;
        let projected = projections.iter().map(|p| p.position).min().unwrap_or(head);
        let halted = projections.into_iter().find_map(|p| p.halted);
        if let Ok(mut progress) = self.progress.lock() {
            // Current when the subscribers and the read models hold everything the log held
            // at the previous pass (a halted read model holds what the log no longer does).
            if lowest.min(projected) >= progress.head && halted.is_none() {
                progress.current_at = now;
            }
            progress.head = head;
            progress.halted = halted;
        }
        read_models
    }

    /// Brings `running` up to `head`; answers where an instance subscriber (or a cluster one
    /// this process holds) stands, `None` when it is backing off, refused, or held elsewhere.
    async fn run_one(&self, running: &Running, head: u64, now: OffsetDateTime) -> Option<u64> {
        let subscriber = running.subscriber.as_ref();
        let waiting = running
            .state
            .lock()
            .ok()
            .and_then(|health| health.retry_at)
            .is_some_and(|at| at > now);
        if waiting {
            return None;
        }
        let (from, head) = match subscriber.scope() {
            Scope::Instance => (running.position.load(Ordering::Acquire), head),
            Scope::Cluster => match self.lease(running, now).await {
                Some(leased) => leased,
                None => return None,
            },
        };
        self.go_on(running, from, head, now).await
    }

    /// Takes or renews this process's lease on the cluster subscriber `running`: its position,
    /// and the log's head read again now that the lease is held (a holder whose lease lapsed
    /// during this pass may have moved the checkpoint past the head read before). `None` when
    /// another instance holds it, or the store fails (backed off).
    async fn lease(&self, running: &Running, now: OffsetDateTime) -> Option<(u64, u64)> {
        let subscriber = running.subscriber.as_ref();
        let leased = self
            .checkpoints
            .lease(
                subscriber.name(),
                subscriber.version(),
                &self.holder,
                now,
                now + LEASE,
            )
            .await;
        let position = match leased {
            Ok(Some(position)) => position,
            Ok(None) => {
                running.held.store(false, Ordering::Release);
                return None;
            }
            Err(e) => {
                self.failed(running, now, e.to_string());
                return None;
            }
        };
        match self.log.head().await {
            Ok(head) => Some((position, head)),
            Err(e) => {
                self.failed(running, now, e.to_string());
                None
            }
        }
    }

    /// Brings `running`, which stands at `from` and is this process's to run, up to `head`.
    async fn go_on(
        &self,
        running: &Running,
        from: u64,
        head: u64,
        now: OffsetDateTime,
    ) -> Option<u64> {
        let subscriber = running.subscriber.as_ref();
        running.held.store(true, Ordering::Release);
        let refused = running.state.lock().ok().and_then(|health| health.refused);
        if refused == Some(from) {
            return None;
        }
        if from > head {
            // The log ends before what this subscriber handled: its tail was cut behind the
            // service's back, or an older backup restored. Going on would skip every event
            // written at the reused positions.
            let way_out = match subscriber.scope() {
                Scope::Instance => "restart this instance (it then starts from the log's head)",
                Scope::Cluster => "delete its row from `subscribers` to replay the log to it",
            };
            self.refuse(
                running,
                from,
                format!(
                    "subscriber {} has handled the log up to position {from}, but the log's \
                     head is {head}: events it handled are gone. It handles nothing more: check \
                     the log with `authlog verify`, then {way_out}",
                    subscriber.name()
                ),
            );
            return None;
        }
        match self.catch_up(running, from, head).await {
            Ok(position) => {
                if let Ok(mut health) = running.state.lock() {
                    if health.failures > 0 {
                        tracing::info!(subscriber = subscriber.name(), "subscriber recovered");
                    }
                    *health = Health::default();
                }
                metrics::gauge!("authlog_subscriber_lag_events", "subscriber" => subscriber.name())
                    .set(head.saturating_sub(position) as f64);
                Some(position)
            }
            Err(e) => {
                self.failed(running, now, e.to_string());
                None
            }
        }
    }

    /// Hands `running` the events of its types in `(from, head]`, batch by batch, moving its
    /// checkpoint after each; answers the position reached.
    async fn catch_up(&self, running: &Running, from: u64, head: u64) -> Result<u64, HandleError> {
        let subscriber = running.subscriber.as_ref();
        let mut position = from;
        loop {
            let events = self
                .log
                .read_after(position, BATCH, subscriber.event_types())
                .await?;
            let within: Vec<RecordedEvent> =
                events.into_iter().filter(|e| e.position <= head).collect();
            let reached = match within.last() {
                Some(last) if within.len() == BATCH as usize => last.position,
                // Nothing more of its types up to the head: it has seen everything there.
                _ => head,
            };
            if !within.is_empty() {
                subscriber.handle(&within).await?;
            }
            if reached > position {
                self.moved(running, reached).await?;
                position = reached;
            }
            if reached >= head {
                return Ok(position);
            }
        }
    }

    /// Records that `running` handled the log up to `position`.
    async fn moved(&self, running: &Running, position: u64) -> Result<(), HandleError> {
        let subscriber = running.subscriber.as_ref();
        if subscriber.scope() == Scope::Cluster
            && !self
                .checkpoints
                .advance(subscriber.name(), &self.holder, position)
                .await?
        {
            return Err(HandleError::Failed(format!(
                "the lease on {} went to another instance; it carries on from its checkpoint",
                subscriber.name()
            )));
        }
        running.position.store(position, Ordering::Release);
        Ok(())
    }

    /// Backs `running` off after a failure: 100 ms, doubling up to 30 s. The first failure of
    /// a run of them is logged.
    fn failed(&self, running: &Running, now: OffsetDateTime, error: String) {
        let Ok(mut health) = running.state.lock() else {
            return;
        };
        if health.failures == 0 {
            tracing::warn!(
                subscriber = running.subscriber.name(),
                error,
                "subscriber failed; backing off and trying again"
            );
        }
        let pause = FIRST_BACKOFF * 2_i32.saturating_pow(health.failures.min(16));
        health.failures = health.failures.saturating_add(1);
        health.retry_at = Some(now + pause.min(MAX_BACKOFF));
        health.trouble = Some(error);
    }

    /// Stops `running` at its checkpoint `at`, which the log no longer reaches: said once, and
    /// by readiness. An instance subscriber stays stopped until the process restarts; a cluster
    /// one until its checkpoint is reset (looked at again every [`MAX_BACKOFF`]).
    fn refuse(&self, running: &Running, at: u64, reason: String) {
        let Ok(mut health) = running.state.lock() else {
            return;
        };
        if health.trouble.as_ref() != Some(&reason) {
            tracing::error!(subscriber = running.subscriber.name(), "{reason}");
        }
        health.trouble = Some(reason);
        health.refused = Some(at);
        health.retry_at = Some(self.clock.now() + MAX_BACKOFF);
    }

    /// Where each subscriber stands.
    pub fn status(&self) -> Vec<SubscriberStatus> {
        self.subscribers
            .iter()
            .map(|running| SubscriberStatus {
                name: running.subscriber.name(),
                scope: running.subscriber.scope(),
                position: running
                    .held
                    .load(Ordering::Acquire)
                    .then(|| running.position.load(Ordering::Acquire)),
                trouble: running
                    .state
                    .lock()
                    .ok()
                    .and_then(|health| health.trouble.clone()),
            })
            .collect()
    }

    /// Why this process is not following the log, if it is not: a read model halted, or an
    /// instance subscriber refused (what readiness says).
    pub fn halted(&self) -> Option<String> {
        let halted = self.progress.lock().ok()?.halted.clone();
        halted.or_else(|| {
            self.status()
                .into_iter()
                .filter(|s| s.scope == Scope::Instance)
                .find_map(|s| s.trouble)
        })
    }

    /// How long ago this process last held everything the log did (a few poll intervals at
    /// most while it keeps up): what the readiness probe reports.
    pub fn behind(&self) -> Duration {
        let now = self.clock.now();
        self.progress
            .lock()
            .map_or(Duration::MAX, |progress| now - progress.current_at)
    }
}

/// Calls `pass` whenever `signal` is notified and every `every` in any case, until `stopped`
/// completes: the one loop every consumer of the log wakes by (the read models after each
/// commit, the runner after each move of the read models).
///
/// `signal` wakes only the waiters registered when it fires (`notify_waiters`), or stores one
/// permit (`notify_one`): either way the next wait is registered before each pass, so a signal
/// that comes while a pass runs makes one more pass at once instead of waiting for the next
/// tick (a lost wake-up left a revocation unseen for up to 2 s on PostgreSQL).
pub async fn wake_on<F, Fut>(
    every: StdDuration,
    signal: &Notify,
    stopped: impl Future<Output = ()>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut signalled = std::pin::pin!(signal.notified());
    signalled.as_mut().enable();
    let mut stopped = std::pin::pin!(stopped);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = signalled.as_mut() => {}
            _ = stopped.as_mut() => return,
        }
        signalled.set(signal.notified());
        signalled.as_mut().enable();
        pass().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{clock, FixedClock, InMemoryEventStore};
    use authlog_domain::event::{LoginAttempted, SigningKeyRevoked};
    use authlog_domain::{AttemptId, Event, StreamId};
    use std::sync::atomic::AtomicBool;

    /// Records the positions it was handed; fails while `failing` is set.
    struct Recorder {
        name: &'static str,
        scope: Scope,
        version: u32,
        seen: Mutex<Vec<u64>>,
        failing: AtomicBool,
    }

    impl Recorder {
        fn new(name: &'static str, scope: Scope) -> Arc<Self> {
            Arc::new(Self {
                name,
                scope,
                version: 1,
                seen: Mutex::new(Vec::new()),
                failing: AtomicBool::new(false),
            })
        }

        fn seen(&self) -> Vec<u64> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Subscriber for Recorder {
        fn name(&self) -> &'static str {
            self.name
        }
        fn event_types(&self) -> &'static [EventType] {
            &[EventType::SigningKeyRevoked]
        }
        fn scope(&self) -> Scope {
            self.scope
        }
        fn version(&self) -> u32 {
            self.version
        }
        async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandleError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(HandleError::Failed("the receiver is down".into()));
            }
            self.seen
                .lock()
                .unwrap()
                .extend(events.iter().map(|e| e.position));
            Ok(())
        }
    }

    /// Appends one event the recorders read and one they do not.
    fn append_two(store: &InMemoryEventStore) {
        store.given(
            StreamId::signing_keys(),
            [Event::SigningKeyRevoked(SigningKeyRevoked {
                kid: "k".into(),
            })],
        );
        store.given(
            StreamId::login_attempts("x"),
            [Event::LoginAttempted(LoginAttempted {
                attempt_id: AttemptId::from_uuid(uuid::Uuid::from_u128(1)),
            })],
        );
    }

    async fn runner(
        store: &Arc<InMemoryEventStore>,
        clock: &Arc<FixedClock>,
        holder: &str,
        subscribers: Vec<Arc<dyn Subscriber>>,
    ) -> Runner {
        Runner::start(
            store.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
            holder.into(),
            subscribers,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn an_instance_subscriber_follows_from_the_head_at_its_start_and_sees_only_its_types() {
        let store = Arc::new(InMemoryEventStore::new());
        let clock = clock();
        append_two(&store);
        let recorder = Recorder::new("memory", Scope::Instance);
        let runner = runner(&store, &clock, "a", vec![recorder.clone()]).await;
        runner.run().await.unwrap();
        assert_eq!(recorder.seen(), Vec::<u64>::new(), "the history is not its");
        append_two(&store);
        append_two(&store);
        runner.run().await.unwrap();
        assert_eq!(recorder.seen(), [3, 5]);
        assert_eq!(runner.status()[0].position, Some(6));
    }

    #[tokio::test]
    async fn a_failing_subscriber_backs_off_and_gets_the_same_events_again_while_others_go_on() {
        let store = Arc::new(InMemoryEventStore::new());
        let clock = clock();
        let (down, up) = (
            Recorder::new("down", Scope::Instance),
            Recorder::new("up", Scope::Instance),
        );
        let runner = runner(&store, &clock, "a", vec![down.clone(), up.clone()]).await;
        down.failing.store(true, Ordering::SeqCst);
        append_two(&store);
        runner.run().await.unwrap();
        assert_eq!(up.seen(), [1]);
        assert!(runner.status()[0].trouble.is_some());
        down.failing.store(false, Ordering::SeqCst);
        runner.run().await.unwrap();
        assert_eq!(down.seen(), Vec::<u64>::new(), "still backing off");
        clock.advance(Duration::seconds(1));
        runner.run().await.unwrap();
        assert_eq!(down.seen(), [1], "the same event, once it is up");
        assert_eq!(runner.status()[0].trouble, None);
    }

    #[tokio::test]
    async fn a_cluster_subscriber_runs_in_one_instance_from_its_checkpoint_and_moves_on_a_lapse() {
        let store = Arc::new(InMemoryEventStore::new());
        let clock = clock();
        append_two(&store);
        let (in_a, in_b) = (
            Recorder::new("mail", Scope::Cluster),
            Recorder::new("mail", Scope::Cluster),
        );
        let a = runner(&store, &clock, "a", vec![in_a.clone()]).await;
        let b = runner(&store, &clock, "b", vec![in_b.clone()]).await;
        a.run().await.unwrap();
        b.run().await.unwrap();
        // The whole log, from its checkpoint (0), in the instance that took the lease.
        assert_eq!((in_a.seen(), in_b.seen()), (vec![1], vec![]));
        assert_eq!(b.status()[0].position, None, "held elsewhere");
        append_two(&store);
        // A dies; once its lease lapses, B carries on from the checkpoint.
        clock.advance(LEASE + Duration::seconds(1));
        b.run().await.unwrap();
        assert_eq!(in_b.seen(), [3]);
        let kept = store.checkpoints().await.unwrap();
        assert_eq!(
            (kept[0].position, kept[0].holder.as_deref()),
            (4, Some("b"))
        );
    }

    #[tokio::test]
    async fn a_new_version_of_a_cluster_subscriber_sees_the_log_again() {
        let store = Arc::new(InMemoryEventStore::new());
        let clock = clock();
        append_two(&store);
        let first = Recorder::new("webhooks", Scope::Cluster);
        runner(&store, &clock, "a", vec![first.clone()])
            .await
            .run()
            .await
            .unwrap();
        let second = Arc::new(Recorder {
            version: 2,
            ..Arc::into_inner(Recorder::new("webhooks", Scope::Cluster)).unwrap()
        });
        runner(&store, &clock, "a", vec![second.clone()])
            .await
            .run()
            .await
            .unwrap();
        assert_eq!((first.seen(), second.seen()), (vec![1], vec![1]));
    }

    #[tokio::test]
    async fn a_checkpoint_ahead_of_the_log_is_refused_not_skipped() {
        let store = Arc::new(InMemoryEventStore::new());
        let clock = clock();
        let recorder = Recorder::new("mail", Scope::Cluster);
        // Its checkpoint says 9: the log, of 2 events, no longer holds what it handled.
        store
            .lease("mail", 1, "a", NOW_FOR_LEASE, NOW_FOR_LEASE)
            .await
            .unwrap();
        store.advance("mail", "a", 9).await.unwrap();
        append_two(&store);
        let runner = runner(&store, &clock, "a", vec![recorder.clone()]).await;
        runner.run().await.unwrap();
        assert_eq!(recorder.seen(), Vec::<u64>::new());
        let trouble = runner.status()[0].trouble.clone().unwrap();
        assert!(
            trouble.contains("up to position 9, but the log's head is 2"),
            "{trouble}"
        );
        // The log growing past the checkpoint again is no reason to go on from it.
        for _ in 0..5 {
            append_two(&store);
        }
        clock.advance(MAX_BACKOFF + Duration::seconds(1));
        runner.run().await.unwrap();
        assert_eq!(recorder.seen(), Vec::<u64>::new());
        assert!(runner.status()[0].trouble.is_some());
    }

    /// A lease already lapsed at the fixed clock's time.
    const NOW_FOR_LEASE: OffsetDateTime = time::macros::datetime!(2000-01-01 00:00 UTC);

    #[tokio::test]
    async fn a_signal_during_a_pass_makes_one_more_pass_at_once() {
        // The wake-up loop of every consumer: a signal while a pass runs is not lost.
        use std::sync::atomic::AtomicUsize;
        let signal = Arc::new(Notify::new());
        let passes = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let looping = tokio::spawn({
            let (signal, passes) = (signal.clone(), passes.clone());
            async move {
                let stopped = async move {
                    let _ = stopped.await;
                };
                wake_on(StdDuration::from_secs(3600), &signal, stopped, || {
                    let pass = passes.fetch_add(1, Ordering::SeqCst) + 1;
                    let signal = signal.clone();
                    async move {
                        if pass == 2 {
                            signal.notify_waiters();
                        }
                    }
                })
                .await;
            }
        });
        let reached = |n: usize| {
            let passes = passes.clone();
            async move {
                for _ in 0..100 {
                    if passes.load(Ordering::SeqCst) >= n {
                        return;
                    }
                    tokio::time::sleep(StdDuration::from_millis(10)).await;
                }
                panic!("{n} passes not reached");
            }
        };
        reached(1).await;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        signal.notify_waiters();
        reached(3).await;
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        assert_eq!(passes.load(Ordering::SeqCst), 3);
        stop.send(()).unwrap();
        looping.await.unwrap();
    }
}
