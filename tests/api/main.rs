//! Black-box tests of the whole service: each test starts the real server on port 0 with a
//! fresh database of its own and drives it over HTTP, the way a client of the Flask template
//! would; CLI tests run the real `authlog` binary against the same database. The suite runs on
//! SQLite, and again on PostgreSQL with AUTHLOG_TEST_BACKEND=postgres (./test.sh does both).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod admin;
mod attacks;
mod audit;
mod checkpoints;
mod cluster;
mod cookies;
mod email;
mod erasure;
mod errors;
mod feed;
mod helpers;
mod hostile;
mod invariants;
mod keys;
mod limits;
mod login;
mod logout;
mod openapi;
mod operations;
mod password;
mod process;
mod protected;
mod refresh;
mod register;
mod restart;
mod secrets;
mod sessions;
mod throttling;
mod upgrade;
