//! Request fields and parameters whose OpenAPI schema states the server's rules.
//!
//! The domain checks usernames and passwords with messages of its own (`username must be at most
//! 64 characters`), so [`Text`] fields are not validated by poem-openapi: they only carry the
//! rules into the published schema (lengths, pattern), where generated clients and schemathesis
//! read them. The constants come from the domain, so the schema and the checks cannot drift;
//! a test walks every character to prove the pattern and the parser agree. [`EventTypes`],
//! [`Position`] and [`Limit`] are audit query parameters whose schema states their exact range.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use authlog_application::audit::MAX_LIMIT;
use authlog_domain::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
use authlog_domain::username::{username_pattern, MAX_USERNAME_CHARS};
use authlog_domain::{Event, EventType};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;

/// What a [`Text`] field promises in the schema.
pub trait TextRule: Send + Sync + 'static {
    /// The schema of the field: a string with constraints.
    fn schema() -> MetaSchema;
}

/// A JSON string whose schema is `R`'s. It accepts only a JSON string (no numbers or booleans
/// turned into text, as poem-openapi's `String` does): the schema says `type: string`.
pub struct Text<R>(String, PhantomData<R>);

impl<R> Text<R> {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into(), PhantomData)
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<R: TextRule> Type for Text<R> {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(R::schema()))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<R: TextRule> ParseFromJSON for Text<R> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self::new(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<R: TextRule> ParseFromParameter for Text<R> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self::new(value))
    }
}

impl<R: TextRule> ToJSON for Text<R> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// A username as [`authlog_domain::Username::parse`] accepts it.
pub struct UsernameRule;

impl TextRule for UsernameRule {
    fn schema() -> MetaSchema {
        MetaSchema {
            min_length: Some(1),
            max_length: Some(MAX_USERNAME_CHARS),
            pattern: Some(username_pattern()),
            ..MetaSchema::new("string")
        }
    }
}

/// A password as [`authlog_domain::Password::parse`] accepts it: at least 8 characters, as
/// `minLength` says; at most 1024 bytes of UTF-8, which `maxLength: 1024` states exactly for
/// ASCII (JSON Schema counts characters and has no way to count bytes).
pub struct PasswordRule;

impl TextRule for PasswordRule {
    fn schema() -> MetaSchema {
        MetaSchema {
            format: Some("password"),
            min_length: Some(MIN_PASSWORD_CHARS),
            max_length: Some(MAX_PASSWORD_BYTES),
            ..MetaSchema::new("string")
        }
    }
}

/// A password offered to be checked (at login, and the current one at a change), as
/// [`authlog_domain::Password::offered`] accepts it: not empty, at most 1024 bytes, and no
/// minimum: raising the minimum never locks out an account whose password is shorter.
pub struct SecretRule;

impl TextRule for SecretRule {
    fn schema() -> MetaSchema {
        MetaSchema {
            format: Some("password"),
            min_length: Some(1),
            max_length: Some(MAX_PASSWORD_BYTES),
            ..MetaSchema::new("string")
        }
    }
}

/// A username prefix to search by: what [`UsernameRule`] allows, or nothing (no filter).
pub struct PrefixRule;

impl TextRule for PrefixRule {
    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(MAX_USERNAME_CHARS),
            pattern: Some(username_pattern().replace("]+$", "]*$")),
            ..MetaSchema::new("string")
        }
    }
}

/// A role name as [`authlog_domain::Role::parse`] accepts it.
pub struct RoleRule;

impl TextRule for RoleRule {
    fn schema() -> MetaSchema {
        MetaSchema {
            min_length: Some(1),
            max_length: Some(authlog_domain::role::MAX_ROLE_LEN),
            pattern: Some("^[a-z0-9_:-]+$".into()),
            example: Some(Value::from("auditor")),
            ..MetaSchema::new("string")
        }
    }
}

/// An admin's note on an act (why an account was disabled): free text up to
/// [`MAX_REASON_CHARS`] characters.
pub struct ReasonRule;

/// The longest note an admin may leave: enough for a sentence or a ticket link, not a document.
pub const MAX_REASON_CHARS: usize = 500;

impl TextRule for ReasonRule {
    fn schema() -> MetaSchema {
        MetaSchema {
            max_length: Some(MAX_REASON_CHARS),
            ..MetaSchema::new("string")
        }
    }
}

/// An email address as [`authlog_domain::Email::parse`] accepts it (the schema says
/// `format: email` and the length; the server's own parser says what is wrong).
pub struct EmailRule;

impl TextRule for EmailRule {
    fn schema() -> MetaSchema {
        MetaSchema {
            format: Some("email"),
            max_length: Some(authlog_domain::email::MAX_EMAIL_CHARS),
            ..MetaSchema::new("string")
        }
    }
}

/// A mailed code: the digits, as typed.
pub struct CodeRule;

impl TextRule for CodeRule {
    fn schema() -> MetaSchema {
        MetaSchema {
            min_length: Some(1),
            max_length: Some(64),
            example: Some(Value::from("123456")),
            ..MetaSchema::new("string")
        }
    }
}

pub type UsernameText = Text<UsernameRule>;
pub type PrefixText = Text<PrefixRule>;
pub type RoleText = Text<RoleRule>;
pub type EmailText = Text<EmailRule>;
pub type CodeText = Text<CodeRule>;
pub type ReasonText = Text<ReasonRule>;
pub type PasswordText = Text<PasswordRule>;
pub type SecretText = Text<SecretRule>;

/// A query parameter whose schema states exactly what [`ParamRule::parse`] accepts, and whose
/// parse errors are the rule's own messages.
pub trait ParamRule: Send + Sync + 'static {
    type Value: Send + Sync;
    /// The schema's name for the parameter's type.
    const NAME: &'static str;
    fn schema() -> MetaSchema;
    /// # Errors
    /// What is wrong with `text`, for the 400 answer.
    fn parse(text: &str) -> Result<Self::Value, String>;
}

/// A query parameter parsed by the rule `R`.
pub struct Param<R: ParamRule>(pub R::Value);

impl<R: ParamRule> fmt::Debug for Param<R>
where
    R::Value: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple(R::NAME).field(&self.0).finish()
    }
}

impl<R: ParamRule> Type for Param<R> {
    const IS_REQUIRED: bool = true;
    type RawValueType = R::Value;
    type RawElementValueType = R::Value;

    fn name() -> Cow<'static, str> {
        R::NAME.into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(R::schema()))
    }

    fn as_raw_value(&self) -> Option<&R::Value> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a R::Value> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<R: ParamRule> ParseFromParameter for Param<R> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        R::parse(value).map(Self).map_err(ParseError::custom)
    }
}

/// One or more event types of [`Event::TYPES`], comma-separated (`LoginFailed,Revoked`), as the
/// CLI's `--type` takes them; the parameter may also be repeated. The schema's pattern lists the
/// types, so generated clients and fuzzers know them, and anything else gets a message naming
/// the unknown type.
pub struct EventTypesRule;

impl ParamRule for EventTypesRule {
    type Value = String;
    const NAME: &'static str = "EventTypes";

    fn schema() -> MetaSchema {
        let one = format!("({})", Event::TYPES.join("|"));
        MetaSchema {
            pattern: Some(format!("^{one}(,{one})*$")),
            example: Some(Value::from("LoginFailed,Revoked")),
            ..MetaSchema::new("string")
        }
    }

    fn parse(text: &str) -> Result<String, String> {
        match text.split(',').find(|t| !Event::TYPES.contains(t)) {
            Some(unknown) => Err(format!(
                "unknown event type {unknown:?}; expected one or more of {}, comma-separated",
                Event::TYPES.join(", ")
            )),
            None => Ok(text.to_owned()),
        }
    }
}

/// A log position to page after: 0 to `i64::MAX`, the range of the stores' BIGINT column. The
/// schema says `minimum: 0` and an exclusive `maximum` of 2^63, which a JSON number can state
/// exactly (`i64::MAX` itself would round up to 2^63 as a double).
pub struct PositionRule;

impl ParamRule for PositionRule {
    type Value = u64;
    const NAME: &'static str = "Position";

    fn schema() -> MetaSchema {
        MetaSchema {
            format: Some("int64"),
            minimum: Some(0.0),
            maximum: Some(2f64.powi(63)),
            exclusive_maximum: Some(true),
            ..MetaSchema::new("integer")
        }
    }

    fn parse(text: &str) -> Result<u64, String> {
        text.parse::<i64>()
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| format!("a position is 0 to {}", i64::MAX))
    }
}

/// A page size: 1 to [`MAX_LIMIT`], stated in the schema as `minimum` and `maximum`.
pub struct LimitRule;

impl ParamRule for LimitRule {
    type Value = u32;
    const NAME: &'static str = "Limit";

    fn schema() -> MetaSchema {
        MetaSchema {
            format: Some("int32"),
            minimum: Some(1.0),
            maximum: Some(f64::from(MAX_LIMIT)),
            ..MetaSchema::new("integer")
        }
    }

    fn parse(text: &str) -> Result<u32, String> {
        text.parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| format!("limit must be between 1 and {MAX_LIMIT}"))
    }
}

pub type EventTypes = Param<EventTypesRule>;
pub type Position = Param<PositionRule>;
pub type Limit = Param<LimitRule>;

/// An event's type as audit shows it. Its schema lists every type the registry declares
/// ([`EventType::ALL`]) with the stream it is appended to, so the OpenAPI document follows the
/// registry; a type a newer release wrote is shown as stored, so the schema is a string, not an
/// enum.
pub struct EventTypeName(pub String);

impl EventTypeName {
    fn description() -> &'static str {
        static DESCRIPTION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        DESCRIPTION.get_or_init(|| {
            let known: Vec<String> = EventType::ALL
                .iter()
                .map(|t| format!("`{}` (stream `{}`)", t.as_str(), t.stream().pattern()))
                .collect();
            format!(
                "The event type: {}. A type written by a newer release during a rolling upgrade \
                 is shown as it was stored.",
                known.join(", ")
            )
        })
    }
}

impl Type for EventTypeName {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "EventTypeName".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some(Self::description()),
            example: Some(Value::from("LoginFailed")),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ToJSON for EventTypeName {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

impl ParseFromJSON for EventTypeName {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(name)) => Ok(Self(name)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use authlog_domain::Username;

    use super::*;

    #[test]
    fn the_username_pattern_and_the_parser_agree_on_every_character() {
        let pattern = regex::Regex::new(&username_pattern()).unwrap();
        let disagreements: Vec<char> = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .filter(|c| {
                let text = c.to_string();
                pattern.is_match(&text) != Username::parse(&text).is_ok()
            })
            .collect();
        assert!(disagreements.is_empty(), "{disagreements:?}");
    }

    #[test]
    fn event_types_and_limits_parse_with_the_audit_messages() {
        assert_eq!(
            EventTypes::parse_from_parameter("Revoked,LoginFailed")
                .unwrap()
                .0,
            "Revoked,LoginFailed"
        );
        let unknown = EventTypes::parse_from_parameter("Revoked,Nope").unwrap_err();
        assert!(
            unknown.message().contains("unknown event type \"Nope\""),
            "{}",
            unknown.message()
        );
        assert_eq!(
            Position::parse_from_parameter("9223372036854775807")
                .unwrap()
                .0,
            9_223_372_036_854_775_807
        );
        for bad in ["-1", "9223372036854775808", "1e3"] {
            assert!(Position::parse_from_parameter(bad).is_err(), "{bad}");
        }
        assert_eq!(Limit::parse_from_parameter("1000").unwrap().0, 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            let error = Limit::parse_from_parameter(bad).unwrap_err();
            assert!(
                error
                    .message()
                    .ends_with("limit must be between 1 and 1000"),
                "{bad}: {}",
                error.message()
            );
        }
    }

    #[test]
    fn only_json_strings_are_text() {
        assert!(UsernameText::parse_from_json(Some(Value::String("a".into()))).is_ok());
        for value in [Value::from(1), Value::Bool(true), Value::Null] {
            assert!(UsernameText::parse_from_json(Some(value)).is_err());
        }
        assert!(UsernameText::parse_from_json(None).is_err());
    }
}
