//! The pure model of authlog: what a user and a session are, which facts (events) can be recorded
//! about them, and which commands are allowed given the facts so far.
//!
//! Nothing here does I/O, reads a clock or draws randomness: time and fresh ids come in as
//! parameters, so every decision is a plain function that tests can drive as given/when/then.
//!
//! - [`username`], [`password`], [`role`], [`email`], [`ids`]: value types that parse. Holding one means it
//!   is valid; there is no later `validate()`.
//! - [`event`]: the facts, with their stable `event_type` names, schema versions and JSON
//!   payloads.
//! - [`personal`]: personal fields of events, which erasure makes unreadable.
//! - [`upcast`]: the steps that read an older schema version of an event as the current one.
//! - [`stream`]: which stream (the unit of consistency in the log) each fact belongs to.
//! - [`user`]: the user aggregate (identity, password hash, roles, wholesale session
//!   revocations) as `decide` and `apply`.
//! - [`session`]: the session aggregate (one login: refresh-token generation, revocation).
//! - [`attempts`]: the password checks of one name, which the login throttle counts.
//! - [`email`]: also the codes mailed to an address (to verify it, to reset a password): their
//!   lifetime, tries and single use.
//! - [`login`]: a login as steps: the factors an account asks for, and what comes next.

pub mod attempts;
pub mod email;
pub mod event;
pub mod ids;
pub mod login;
pub mod password;
pub mod personal;
pub mod role;
pub mod session;
pub mod stream;
pub mod upcast;
pub mod user;
pub mod username;

pub use email::{Email, EmailError, MailPurpose};
pub use event::{Event, EventDecodeError, EventType, RevocationReason};
pub use ids::{AttemptId, CodeId, IdParseError, SessionId, TokenId, UserId};
pub use password::{Password, PasswordError, PasswordHash};
pub use personal::{Personal, ERASED};
pub use role::{Role, RoleError};
pub use stream::StreamId;
pub use username::{Username, UsernameError};

/// Where and when an event was recorded: its global position in the log and its time. The
/// aggregates' `apply` receives it next to each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub position: u64,
    pub at: time::OffsetDateTime,
}
