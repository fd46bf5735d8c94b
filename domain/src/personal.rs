//! Personal data in events, and its erasure.
//!
//! The log keeps what an account's events say about the person (the username, the password
//! hashes) sealed under a key of that user's own, and erasing the user destroys the key
//! (crypto-shredding): the rows stay, hash-chained and unchanged, and their personal fields can
//! no longer be read by anyone. A field read after that is [`Personal::Erased`]. Which fields
//! are personal is [`crate::Event::personal_fields`]; sealing them is the store's job, so the
//! model only ever sees them open, or erased.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How an erased field is shown (in audit output, and in the payload the store hands over in
/// place of a field whose key is gone). No username or password hash can be spelled so.
pub const ERASED: &str = "[erased]";

/// A personal field of an event: its value, or the fact that it was erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Personal<T> {
    Known(T),
    Erased,
}

impl<T> Personal<T> {
    /// The value, unless it was erased.
    pub fn known(&self) -> Option<&T> {
        match self {
            Self::Known(value) => Some(value),
            Self::Erased => None,
        }
    }
}

impl<T> From<T> for Personal<T> {
    fn from(value: T) -> Self {
        Self::Known(value)
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Known(value) => value.serialize(serializer),
            Self::Erased => serializer.serialize_str(ERASED),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.as_str() == Some(ERASED) {
            return Ok(Self::Erased);
        }
        T::deserialize(value)
            .map(Self::Known)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Username;

    #[test]
    fn a_known_value_is_stored_as_itself_and_an_erased_one_as_the_marker() {
        let alice = Personal::Known(Username::parse("alice").unwrap());
        assert_eq!(serde_json::to_string(&alice).unwrap(), r#""alice""#);
        assert_eq!(
            serde_json::from_str::<Personal<Username>>(r#""alice""#).unwrap(),
            alice
        );
        let erased = Personal::<Username>::Erased;
        assert_eq!(serde_json::to_string(&erased).unwrap(), r#""[erased]""#);
        assert_eq!(
            serde_json::from_str::<Personal<Username>>(r#""[erased]""#).unwrap(),
            erased
        );
        // What is neither is refused, as the value's own type refuses it.
        assert!(serde_json::from_str::<Personal<Username>>(r#""no spaces""#).is_err());
    }
}
