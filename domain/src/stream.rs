//! Streams: the unit of consistency in the log. Appends to one stream are checked against its
//! expected version, which is how the store (not a check-then-insert) enforces the invariants.

use std::fmt;

use crate::{SessionId, Username};

/// The name of a stream in the event log.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StreamId(String);

impl StreamId {
    /// A user's identity, password and roles. Keyed by the canonical username, so "this name is
    /// free" is exactly "this stream does not exist yet": registration appends with the
    /// expectation of no stream, and of twenty racing registrations only one can win.
    pub fn user(username: &Username) -> Self {
        Self(format!("user:{}", username.canonical()))
    }

    /// One login session: its refresh-token generations and its revocation.
    pub fn session(session: SessionId) -> Self {
        Self(format!("session:{session}"))
    }

    /// Password checks for a username (reserved, succeeded, failed), whether or not the account
    /// exists: the login throttle's state. They live apart from the user stream so that
    /// failing to log in as a free name does not reserve it.
    pub fn login_attempts(username: &Username) -> Self {
        Self(format!("login:{}", username.canonical()))
    }

    /// Signing-key rotations (public parts only).
    pub fn signing_keys() -> Self {
        Self("keys".to_owned())
    }

    /// Rebuilds a stream id read back from the store.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_streams_ignore_case() {
        let a = Username::parse("Alice").unwrap();
        let b = Username::parse("aLICE").unwrap();
        assert_eq!(StreamId::user(&a), StreamId::user(&b));
        assert_eq!(StreamId::user(&a).as_str(), "user:alice");
    }

    #[test]
    fn login_attempts_are_not_the_user_stream() {
        let a = Username::parse("alice").unwrap();
        assert_ne!(StreamId::user(&a), StreamId::login_attempts(&a));
    }
}
