//! The `authlog` binary's library: configuration, wiring and the command line. `main.rs` only
//! parses arguments and calls [`cli::run`].
//!
//! - [`cli`]: the commands and their flags (each flag also an `AUTHLOG_*` variable).
//! - [`audit`]: `authlog audit`, the audit trail in the terminal (table, json, jsonl).
//! - [`services`]: the composition root. Every command, the server and the test harness build
//!   their adapters and use cases here.
//! - [`server`]: starts and stops the server, and runs the subscribers that keep its memory
//!   (the revocation view, the signing keys) current from the log.
//! - `progress`: how `projections rebuild` and `verify` say how they go.
//! - [`database`]: opens the event store a `--database-url` names (SQLite or PostgreSQL), with
//!   the master key that seals its secrets (made on a first start, checked on every other).

pub mod audit;

/// Every file this process creates from now on (the SQLite database, its WAL and shared-memory
/// files) is readable and writable by its owner only: they hold password hashes, personal data
/// and signing keys. The default umask (022) would make them readable by every local user.
pub fn files_private_to_their_owner() {
    use rustix::fs::Mode;
    rustix::process::umask(Mode::from_raw_mode(0o077));
}

pub mod cli;
pub mod database;
mod progress;
pub mod server;
pub mod services;
