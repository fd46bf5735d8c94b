//! Passwords (secret, zeroised) and their hashes (opaque PHC strings, never printed).

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Shortest password, in characters (as NIST SP 800-63B counts, and as JSON Schema's
/// `minLength` does, so the published schema states the rule exactly).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in bytes of UTF-8: bounds what one login can make the hasher chew on.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password of acceptable shape. Its memory is wiped on drop and it has no `Display`; its
/// `Debug` prints nothing of it, so it cannot leak into a log line by accident. A clone is
/// wiped on drop as well.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

/// Why a string is not an acceptable password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
}

impl Password {
    /// Takes ownership of `raw`, so that the only copy is the one that gets zeroised.
    ///
    /// # Errors
    /// [`PasswordError`] when `raw` is shorter than 8 characters or longer than 1024 bytes.
    pub fn parse(raw: String) -> Result<Self, PasswordError> {
        let raw = Zeroizing::new(raw);
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw))
    }

    /// A password offered to be checked against a stored hash (a login, the current password
    /// at a change): only the maximum applies. The minimum is a rule for setting a password, so
    /// raising it never locks out an account whose password was set under a lower one.
    ///
    /// # Errors
    /// [`PasswordError::TooLong`] past 1024 bytes (the bound on what one login can make the
    /// hasher chew on).
    pub fn offered(raw: String) -> Result<Self, PasswordError> {
        let raw = Zeroizing::new(raw);
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw))
    }

    /// The secret itself, for the hasher and nothing else.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A password hash in PHC string format (`$argon2id$v=19$...`). It is stored in the event log
/// (the log is the source of truth) but never shown: audit output drops it and `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by the hasher.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for the hasher to verify against.
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_8_to_1024_bytes() {
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("x".repeat(1024)).is_ok());
    }

    #[test]
    fn refuses_too_short_and_too_long() {
        assert_eq!(
            Password::parse("1234567".into()).err(),
            Some(PasswordError::TooShort)
        );
        assert_eq!(
            Password::parse("x".repeat(1025)).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn the_minimum_counts_characters_and_the_maximum_bytes() {
        // Eight bytes but four characters: too short.
        assert_eq!(
            Password::parse("éééé".into()).err(),
            Some(PasswordError::TooShort)
        );
        // 600 characters but 1200 bytes: too long.
        assert_eq!(
            Password::parse("é".repeat(600)).err(),
            Some(PasswordError::TooLong)
        );
        assert!(Password::parse("é".repeat(512)).is_ok());
    }

    #[test]
    fn a_password_offered_for_checking_has_no_minimum_only_the_maximum() {
        assert!(Password::offered("1234567".into()).is_ok());
        assert!(Password::offered("é".repeat(512)).is_ok());
        assert_eq!(
            Password::offered("é".repeat(513)).err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn debug_never_shows_the_secret_or_the_hash() {
        let password = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
        let hash = PasswordHash::from_phc("$argon2id$v=19$secret".into());
        assert!(!format!("{hash:?}").contains("argon2"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn accepted_exactly_when_8_characters_to_1024_bytes(raw in ".{0,1100}") {
                let ok = raw.chars().count() >= MIN_PASSWORD_CHARS && raw.len() <= MAX_PASSWORD_BYTES;
                let parsed = Password::parse(raw);
                prop_assert_eq!(parsed.is_ok(), ok);
            }
        }
    }
}
