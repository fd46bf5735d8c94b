//! authlog's event store: the append-only `events` table, on SQLite or PostgreSQL via sqlx.
//! Both implement the application's `EventStore` and `KeyStore` ports with the same table
//! shape, the same guarantees, and one shared contract test suite.
//!
//! - [`sqlite`]: [`SqliteStore`], the embedded default; opening it creates the file and applies
//!   the embedded migrations.
//! - [`postgres`]: [`PostgresStore`], for many instances on one database (advisory-lock
//!   ordering, LISTEN/NOTIFY).
//! - [`writer`]: the one task per process that appends, batching concurrent appends into one
//!   exclusive transaction (group commit) and handing out positions in commit order.
//! - [`chain`]: the hash that links each row to the one before, so edits behind the service's
//!   back are detectable; [`verify`] walks it.
//! - [`rows`]: the column encodings (timestamps, JSON) shared by both backends.

pub mod chain;
pub mod postgres;
mod rows;
pub mod sqlite;
pub mod verify;
mod writer;

pub use postgres::PostgresStore;
pub use sqlite::{OpenError, SqliteStore};
pub use verify::{Intact, VerifyError};
