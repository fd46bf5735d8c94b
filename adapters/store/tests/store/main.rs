//! The event store's tests. `contract` holds the behaviour every backend must have, written
//! against the `EventStore` port alone; `sqlite` runs it on SQLite and adds what only the
//! SQLite file can show (triggers, hash chain, durability settings).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod sqlite;
