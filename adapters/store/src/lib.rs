//! authlog's event store: the append-only `events` table, on SQLite via sqlx.
//!
//! - [`sqlite`]: [`SqliteStore`], which implements the application's `EventStore` and
//!   `KeyStore` ports; opening it creates the file and applies the embedded migrations.
//! - [`writer`]: the one task per process that appends. It batches concurrent appends into one
//!   transaction (group commit: one fsync per batch) and, being the only writer, hands out
//!   positions in commit order, so a reader following the log can never miss a late commit.
//! - [`chain`]: the hash that links each row to the one before, so edits behind the service's
//!   back are detectable.
//! - [`rows`]: the column encodings (timestamps, JSON) shared by the writer and the readers.

pub mod chain;
mod rows;
pub mod sqlite;
mod writer;

pub use sqlite::{OpenError, SqliteStore};
