//! Usernames: NFKC-normalised, a restricted alphabet, unique without regard to case.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// The longest username, in characters after normalisation.
pub const MAX_USERNAME_CHARS: usize = 64;

/// A valid username. The display form keeps the case the user chose; [`Username::canonical`] is
/// the case-folded form under which uniqueness is decided, so `Alice` and `ALICE` are one account.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username {
    display: String,
    canonical: String,
}

/// Why a string is not a username.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must not be empty")]
    Empty,
    #[error("username must be at most {MAX_USERNAME_CHARS} characters")]
    TooLong,
    #[error("username may only contain letters, digits and . _ - @ (found {0:?})")]
    InvalidCharacter(char),
}

impl Username {
    /// Normalises `raw` with NFKC and checks its length and alphabet.
    ///
    /// # Errors
    /// [`UsernameError`] says which rule the input breaks.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let display: String = raw.nfkc().collect();
        if display.is_empty() {
            return Err(UsernameError::Empty);
        }
        if display.chars().count() > MAX_USERNAME_CHARS {
            return Err(UsernameError::TooLong);
        }
        if let Some(bad) = display.chars().find(|c| !is_allowed(*c)) {
            return Err(UsernameError::InvalidCharacter(bad));
        }
        // Lower-casing can leave a string that is no longer NFKC (and, rarely, longer), so the
        // canonical form is normalised again after folding.
        let canonical = display.to_lowercase().nfkc().collect();
        Ok(Self { display, canonical })
    }

    /// The name as the user chose it (normalised).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form: two usernames with the same canonical form are the same account.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

fn is_allowed(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')
}

impl TryFrom<String> for Username {
    type Error = UsernameError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Username> for String {
    fn from(name: Username) -> Self {
        name.display
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.display)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_letters_digits_and_the_four_punctuation_marks() {
        let name = Username::parse("jo.doe_1-x@example").unwrap();
        assert_eq!(name.as_str(), "jo.doe_1-x@example");
    }

    #[test]
    fn accepts_non_ascii_letters() {
        assert!(Username::parse("Zoë").is_ok());
        assert!(Username::parse("日本").is_ok());
    }

    #[test]
    fn canonical_form_ignores_case_but_display_keeps_it() {
        let name = Username::parse("Alice").unwrap();
        assert_eq!(name.as_str(), "Alice");
        assert_eq!(name.canonical(), "alice");
        assert_eq!(Username::parse("ALICE").unwrap().canonical(), "alice");
    }

    #[test]
    fn compatibility_look_alikes_normalise_to_the_same_account() {
        // Fullwidth letters are NFKC-equivalent to ASCII ones.
        let fullwidth = Username::parse("ａｌｉｃｅ").unwrap();
        assert_eq!(fullwidth.canonical(), "alice");
        assert_eq!(fullwidth.as_str(), "alice");
    }

    #[test]
    fn refuses_empty() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
    }

    #[test]
    fn refuses_more_than_64_characters_but_counts_characters_not_bytes() {
        assert!(Username::parse(&"é".repeat(64)).is_ok());
        assert_eq!(
            Username::parse(&"a".repeat(65)),
            Err(UsernameError::TooLong)
        );
    }

    #[test]
    fn refuses_spaces_control_characters_and_symbols() {
        for (raw, bad) in [
            ("a b", ' '),
            ("a\0b", '\0'),
            ("a\nb", '\n'),
            ("a/b", '/'),
            ("a'b", '\''),
        ] {
            assert_eq!(
                Username::parse(raw),
                Err(UsernameError::InvalidCharacter(bad)),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn deserialising_parses() {
        let ok: Username = serde_json::from_str("\"Bob\"").unwrap();
        assert_eq!(ok.canonical(), "bob");
        assert!(serde_json::from_str::<Username>("\"no spaces\"").is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsing_never_panics_and_what_it_accepts_obeys_the_rules(raw in "\\PC{0,80}|.{0,80}") {
                if let Ok(name) = Username::parse(&raw) {
                    let chars = name.as_str().chars().count();
                    prop_assert!((1..=MAX_USERNAME_CHARS).contains(&chars));
                    prop_assert!(name.as_str().chars().all(is_allowed));
                    // Canonical forms are stable: parsing the canonical form gives it back.
                    let again = Username::parse(name.canonical()).unwrap();
                    prop_assert_eq!(again.canonical(), name.canonical());
                }
            }

            #[test]
            fn any_bytes_as_lossy_text_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = Username::parse(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}
