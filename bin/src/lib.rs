//! The `authlog` binary's library: configuration, wiring and the command line. `main.rs` only
//! parses arguments and calls [`cli::run`].
//!
//! - [`cli`]: the commands and their flags (each flag also an `AUTHLOG_*` variable).
//! - [`audit`]: `authlog audit`, the audit trail in the terminal (table, json, jsonl).
//! - [`services`]: the composition root. Every command, the server and the test harness build
//!   their adapters and use cases here.
//! - [`server`]: starts and stops the server, and runs the feed that keeps the revocation view
//!   current from the log.
//! - [`database`]: opens the event store a `--database-url` names (SQLite or PostgreSQL).

pub mod audit;
pub mod cli;
pub mod database;
pub mod server;
pub mod services;
