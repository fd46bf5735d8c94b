//! Roles: short lowercase names that gate endpoints (`admin` gates `/admin`, the user
//! directory and the audit API; `auditor` the audit API alone).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest role name, in bytes.
pub const MAX_ROLE_LEN: usize = 64;

/// A valid role name: 1 to 64 of `a-z`, `0-9`, `_`, `-`, `:`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Role(String);

/// Why a string is not a role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("role must not be empty")]
    Empty,
    #[error("role must be at most {MAX_ROLE_LEN} characters")]
    TooLong,
    #[error("role may only contain a-z, 0-9, _ - : (found {0:?})")]
    InvalidCharacter(char),
}

impl Role {
    /// The role that gates `/admin` and the audit API.
    pub fn admin() -> Self {
        Self("admin".to_owned())
    }

    /// The role that may read the audit trail and nothing else an admin may: for a SIEM or a
    /// compliance reader, who should not be able to change users.
    pub fn auditor() -> Self {
        Self("auditor".to_owned())
    }

    /// # Errors
    /// [`RoleError`] says which rule the input breaks.
    pub fn parse(raw: &str) -> Result<Self, RoleError> {
        if raw.is_empty() {
            return Err(RoleError::Empty);
        }
        if raw.len() > MAX_ROLE_LEN {
            return Err(RoleError::TooLong);
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-:".contains(c);
        if let Some(bad) = raw.chars().find(|c| !allowed(*c)) {
            return Err(RoleError::InvalidCharacter(bad));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Role {
    type Error = RoleError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Role> for String {
    fn from(role: Role) -> Self {
        role.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Role({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_simple_names() {
        assert_eq!(Role::parse("admin").unwrap(), Role::admin());
        assert!(Role::parse("billing:read").is_ok());
    }

    #[test]
    fn refuses_uppercase_spaces_empty_and_long_names() {
        assert_eq!(Role::parse("Admin"), Err(RoleError::InvalidCharacter('A')));
        assert_eq!(Role::parse("a b"), Err(RoleError::InvalidCharacter(' ')));
        assert_eq!(Role::parse(""), Err(RoleError::Empty));
        assert_eq!(Role::parse(&"a".repeat(65)), Err(RoleError::TooLong));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_never_panics_and_round_trips(raw in ".{0,80}") {
                if let Ok(role) = Role::parse(&raw) {
                    prop_assert_eq!(role.as_str(), raw.as_str());
                }
            }
        }
    }
}
