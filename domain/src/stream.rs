//! Streams: the unit of consistency in the log. Appends to one stream are checked against its
//! expected version, which is how the store (not a check-then-insert) enforces the invariants.

use std::fmt;

use crate::{SessionId, UserId, Username};

/// The kinds of stream, as the event registry says which each type is appended to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// [`StreamId::user`]: an account's identity, password, roles and wholesale revocations.
    User,
    /// [`StreamId::session`]: one login's refresh tokens and its end.
    Session,
    /// [`StreamId::login_attempts`]: the password checks of an account or a concealed name.
    Login,
    /// [`StreamId::signing_keys`]: signing-key rotations and revocations.
    Keys,
}

impl StreamKind {
    /// The stream's name, as audit documentation shows it.
    pub fn pattern(self) -> &'static str {
        match self {
            Self::User => "user:{user_id}",
            Self::Session => "session:{session_id}",
            Self::Login => "login:{user_id or concealed name}",
            Self::Keys => "keys",
        }
    }
}

/// The name of a stream in the event log.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StreamId(String);

impl StreamId {
    /// A user's identity, password and roles, keyed by the user's id: a name can be erased and
    /// registered again, and a change to the identity rule moves no stream. Which name belongs
    /// to which account is the store's name index, claimed in the registration's transaction.
    pub fn user(user_id: UserId) -> Self {
        Self(format!("user:{user_id}"))
    }

    /// The stream of an account registered before streams were keyed by id: named after the
    /// canonical form of that time ([`Username::legacy_canonical`]). Never written to for a
    /// new account; the store's name index says which accounts have one.
    pub fn legacy_user(username: &Username) -> Self {
        Self(format!("user:{}", username.legacy_canonical()))
    }

    /// One login session: its refresh-token generations and its revocation.
    pub fn session(session: SessionId) -> Self {
        Self(format!("session:{session}"))
    }

    /// Password checks (reserved, succeeded, failed) for `whom`: an account's id, or for a name
    /// that is no account a keyed hash of it, never the name itself. The login throttle's
    /// state; apart from the user stream, so failing to log in as a free name reserves nothing.
    pub fn login_attempts(whom: &str) -> Self {
        Self(format!("login:{whom}"))
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
    fn user_streams_are_keyed_by_id_and_legacy_ones_by_the_old_canonical_name() {
        let id = UserId::from_uuid(uuid::Uuid::from_u128(7));
        assert_eq!(
            StreamId::user(id).as_str(),
            "user:00000000-0000-0000-0000-000000000007"
        );
        let a = Username::parse("Alice").unwrap();
        let b = Username::parse("aLICE").unwrap();
        assert_eq!(StreamId::legacy_user(&a), StreamId::legacy_user(&b));
        assert_eq!(StreamId::legacy_user(&a).as_str(), "user:alice");
        let sharp = Username::parse("Straße").unwrap();
        assert_eq!(StreamId::legacy_user(&sharp).as_str(), "user:straße");
    }

    #[test]
    fn login_attempts_are_not_the_user_stream() {
        let id = UserId::from_uuid(uuid::Uuid::from_u128(7));
        assert_ne!(
            StreamId::user(id),
            StreamId::login_attempts(&id.to_string())
        );
    }
}
