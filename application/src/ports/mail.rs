//! Mail: a message to one address, the transport that sends it (SMTP in production), and the
//! source of the one-time codes mailed to users.

use async_trait::async_trait;
use authlog_domain::Email;

/// One message.
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    /// Plain text.
    pub body: String,
}

impl std::fmt::Debug for Mail {
    // The body holds a code: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a message was not handed to the mail server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// The server could not be reached, or answered with a temporary failure: try again later.
    #[error("the mail server is unavailable: {0}")]
    Unavailable(String),
    /// The server refused the message for good (a bad address, say): trying again will not help.
    #[error("the mail server refused the message: {0}")]
    Refused(String),
}

/// Sends mail.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Hands `mail` to the mail server; answered once the server accepted it.
    ///
    /// # Errors
    /// [`MailError::Unavailable`] to retry later, [`MailError::Refused`] not to.
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}

/// Draws the one-time codes mailed to users, from a cryptographic source.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait CodeGenerator: Send + Sync {
    /// A fresh code of [`CODE_DIGITS`] decimal digits.
    fn mail_code(&self) -> String;
}

/// How many digits a mailed code has: typed by hand, and with five tries a guess succeeds one
/// time in 200,000.
pub const CODE_DIGITS: usize = 6;
