//! The event feed's consumers, and the one reader of the log they share.
//!
//! Each consumer has a cursor. Behind the head, it reads the log after its cursor in pages, as
//! audit does. Caught up, it takes new events from the [`FeedHub`]: one reader per process that
//! reads each new event once, whatever the number of consumers, and broadcasts it. A commit
//! then costs one query, not one per consumer. The broadcast keeps the last [`BACKLOG`] events;
//! a consumer that falls further behind (or sees a gap: it subscribed while events went by)
//! goes back to reading pages from its cursor. So no consumer holds more than a page, none
//! misses an event, and a slow one costs only its own reads.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use crate::access::Caller;
use crate::audit::{Audit, AuditEntry, AuditError, AuditQuery};

/// Events read from the log at a time: the most a consumer holds.
pub const PAGE: u32 = 100;
/// New events the hub keeps for consumers that are a little behind.
pub const BACKLOG: usize = 1_024;

/// Reads each new event of the log once, for every consumer of this process.
pub struct FeedHub {
    sender: broadcast::Sender<Arc<AuditEntry>>,
}

impl Default for FeedHub {
    fn default() -> Self {
        Self {
            sender: broadcast::Sender::new(BACKLOG),
        }
    }
}

impl FeedHub {
    /// Follows the log from the head `heads` holds now, broadcasting every event after it as
    /// the head moves, until `stopped`. Reads nothing while no consumer listens.
    pub async fn follow(
        &self,
        audit: Audit,
        mut heads: watch::Receiver<u64>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut cursor = *heads.borrow_and_update();
        loop {
            tokio::select! {
                moved = heads.changed() => if moved.is_err() { return },
                _ = stopped.changed() => return,
            }
            let head = *heads.borrow_and_update();
            if self.sender.receiver_count() == 0 {
                // Nobody to tell: a consumer that comes reads the log itself.
                cursor = head;
                continue;
            }
            while cursor < head {
                let query = AuditQuery {
                    after: Some(cursor),
                    limit: Some(PAGE),
                    ..AuditQuery::default()
                };
                let Ok(page) = audit.query(&Caller::Operator, query).await else {
                    // The consumers notice the gap and read the log themselves.
                    cursor = head;
                    break;
                };
                let Some(last) = page.events.last().map(|e| e.position) else {
                    break;
                };
                for entry in page.events {
                    // No receiver left is not a failure: the next one reads the log.
                    let _ = self.sender.send(Arc::new(entry));
                }
                cursor = last;
            }
        }
    }

    /// A consumer of the events after `after` of `types` (all when empty), for `caller`.
    ///
    /// # Errors
    /// What audit refuses: a caller who may not read the log, an unknown type; a store
    /// failure.
    pub async fn consumer(
        &self,
        audit: Audit,
        caller: Caller,
        types: Vec<String>,
        after: u64,
        heads: watch::Receiver<u64>,
        stopped: watch::Receiver<bool>,
    ) -> Result<FeedConsumer, AuditError> {
        let wanted = types
            .iter()
            .flat_map(|list| list.split(','))
            .map(|name| name.trim().to_owned())
            .collect();
        let mut consumer = FeedConsumer {
            audit,
            caller,
            types,
            wanted,
            cursor: after,
            seen: after,
            page: VecDeque::new(),
            caught_up: false,
            heads,
            stopped,
            hub: self.sender.clone(),
            live: None,
        };
        // The first page now: a refusal is the request's answer, not an empty stream.
        consumer.read().await?;
        Ok(consumer)
    }
}

/// One consumer's place in the log.
pub struct FeedConsumer {
    audit: Audit,
    caller: Caller,
    /// As given, for the log's reads.
    types: Vec<String>,
    /// One name each, for the broadcast's events.
    wanted: Vec<String>,
    /// The last event handed out.
    cursor: u64,
    /// Every event up to here was considered (handed out, or not of the types wanted).
    seen: u64,
    page: VecDeque<AuditEntry>,
    /// The last read found every event up to the head it began at.
    caught_up: bool,
    heads: watch::Receiver<u64>,
    /// Set when this process stops following the log: the feed ends then.
    stopped: watch::Receiver<bool>,
    hub: broadcast::Sender<Arc<AuditEntry>>,
    /// The hub's broadcast, once caught up.
    live: Option<broadcast::Receiver<Arc<AuditEntry>>>,
}

impl FeedConsumer {
    /// The next event, waiting as long as it takes. `None` ends the feed: the process stops
    /// following the log, or the log cannot be read; the consumer resumes from its cursor.
    pub async fn next(&mut self) -> Option<AuditEntry> {
        loop {
            if *self.stopped.borrow() {
                return None;
            }
            if let Some(entry) = self.page.pop_front() {
                self.cursor = entry.position;
                self.seen = self.seen.max(entry.position);
                return Some(entry);
            }
            if !self.caught_up {
                self.read().await.ok()?;
                continue;
            }
            let Some(live) = self.live.as_mut() else {
                // Listening first, then one more read: whatever the hub sends from now on
                // is either in that read or after it.
                self.live = Some(self.hub.subscribe());
                self.read().await.ok()?;
                continue;
            };
            let received = tokio::select! {
                received = live.recv() => received,
                _ = self.stopped.changed() => return None,
            };
            match received {
                Ok(entry) if entry.position <= self.seen => {}
                Ok(entry) if entry.position == self.seen + 1 => {
                    self.seen = entry.position;
                    if self.wanted.is_empty() || self.wanted.contains(&entry.event_type) {
                        self.cursor = entry.position;
                        return Some((*entry).clone());
                    }
                }
                // Events went by unseen (a gap, or more than the backlog): read the log.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.live = None;
                    self.caught_up = false;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Reads the page after the cursor.
    async fn read(&mut self) -> Result<(), AuditError> {
        // The head before the read: a caught-up read has seen every event up to it.
        let head = *self.heads.borrow_and_update();
        let page = self
            .audit
            .query(
                &self.caller,
                AuditQuery {
                    types: self.types.clone(),
                    after: Some(self.cursor),
                    limit: Some(PAGE),
                    ..AuditQuery::default()
                },
            )
            .await?;
        self.caught_up = page.events.len() < PAGE as usize;
        if self.caught_up {
            self.seen = self.seen.max(head);
        }
        self.page = page.events.into();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{AuditFilter, EventLog, MockNameConcealer, RecordedEvent, StoreError};
    use crate::testing::{alice_registered, InMemoryEventStore};
    use authlog_domain::StreamId;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The in-memory log, counting its audit queries.
    struct Counted {
        store: Arc<InMemoryEventStore>,
        queries: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl EventLog for Counted {
        async fn read_after(
            &self,
            after: u64,
            limit: u32,
            types: &'static [authlog_domain::EventType],
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.store.read_after(after, limit, types).await
        }

        async fn query(&self, filter: AuditFilter) -> Result<Vec<RecordedEvent>, StoreError> {
            self.queries.fetch_add(1, Ordering::SeqCst);
            self.store.query(filter).await
        }

        async fn head(&self) -> Result<u64, StoreError> {
            self.store.head().await
        }
    }

    /// Audit over `store`, counting the log queries it makes.
    fn counted(store: &Arc<InMemoryEventStore>, queries: &Arc<AtomicUsize>) -> Audit {
        let log = Counted {
            store: store.clone(),
            queries: queries.clone(),
        };
        Audit::new(
            Arc::new(log),
            store.clone(),
            Arc::new(MockNameConcealer::new()),
        )
    }

    fn record(store: &InMemoryEventStore, n: u64) {
        store.given(StreamId::from_stored(format!("s{n}")), [alice_registered()]);
    }

    #[tokio::test]
    async fn twenty_consumers_get_every_event_once_in_order_and_share_the_reads_of_new_ones() {
        let store = Arc::new(InMemoryEventStore::new());
        for n in 1..=5 {
            record(&store, n);
        }
        let queries = Arc::new(AtomicUsize::new(0));
        let audit = counted(&store, &queries);
        let (head, heads) = watch::channel(5u64);
        let (_stop, stopped) = watch::channel(false);
        let hub = Arc::new(FeedHub::default());
        tokio::spawn({
            let (hub, audit, heads, stopped) =
                (hub.clone(), audit.clone(), heads.clone(), stopped.clone());
            async move { hub.follow(audit, heads, stopped).await }
        });
        const CONSUMERS: usize = 20;
        const NEW: u64 = 50;
        let mut received = Vec::new();
        for _ in 0..CONSUMERS {
            let mut consumer = hub
                .consumer(
                    audit.clone(),
                    Caller::Operator,
                    vec![],
                    0,
                    heads.clone(),
                    stopped.clone(),
                )
                .await
                .unwrap();
            received.push(tokio::spawn(async move {
                let mut positions = Vec::new();
                while positions.len() < (5 + NEW) as usize {
                    positions.push(consumer.next().await.unwrap().position);
                }
                positions
            }));
        }
        // Every consumer caught up and listening before the new events come.
        while hub.sender.receiver_count() < CONSUMERS {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let before = queries.load(Ordering::SeqCst);
        for n in 6..=5 + NEW {
            record(&store, n);
            head.send_replace(n);
            tokio::task::yield_now().await;
        }
        let expected: Vec<u64> = (1..=5 + NEW).collect();
        for consumer in received {
            assert_eq!(consumer.await.unwrap(), expected);
        }
        let reads = queries.load(Ordering::SeqCst) - before;
        // One read per head move, by the hub, however many consumers (and a consumer that fell
        // behind the backlog would add its own): 50 here, where a read per consumer was 1,000.
        assert!(reads <= NEW as usize, "{reads} reads for {NEW} events");
    }
}
