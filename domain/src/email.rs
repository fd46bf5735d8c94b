//! Email: the address a user may give (a value type that parses), and the one-time codes mailed
//! to it (to verify the address, to reset a forgotten password).
//!
//! A code is single-use, lives [`CODE_LIFETIME`], and dies after [`MAX_TRIES`] tries. The
//! user's stream decides all three: `MailCodeIssued` opens a code (replacing the previous one of
//! its purpose), each try is recorded (`MailCodeTried`) *before* the code is compared, as a
//! password check is reserved before it is hashed, so parallel guesses cannot compare more than
//! [`MAX_TRIES`] times; `MailCodeUsed` closes it. The code itself is never in an event: it is a
//! secret of the user's own, stored sealed beside the event that issues it.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::ids::CodeId;

/// How long a mailed code can be used.
pub const CODE_LIFETIME: Duration = Duration::minutes(15);
/// How many tries a code allows, right or wrong.
pub const MAX_TRIES: u32 = 5;
/// The shortest time between two reset codes for one account: `POST /password/forgot` cannot
/// be used to flood a mailbox.
pub const RESET_INTERVAL: Duration = Duration::minutes(1);
/// The longest address: RFC 5321's path limit, less the angle brackets.
pub const MAX_EMAIL_CHARS: usize = 254;

/// An email address as authlog accepts it: one `@`, a local part of 1 to 64 characters and a
/// domain of dot-separated labels, no spaces or control characters, at most
/// [`MAX_EMAIL_CHARS`]. Deliverability is the mail server's to say; this only refuses what
/// cannot be an address.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Why a text is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email must be at most {MAX_EMAIL_CHARS} characters")]
    TooLong,
    #[error("email must look like name@example.com")]
    Malformed,
}

impl Email {
    /// # Errors
    /// [`EmailError`] says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let text = raw.trim();
        if text.chars().count() > MAX_EMAIL_CHARS {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = text.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        let local_ok = !local.is_empty()
            && local.chars().count() <= 64
            && !local.contains('@')
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"()<>[]\\,;:\"".contains(c));
        let domain_ok = domain.contains('.') && domain.split('.').all(label_ok);
        if local_ok && domain_ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(EmailError::Malformed)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two spellings of one address share, for finding an account by its address:
    /// case folded (mail systems treat the local part's case alike in practice).
    pub fn canonical(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    // Personal data: not spelled out in logs by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(..)")
    }
}

/// What a mailed code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailPurpose {
    /// Proves the user reads the address they gave.
    VerifyEmail,
    /// Lets the user set a new password without the old one.
    ResetPassword,
}

impl MailPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A code as the user's stream holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailCode {
    pub id: CodeId,
    pub purpose: MailPurpose,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub tries: u32,
    pub used: bool,
}

/// Why a code cannot be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Invalid or expired code")]
pub struct CodeRefused;

impl MailCode {
    /// Whether one more try may be made at `now`: the code is unused, unexpired, and has tries
    /// left.
    ///
    /// # Errors
    /// [`CodeRefused`] otherwise (one answer for all: the caller learns nothing more).
    pub fn may_try(&self, now: OffsetDateTime) -> Result<(), CodeRefused> {
        if self.used || now >= self.expires_at || self.tries >= MAX_TRIES {
            Err(CodeRefused)
        } else {
            Ok(())
        }
    }
}

/// Compares a typed code with the issued one in constant time (no early exit on the first
/// differing character).
pub fn codes_match(typed: &str, issued: &[u8]) -> bool {
    let typed = typed.trim().as_bytes();
    if typed.len() != issued.len() {
        return false;
    }
    typed
        .iter()
        .zip(issued)
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    #[test]
    fn accepts_ordinary_addresses_and_refuses_what_cannot_be_one() {
        for ok in [
            "alice@example.com",
            "a.b+tag@mail.example.org",
            " Bob@Example.COM ",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Email::parse(" Bob@Example.COM ").unwrap().as_str(),
            "Bob@Example.COM"
        );
        assert_eq!(
            Email::parse("Bob@Example.COM").unwrap().canonical(),
            "bob@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "al ice@example.com",
            "alice@exa mple.com",
            "alice@-example.com",
            "alice@example..com",
            "a..b@example.com",
            "alice@exam\nple.com",
            "<alice@example.com>",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Malformed), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        assert_eq!(
            format!("{:?}", Email::parse("alice@example.com").unwrap()),
            "Email(..)"
        );
    }

    #[test]
    fn a_code_may_be_tried_while_unused_unexpired_and_under_its_tries() {
        let at = datetime!(2026-03-01 12:00 UTC);
        let mut code = MailCode {
            id: CodeId::from_uuid(Uuid::from_u128(1)),
            purpose: MailPurpose::VerifyEmail,
            issued_at: at,
            expires_at: at + CODE_LIFETIME,
            tries: 0,
            used: false,
        };
        assert_eq!(code.may_try(at), Ok(()));
        assert_eq!(code.may_try(at + CODE_LIFETIME), Err(CodeRefused));
        code.tries = MAX_TRIES - 1;
        assert_eq!(code.may_try(at), Ok(()));
        code.tries = MAX_TRIES;
        assert_eq!(code.may_try(at), Err(CodeRefused));
        code.tries = 0;
        code.used = true;
        assert_eq!(code.may_try(at), Err(CodeRefused));
        assert_eq!(CodeRefused.to_string(), "Invalid or expired code");
    }

    #[test]
    fn codes_match_exactly_with_surrounding_space_forgiven() {
        assert!(codes_match("123456", b"123456"));
        assert!(codes_match(" 123456\n", b"123456"));
        assert!(!codes_match("123457", b"123456"));
        assert!(!codes_match("12345", b"123456"));
        assert!(!codes_match("", b"123456"));
    }
}
