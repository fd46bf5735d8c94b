//! The event store's tests. `contract` holds the behaviour every backend must have, written
//! against the `EventStore` port alone; `sqlite` and `postgres` run it on each backend and add
//! what only that database can show (triggers, hash chain, verification).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod contract;
mod postgres;
mod sqlite;
