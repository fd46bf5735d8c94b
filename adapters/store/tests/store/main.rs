//! The event store's tests. `contract` holds the behaviour every backend must have, written
//! against the `EventStore` port alone; `sqlite` runs it on SQLite and adds what only the
//! SQLite file can show (triggers, hash chain, durability settings).

mod contract;
mod sqlite;
