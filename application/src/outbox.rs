//! The mail outbox: a subscriber of the log that mails each code `MailCodeIssued` records.
//!
//! It runs in one instance at a time from a checkpoint in the database
//! ([`Scope::Cluster`]), so a mail is sent at least once whatever crashes: an instance that dies
//! between the event and the delivery leaves the checkpoint before the event, and the next
//! holder sends it. It reads the code from the user's secrets (sealed; the event holds only
//! its id), and passes over what no one should receive any more: a code expired, replaced by a
//! newer one, already used, or whose user was erased. A batch that fails part-way is handed over
//! again; the codes this process already sent are not sent twice.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use authlog_domain::event::MailCodeIssued;
use authlog_domain::{CodeId, Event, EventType, MailPurpose, Personal};

use crate::email::{code_in, secret_id};
use crate::ports::{Clock, Mail, MailError, Mailer, RecordedEvent, SecretKind, UserSecrets};
use crate::subscribers::{HandleError, Scope, Subscriber};

/// Codes remembered as sent by this process, at most (then forgotten, oldest batch and all):
/// only a batch handed over again needs them.
const REMEMBERED: usize = 10_000;

pub struct MailOutbox {
    mailer: Arc<dyn Mailer>,
    secrets: Arc<dyn UserSecrets>,
    clock: Arc<dyn Clock>,
    /// What the mails say they come from, for their text (`authlog`, or the issuer).
    service: String,
    sent: Mutex<HashSet<CodeId>>,
}

impl MailOutbox {
    pub const NAME: &'static str = "mail-outbox";

    pub fn new(
        mailer: Arc<dyn Mailer>,
        secrets: Arc<dyn UserSecrets>,
        clock: Arc<dyn Clock>,
        service: String,
    ) -> Self {
        Self {
            mailer,
            secrets,
            clock,
            service,
            sent: Mutex::new(HashSet::new()),
        }
    }

    fn already_sent(&self, code: CodeId) -> bool {
        self.sent.lock().is_ok_and(|sent| sent.contains(&code))
    }

    fn remember(&self, code: CodeId) {
        if let Ok(mut sent) = self.sent.lock() {
            if sent.len() >= REMEMBERED {
                sent.clear();
            }
            sent.insert(code);
        }
    }

    /// The mail for `issued`, or `None` when it should not go out any more.
    async fn mail_for(&self, issued: &MailCodeIssued) -> Result<Option<Mail>, HandleError> {
        let Personal::Known(to) = &issued.email else {
            return Ok(None);
        };
        if self.clock.now() >= issued.expires_at {
            return Ok(None);
        }
        let stored = self
            .secrets
            .secrets(issued.user_id, SecretKind::MailCode)
            .await?;
        let Some(code) = stored
            .iter()
            .filter(|s| s.id == secret_id(issued.purpose))
            .find_map(|s| code_in(&s.secret, issued.code_id))
        else {
            return Ok(None);
        };
        let code = String::from_utf8_lossy(code);
        let expires = issued
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let (subject, what) = match issued.purpose {
            MailPurpose::VerifyEmail => (
                format!("Verify your email address for {}", self.service),
                "verify this address",
            ),
            MailPurpose::ResetPassword => (
                format!("Reset your {} password", self.service),
                "set a new password",
            ),
        };
        let body = format!(
            "Your code to {what} is:\n\n    {code}\n\nIt works once, until {expires} (15 minutes). \
             If you did not ask for it, ignore this mail: nothing changes without the code.\n"
        );
        Ok(Some(Mail {
            to: to.clone(),
            subject,
            body,
        }))
    }
}

#[async_trait]
impl Subscriber for MailOutbox {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn event_types(&self) -> &'static [EventType] {
        &[EventType::MailCodeIssued]
    }

    fn scope(&self) -> Scope {
        Scope::Cluster
    }

    async fn handle(&self, events: &[RecordedEvent]) -> Result<(), HandleError> {
        for recorded in events {
            let Event::MailCodeIssued(issued) = &recorded.event else {
                continue;
            };
            if self.already_sent(issued.code_id) {
                continue;
            }
            let Some(mail) = self.mail_for(issued).await? else {
                metrics::counter!("authlog_mail_total", "outcome" => "skipped").increment(1);
                continue;
            };
            match self.mailer.send(mail).await {
                Ok(()) => {
                    metrics::counter!("authlog_mail_total", "outcome" => "sent").increment(1);
                    self.remember(issued.code_id);
                }
                // For good: trying again will not help, and the rest must go out.
                Err(MailError::Refused(why)) => {
                    metrics::counter!("authlog_mail_total", "outcome" => "refused").increment(1);
                    tracing::warn!(position = recorded.position, %why, "the mail server refused a code's mail");
                }
                Err(e @ MailError::Unavailable(_)) => {
                    return Err(HandleError::Failed(e.to_string()));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockMailer, MockUserSecrets, UserSecret};
    use crate::testing::{alice_id, clock, uuid, NOW};
    use authlog_domain::{Email, StreamId};

    fn issued(code: u128, purpose: MailPurpose, expires_in_minutes: i64) -> RecordedEvent {
        RecordedEvent {
            position: 7,
            stream_id: StreamId::user(alice_id()),
            stream_version: 2,
            event: Event::MailCodeIssued(MailCodeIssued {
                user_id: alice_id(),
                code_id: CodeId::from_uuid(uuid(code)),
                purpose,
                email: Personal::Known(Email::parse("alice@example.com").unwrap()),
                expires_at: NOW + time::Duration::minutes(expires_in_minutes),
            }),
            subject: Some(alice_id().to_string()),
            metadata: crate::ports::Metadata::default(),
            recorded_at: NOW,
        }
    }

    /// Alice's stored code: `123456` under code `code` for `purpose`.
    fn stored(code: u128, purpose: MailPurpose) -> Arc<MockUserSecrets> {
        let mut secrets = MockUserSecrets::new();
        secrets.expect_secrets().returning(move |user, _| {
            Ok(vec![UserSecret {
                user_id: user,
                kind: SecretKind::MailCode,
                id: secret_id(purpose),
                secret: format!("{}:123456", CodeId::from_uuid(uuid(code))).into_bytes(),
            }])
        });
        Arc::new(secrets)
    }

    #[tokio::test]
    async fn an_issued_code_is_mailed_once_to_its_address() {
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .withf(|mail| {
                mail.to.as_str() == "alice@example.com"
                    && mail.body.contains("123456")
                    && mail.subject.contains("Reset")
            })
            .times(1)
            .returning(|_| Ok(()));
        let outbox = MailOutbox::new(
            Arc::new(mailer),
            stored(1, MailPurpose::ResetPassword),
            clock(),
            "authlog".into(),
        );
        let batch = [issued(1, MailPurpose::ResetPassword, 15)];
        outbox.handle(&batch).await.unwrap();
        // Handed over again (a later failure in the batch): not sent twice.
        outbox.handle(&batch).await.unwrap();
    }

    #[tokio::test]
    async fn an_expired_replaced_or_unreadable_code_is_passed_over() {
        let mut mailer = MockMailer::new();
        mailer.expect_send().never();
        let outbox = MailOutbox::new(
            Arc::new(mailer),
            stored(2, MailPurpose::VerifyEmail),
            clock(),
            "authlog".into(),
        );
        let mut erased = issued(2, MailPurpose::VerifyEmail, 15);
        if let Event::MailCodeIssued(e) = &mut erased.event {
            e.email = Personal::Erased;
        }
        outbox
            .handle(&[
                issued(2, MailPurpose::VerifyEmail, 0),
                issued(1, MailPurpose::VerifyEmail, 15),
                erased,
            ])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_mail_server_that_is_down_fails_the_batch_to_be_handed_over_again() {
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .returning(|_| Err(MailError::Unavailable("connection refused".into())));
        let outbox = MailOutbox::new(
            Arc::new(mailer),
            stored(1, MailPurpose::VerifyEmail),
            clock(),
            "authlog".into(),
        );
        let failed = outbox
            .handle(&[issued(1, MailPurpose::VerifyEmail, 15)])
            .await;
        assert!(matches!(failed, Err(HandleError::Failed(_))));
    }
}
