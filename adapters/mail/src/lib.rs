//! authlog's mail transport: the application's [`Mailer`] port over SMTP, with lettre.
//!
//! - [`SmtpMailer`]: sends each message through the server `--smtp-url` names:
//!   `smtp://host:port` (plain, for a relay on the same host or network),
//!   `smtp://host:port?tls=required` (STARTTLS), `smtps://host:port` (implicit TLS), with
//!   `user:password@` for servers that ask for a login. TLS is rustls with the Mozilla roots.

use async_trait::async_trait;
use authlog_application::ports::{Mail, MailError, Mailer};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Why the mail settings are not usable.
#[derive(Debug, thiserror::Error)]
pub enum MailSettingsError {
    #[error("invalid --smtp-url: {0} (expected smtp://host:port, smtp://host:port?tls=required or smtps://host:port)")]
    Url(String),
    #[error("invalid --mail-from {0:?}: expected an address, optionally with a name (authlog <noreply@example.com>)")]
    From(String),
}

/// Sends mail through one SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for the server `url` names, sending from `from`.
    ///
    /// # Errors
    /// [`MailSettingsError`] for a URL or sender that does not parse. (Whether the server
    /// answers is found out by the first mail: the outbox retries until it does.)
    pub fn new(url: &str, from: &str) -> Result<Self, MailSettingsError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailSettingsError::Url(e.to_string()))?
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|_| MailSettingsError::From(from.to_owned()))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let to = mail
            .to
            .as_str()
            .parse::<Mailbox>()
            .map_err(|e| MailError::Refused(format!("the address does not parse: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| MailError::Refused(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // A permanent SMTP answer (5xx) will not change; anything else (no connection, a
            // 4xx, a timeout) may.
            Err(e) if e.is_permanent() => Err(MailError::Refused(e.to_string())),
            Err(e) => Err(MailError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_do_not_parse_are_refused_with_what_was_expected() {
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "authlog <noreply@example.com>").is_ok());
        assert!(SmtpMailer::new("smtps://mail.example.com", "noreply@example.com").is_ok());
        let url = SmtpMailer::new("http://example.com", "noreply@example.com").err();
        assert!(url.is_some_and(|e| e.to_string().contains("smtp://host:port")));
        let from = SmtpMailer::new("smtp://127.0.0.1:2525", "not an address").err();
        assert!(from.is_some_and(|e| e.to_string().contains("--mail-from")));
    }

    #[tokio::test]
    async fn a_server_that_is_not_there_is_a_failure_to_retry() {
        // A port nothing listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let mailer = SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), "a@example.com").unwrap();
        let mail = Mail {
            to: authlog_domain::Email::parse("b@example.com").unwrap(),
            subject: "s".into(),
            body: "b".into(),
        };
        assert!(matches!(
            mailer.send(mail).await,
            Err(MailError::Unavailable(_))
        ));
    }
}
