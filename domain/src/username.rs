//! Usernames: a restricted alphabet, unique without regard to case or compatibility forms, and
//! refused when they look like an existing one.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;

/// The alphabet as a regular expression for the OpenAPI document: one character class listing
/// every allowed character, built from [`is_allowed`] itself so the schema and the parser agree
/// by construction.
///
/// The class spells each range with `\uXXXX` escapes, the one syntax that ECMA-262 (Swagger UI,
/// TypeScript), Python's `re` (openapi-spec-validator, schemathesis) and Rust's `regex` read
/// alike. `\p{L}` would be shorter, but Python's `re` refuses it, and `\w` means something
/// different in each of the three.
pub fn username_pattern() -> String {
    let mut ranges: Vec<(char, char)> = Vec::new();
    for c in (0..=0xFFFF_u32)
        .filter_map(char::from_u32)
        .filter(|c| is_allowed(*c))
    {
        match ranges.last_mut() {
            Some((_, end)) if u32::from(*end) + 1 == u32::from(c) => *end = c,
            _ => ranges.push((c, c)),
        }
    }
    let escape = |c: char| {
        if c.is_ascii_alphanumeric() {
            c.to_string()
        } else {
            format!("\\u{:04X}", u32::from(c))
        }
    };
    let class: String = ranges
        .iter()
        .map(|&(start, end)| match u32::from(end) - u32::from(start) {
            0 => escape(start),
            1 => format!("{}{}", escape(start), escape(end)),
            _ => format!("{}-{}", escape(start), escape(end)),
        })
        .collect();
    format!("^[{class}]+$")
}

/// A valid username. The display form is the name as the user chose it; [`Username::canonical`]
/// is its NFKC form under full Unicode case folding, under which identity is decided, so
/// `Alice`, `ALICE` and the full-width `ａｌｉｃｅ` are one account, and so are `straße` and
/// `STRASSE`. [`Username::skeleton`] decides which names look alike.
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
    /// Checks the length and alphabet of `raw` as sent, then derives the canonical form.
    ///
    /// The rules apply to the name as sent, not to its NFKC form, because only rules on the
    /// sent text can be stated in the OpenAPI schema (and so checked by clients and by
    /// schemathesis). Normalisation decides identity, not validity: a handful of compatibility
    /// characters normalise outside the alphabet (`Ŀ` becomes `L·`), and the stored display
    /// form must parse again when the log is replayed.
    ///
    /// # Errors
    /// [`UsernameError`] says which rule the input breaks.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if raw.is_empty() {
            return Err(UsernameError::Empty);
        }
        if raw.chars().count() > MAX_USERNAME_CHARS {
            return Err(UsernameError::TooLong);
        }
        if let Some(bad) = raw.chars().find(|c| !is_allowed(*c)) {
            return Err(UsernameError::InvalidCharacter(bad));
        }
        Ok(Self {
            display: raw.to_owned(),
            canonical: fold(raw),
        })
    }

    /// The UTS #39 confusable skeleton of the canonical form: `аdmin` (with a Cyrillic `а`)
    /// and `admin` share one, so do `paypa1` and `paypal`. Registration refuses a name whose
    /// skeleton is an existing account's.
    ///
    /// UTS #39 leaves the small capitals (`ᴀ`, `ʟ`, `ʀ`) as they are: they are prototypes of
    /// its table, for Cherokee and other look-alikes, and no Unicode mapping relates them to
    /// the capitals they are drawn as. So a small capital is read as its capital, the result
    /// case-folded and its skeleton taken again, until that changes nothing: `ᴀdmin` and
    /// `admin` share a skeleton, and so do `paypaʟ` and `paypal`.
    pub fn skeleton(&self) -> String {
        skeleton_of(&self.canonical)
    }

    /// The canonical form under the rule of releases before full case folding (NFKC and
    /// lower case): the user stream of an account registered then is named after it.
    pub fn legacy_canonical(&self) -> String {
        self.display
            .nfkc()
            .collect::<String>()
            .to_lowercase()
            .nfkc()
            .collect()
    }

    /// The name as the user chose it.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded form: two usernames with the same canonical form are the same account.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// The version of the rule [`skeleton_of`] follows. Skeletons are stored (the name index), so
/// a store that holds skeletons of an older rule takes them again from the canonical names.
/// Version 2 reads small capitals as the capitals they are drawn as.
pub const SKELETON_RULE: i64 = 2;

/// The confusable skeleton of a canonical name ([`Username::skeleton`]): the store takes it
/// again from the canonical names it keeps when [`SKELETON_RULE`] changes.
pub fn skeleton_of(canonical: &str) -> String {
    let mut skeleton: String = unicode_security::skeleton(canonical).collect();
    // Each round can only map characters closer to the prototypes; two are the most any
    // character needs, the bound is a guard against a cycle in a future table.
    for _ in 0..4 {
        let capitals: String = skeleton.chars().map(capital_of_small_capital).collect();
        let again: String = unicode_security::skeleton(&fold(&capitals)).collect();
        if again == skeleton {
            break;
        }
        skeleton = again;
    }
    skeleton
}

/// NFKC under full case folding, as Unicode's compatibility caseless matching defines it
/// (`NFKD(toCasefold(NFKD(toCasefold(NFD(X)))))`, section 3.13), composed again (NFKC) so the
/// stored form is short. Folding twice is what makes the result stable: folding can produce
/// characters that decompose, and decomposing can produce characters that fold.
fn fold(raw: &str) -> String {
    let once = caseless::default_case_fold_str(&raw.nfd().collect::<String>());
    caseless::default_case_fold_str(&once.nfkd().collect::<String>())
        .nfkc()
        .collect()
}

/// The small capitals of the Basic Multilingual Plane that are drawn as a capital letter, with
/// that capital (from the Unicode character names `LATIN|GREEK|CYRILLIC LETTER SMALL CAPITAL
/// X`; the turned, reversed and inverted ones, which look like no capital, are left out).
/// Sorted, for the binary search. Modifier forms (`ᶦ`, `ᶫ`) need no entry: NFKC makes them
/// these letters first.
const SMALL_CAPITALS: &[(char, char)] = &[
    ('\u{0262}', 'G'),
    ('\u{026A}', 'I'),
    ('\u{0274}', 'N'),
    ('\u{0276}', '\u{0152}'), // Œ
    ('\u{0280}', 'R'),
    ('\u{028F}', 'Y'),
    ('\u{0299}', 'B'),
    ('\u{029C}', 'H'),
    ('\u{029F}', 'L'),
    ('\u{1D00}', 'A'),
    ('\u{1D01}', '\u{00C6}'), // Æ
    ('\u{1D03}', '\u{0243}'), // Ƀ
    ('\u{1D04}', 'C'),
    ('\u{1D05}', 'D'),
    ('\u{1D06}', '\u{00D0}'), // Ð
    ('\u{1D07}', 'E'),
    ('\u{1D0A}', 'J'),
    ('\u{1D0B}', 'K'),
    ('\u{1D0C}', '\u{0141}'), // Ł
    ('\u{1D0D}', 'M'),
    ('\u{1D0F}', 'O'),
    ('\u{1D18}', 'P'),
    ('\u{1D1B}', 'T'),
    ('\u{1D1C}', 'U'),
    ('\u{1D20}', 'V'),
    ('\u{1D21}', 'W'),
    ('\u{1D22}', 'Z'),
    ('\u{1D23}', '\u{01B7}'), // Ʒ
    ('\u{1D26}', '\u{0393}'), // Γ
    ('\u{1D27}', '\u{039B}'), // Λ
    ('\u{1D28}', '\u{03A0}'), // Π
    ('\u{1D29}', '\u{03A1}'), // Ρ
    ('\u{1D2A}', '\u{03A8}'), // Ψ
    ('\u{1D2B}', '\u{041B}'), // Л
    ('\u{1D7B}', '\u{0197}'), // Ɨ
    ('\u{1D7E}', '\u{0244}'), // Ʉ
    ('\u{A730}', 'F'),
    ('\u{A731}', 'S'),
    ('\u{A7AF}', 'Q'),
    ('\u{AB65}', '\u{03A9}'), // Ω
];

/// The capital a small capital is drawn as; any other character as it is.
fn capital_of_small_capital(c: char) -> char {
    SMALL_CAPITALS
        .binary_search_by_key(&c, |&(small, _)| small)
        .map_or(c, |i| SMALL_CAPITALS[i].1)
}

/// Letters and numbers of any script (Unicode general categories L and N) in the Basic
/// Multilingual Plane, and four punctuation marks. Letters beyond the BMP (historic scripts,
/// rare CJK, mathematical look-alikes) are left out so that [`username_pattern`] can be written
/// in a syntax every client's regex engine shares.
fn is_allowed(c: char) -> bool {
    let letter_or_number = matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number
    );
    (letter_or_number && u32::from(c) <= 0xFFFF) || matches!(c, '.' | '_' | '-' | '@')
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
        assert_eq!(fullwidth.as_str(), "ａｌｉｃｅ");
        assert_eq!(Username::parse("Ⅻ").unwrap().canonical(), "xii");
    }

    #[test]
    fn full_case_folding_makes_one_account_of_what_lower_casing_kept_apart() {
        let sharp = Username::parse("straße").unwrap();
        assert_eq!(sharp.canonical(), "strasse");
        assert_eq!(Username::parse("STRASSE").unwrap().canonical(), "strasse");
        // Final sigma, and the Kelvin sign NFKC makes a K.
        assert_eq!(
            Username::parse("ΟΔΟΣ").unwrap().canonical(),
            Username::parse("οδος").unwrap().canonical()
        );
        assert_eq!(
            Username::parse("\u{212A}elvin").unwrap().canonical(),
            "kelvin"
        );
        // The rule of earlier releases, kept to find their streams, did not.
        assert_eq!(sharp.legacy_canonical(), "straße");
        assert_eq!(
            Username::parse("Alice").unwrap().legacy_canonical(),
            "alice"
        );
    }

    #[test]
    fn confusable_names_share_a_skeleton_and_different_names_do_not() {
        let skeleton = |raw: &str| Username::parse(raw).unwrap().skeleton();
        assert_eq!(skeleton("\u{430}dmin"), skeleton("admin"), "Cyrillic а");
        assert_eq!(skeleton("ADMIN"), skeleton("admin"));
        assert_eq!(skeleton("paypa1"), skeleton("paypal"));
        assert_eq!(skeleton("\u{3bf}scar"), skeleton("oscar"), "Greek ο");
        // Small capitals, which the confusables table maps to capitals.
        assert_eq!(
            skeleton("\u{1d00}dmin"),
            skeleton("admin"),
            "small capital A"
        );
        assert_eq!(skeleton("p\u{1d00}ypal"), skeleton("paypal"));
        assert_eq!(
            skeleton("paypa\u{29f}"),
            skeleton("paypal"),
            "small capital L"
        );
        assert_eq!(skeleton("\u{280}oot"), skeleton("root"), "small capital R");
        assert_ne!(skeleton("admin"), skeleton("admins"));
        assert_ne!(skeleton("alice"), skeleton("bob"));
    }

    #[test]
    fn the_small_capitals_table_is_sorted_and_maps_to_capitals() {
        assert!(SMALL_CAPITALS.windows(2).all(|w| w[0].0 < w[1].0));
        for &(small, capital) in SMALL_CAPITALS {
            assert!(capital.is_uppercase(), "{small} -> {capital}");
            assert!(is_allowed(small), "{small}");
        }
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
    fn the_rules_apply_to_the_name_as_sent() {
        // Symbols whose compatibility form is made of letters are still symbols.
        assert_eq!(
            Username::parse("™"),
            Err(UsernameError::InvalidCharacter('™'))
        );
        // A letter whose compatibility form is not all letters is still a letter; the stored
        // display form parses again to the same account.
        let name = Username::parse("Ŀa").unwrap();
        assert_eq!(name.canonical(), "l·a");
        assert_eq!(Username::parse(name.as_str()).unwrap(), name);
    }

    #[test]
    fn letters_beyond_the_basic_multilingual_plane_are_refused() {
        assert_eq!(
            Username::parse("𝐀lice"),
            Err(UsernameError::InvalidCharacter('𝐀'))
        );
        assert!(Username::parse("Zoë-日本-Ωμέγα-١٢٣").is_ok());
    }

    #[test]
    fn the_pattern_is_one_character_class_of_ranges() {
        let pattern = username_pattern();
        assert!(
            pattern.starts_with("^[") && pattern.ends_with("]+$"),
            "{pattern}"
        );
        // `@` (U+0040) runs into `A-Z`: the range is written `\u0040-Z`.
        assert!(
            pattern.contains("0-9") && pattern.contains("\\u0040-Z") && pattern.contains("a-z")
        );
        assert!(!pattern.contains("\\u0020"), "no space");
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
                    // Replaying the log parses stored display forms again: they must come back
                    // as the same account.
                    let again = Username::parse(name.as_str()).unwrap();
                    prop_assert_eq!(&again, &name);
                    // Identity is stable: the canonical form is its own canonical form.
                    prop_assert_eq!(fold(name.canonical()), name.canonical());
                    // A name and the case fold of its skeleton look alike, so they must
                    // collide (where the fold is a name at all: skeletons may hold
                    // characters outside the alphabet).
                    if let Ok(folded) = Username::parse(&fold(&name.skeleton())) {
                        prop_assert_eq!(folded.skeleton(), name.skeleton());
                    }
                }
            }

            #[test]
            fn any_bytes_as_lossy_text_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = Username::parse(&String::from_utf8_lossy(&bytes));
            }
        }
    }
}
