//! Identifiers. They are UUIDv7 (time-ordered) but the domain never makes one: fresh ids come in
//! from the application's id generator, which keeps the model free of randomness and clocks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A string that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id: expected a UUID")]
pub struct IdParseError;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(raw).map(Self).map_err(|_| IdParseError)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// One user account, for its whole life (the `sub` claim).
    UserId
);
id_type!(
    /// One login: every access and refresh token issued from it carries it as `sid`.
    SessionId
);
id_type!(
    /// One code mailed to a user (its secret is stored under this id).
    CodeId
);
id_type!(
    /// One token (the `jti` claim); the session remembers its current refresh token's id.
    TokenId
);
id_type!(
    /// One password check, reserved before the password is hashed (see [`crate::attempts`]).
    AttemptId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_uuids() {
        let raw = "0192f0c1-8e5a-7b3c-9d4e-123456789abc";
        let id: SessionId = raw.parse().unwrap();
        assert_eq!(id.to_string(), raw);
    }

    #[test]
    fn refuses_non_uuids() {
        assert_eq!("nope".parse::<UserId>(), Err(IdParseError));
        assert_eq!("../etc/passwd".parse::<TokenId>(), Err(IdParseError));
    }
}
