//! Fixtures for the services' unit tests: fixed time, predictable ids, stored-event builders.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use authlog_domain::{Event, StreamId};
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ports::{Metadata, MockClock, MockIdGenerator, RecordedEvent};

pub const NOW: OffsetDateTime = datetime!(2026-05-01 10:00 UTC);

pub fn clock() -> Arc<MockClock> {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(NOW);
    Arc::new(clock)
}

/// Ids 1, 2, 3, ... in the order they are asked for.
pub fn ids() -> Arc<MockIdGenerator> {
    let next = AtomicU64::new(1);
    let mut ids = MockIdGenerator::new();
    ids.expect_new_id()
        .returning(move || Uuid::from_u128(u128::from(next.fetch_add(1, Ordering::SeqCst))));
    ids.expect_new_secret()
        .returning(|| "csrf-secret".to_owned());
    Arc::new(ids)
}

/// `events` as the store would return them for `stream`.
pub fn recorded(stream: &StreamId, events: &[Event]) -> Vec<RecordedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, event)| RecordedEvent {
            position: i as u64 + 1,
            stream_id: stream.clone(),
            stream_version: i as u64 + 1,
            event: event.clone(),
            subject: None,
            metadata: Metadata::default(),
            recorded_at: NOW,
        })
        .collect()
}
