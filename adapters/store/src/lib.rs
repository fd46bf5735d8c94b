//! authlog's event store: the append-only `events` table, the signing keys, and the read models
//! derived from the log, on SQLite or PostgreSQL via sqlx. [`Store`] implements every storage
//! port of the application once, for both; one contract test suite holds them (and the
//! application's in-memory store) to the same behaviour.
//!
//! - [`store`]: [`Store`], the ports' one implementation.
//! - [`sqlite`]: the embedded default: opening the file, its exclusive write transaction.
//! - [`postgres`]: many instances on one database: the advisory lock that orders appends, a
//!   batch in one call of the `authlog_append` function, and LISTEN/NOTIFY to learn of other
//!   instances' commits.
//! - `beside`: what an append writes besides its events (a name claim, an erasure, signing
//!   keys, a user's secrets), written once for both databases.
//! - [`writer`]: the one task per process that appends, batching concurrent appends into one
//!   exclusive transaction (group commit), each atomic across its streams.
//! - `names`: the name index (which account holds which name), claimed by registrations and
//!   filled at start for accounts older releases registered.
//! - [`personal`]: personal data sealed under each user's data key as it is appended, opened
//!   as it is read; erasure destroys the key (crypto-shredding).
//! - [`projections`]: the read models (sessions, revocations, users), each kept from the log
//!   behind a checkpoint written with its rows, rebuilt by replay.
//! - [`sql`]: statements written once for both backends.
//! - [`chain`]: the hash that links each row to the one before, so edits behind the service's
//!   back are detectable; [`verify`] walks it.
//! - [`rows`]: the column encodings (timestamps, JSON) and the event reads, shared by both.

mod beside;
pub mod chain;
mod names;
pub mod personal;
pub mod postgres;
pub mod projections;
mod rows;
pub mod sql;
pub mod sqlite;
pub mod store;
pub mod verify;
mod writer;

pub use projections::Rebuilt;

/// Told how a long job (a rebuild, a verification) goes: events done, of how many (the log's
/// head when it started).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);
pub use store::{OpenError, Store};
pub use verify::{Intact, VerifyError};
