//! A user's email address and the codes mailed to it: setting and verifying the address, and
//! resetting a forgotten password (`PUT /me/email`, `POST /me/email/verify`,
//! `POST /password/forgot`, `POST /password/reset`).
//!
//! Issuing a code appends `MailCodeIssued` and, in the same transaction, stores the code as a
//! secret of the user's own ([`Beside::PutSecret`]: sealed under their data key, so never in
//! clear and gone with an erasure), one per purpose, replaced by the next. The mail itself is
//! the outbox's to send ([`crate::outbox::MailOutbox`], a subscriber of the log): a crash
//! between the event and the delivery loses nothing.
//!
//! Trying a code records the try first (`MailCodeTried`, at the stream's version, so parallel
//! guesses each spend one of the code's five), then compares it in constant time, then uses it
//! (`MailCodeUsed` with the effect, once: a second right try finds it used).

use std::sync::Arc;

use authlog_domain::email::{codes_match, CodeRefused};
use authlog_domain::user::{self, MailCommand, MailRefused};
use authlog_domain::{CodeId, Email, Event, MailPurpose, Password, UserId, Username};

use crate::admission::{Admission, Busy};
use crate::ports::{
    Appended, Beside, Clock, CodeGenerator, EventStore, HashError, IdGenerator, Metadata,
    PasswordHasher, ReadModels, SecretKind, StoreError, UserQuery, UserSecret, UserSecrets,
};
use crate::sessions::Sessions;
use crate::streams::{load_user_ref, settled, until_settled, LoadedUser, UserRef};

/// Why an email operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// The code is wrong, expired, used, out of tries, or not the latest (one answer for all).
    #[error(transparent)]
    InvalidCode(#[from] CodeRefused),
    #[error("no such user")]
    UnknownUser,
    #[error("account kept changing; try again")]
    Contended,
    /// The hashing queue is full (a reset hashes the new password).
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MailRefused> for EmailError {
    fn from(e: MailRefused) -> Self {
        match e {
            MailRefused::Code(refused) => Self::InvalidCode(refused),
            MailRefused::UnknownUser => Self::UnknownUser,
        }
    }
}

/// Whose password was forgotten, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forgotten {
    Username(Username),
    Email(Email),
}

pub struct Emails {
    store: Arc<dyn EventStore>,
    secrets: Arc<dyn UserSecrets>,
    read_models: Arc<dyn ReadModels>,
    sessions: Arc<Sessions>,
    hasher: Arc<dyn PasswordHasher>,
    admission: Arc<Admission>,
    codes: Arc<dyn CodeGenerator>,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
}

/// The secret stored for a code: its id and the code, so that a code replaced meanwhile is
/// told apart from the one an event names.
fn secret_of(code_id: CodeId, code: &str) -> Vec<u8> {
    format!("{code_id}:{code}").into_bytes()
}

/// The code a stored secret holds, if it is the secret of `code_id`.
pub fn code_in(secret: &[u8], code_id: CodeId) -> Option<&[u8]> {
    let text = std::str::from_utf8(secret).ok()?;
    let (id, code) = text.split_once(':')?;
    (id == code_id.to_string()).then_some(code.as_bytes())
}

/// The id under which a user's code of `purpose` is kept (one per purpose).
pub fn secret_id(purpose: MailPurpose) -> String {
    purpose.as_str().to_owned()
}

impl Emails {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn EventStore>,
        secrets: Arc<dyn UserSecrets>,
        read_models: Arc<dyn ReadModels>,
        sessions: Arc<Sessions>,
        hasher: Arc<dyn PasswordHasher>,
        admission: Arc<Admission>,
        codes: Arc<dyn CodeGenerator>,
        ids: Arc<dyn IdGenerator>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            secrets,
            read_models,
            sessions,
            hasher,
            admission,
            codes,
            ids,
            clock,
        }
    }

    /// A fresh code and its id, with the secret that stores it beside the events of `user`.
    pub fn draw(&self, user: UserId, purpose: MailPurpose) -> (CodeId, Beside) {
        let code_id = CodeId::from_uuid(self.ids.new_id());
        let code = self.codes.mail_code();
        let put = Beside::PutSecret(UserSecret {
            user_id: user,
            kind: SecretKind::MailCode,
            id: secret_id(purpose),
            secret: secret_of(code_id, &code),
        });
        (code_id, put)
    }

    /// Sets `user`'s address to `email` (unverified) and issues a code to verify it.
    ///
    /// # Errors
    /// [`EmailError::UnknownUser`] for an account that no longer exists; a store failure.
    pub async fn change(
        &self,
        user: UserId,
        email: Email,
        metadata: &Metadata,
    ) -> Result<(), EmailError> {
        let email = &email;
        until_settled(EmailError::Contended, move || async move {
            let loaded = load_user_ref(self.store.as_ref(), UserRef::Id(user)).await?;
            let (code_id, put) = self.draw(user, MailPurpose::VerifyEmail);
            let command = MailCommand::ChangeEmail {
                email: email.clone(),
                code_id,
                now: self.clock.now(),
            };
            let events = user::decide_mail(&loaded.state, command)?;
            if events.is_empty() {
                return Ok(Some(()));
            }
            Ok(self
                .append(&loaded, events, vec![put], metadata)
                .await?
                .map(drop))
        })
        .await?;
        Ok(())
    }

    /// Verifies `user`'s address with the code mailed to it.
    ///
    /// # Errors
    /// [`EmailError::InvalidCode`] for a code that is not the one (wrong, expired, used, out of
    /// tries); a store failure.
    pub async fn verify(
        &self,
        user: UserId,
        typed: &str,
        metadata: &Metadata,
    ) -> Result<(), EmailError> {
        let code_id = self
            .try_code(UserRef::Id(user), MailPurpose::VerifyEmail, typed, metadata)
            .await?;
        self.use_code(
            UserRef::Id(user),
            MailPurpose::VerifyEmail,
            metadata,
            || MailCommand::VerifyEmail { code_id },
        )
        .await?;
        Ok(())
    }

    /// Mails a reset code to the verified address of the account `whom` names, if there is
    /// one and no code went to it within the last minute. Answers nothing either way, so that
    /// the caller cannot tell (the HTTP handler runs it after it has answered).
    ///
    /// # Errors
    /// A store failure (for the server's log: the caller is not told).
    pub async fn forgot(&self, whom: &Forgotten, metadata: &Metadata) -> Result<(), EmailError> {
        let user_id = match whom {
            Forgotten::Username(name) => load_user_ref(self.store.as_ref(), UserRef::Name(name))
                .await?
                .account
                .map(|account| account.user_id),
            Forgotten::Email(email) => self
                .read_models
                .users(UserQuery {
                    email: Some(email.canonical()),
                    limit: 1,
                    ..UserQuery::default()
                })
                .await?
                .into_iter()
                .find(|u| u.email_verified)
                .map(|u| u.user_id),
        };
        let Some(user_id) = user_id else {
            return Ok(());
        };
        until_settled(EmailError::Contended, move || async move {
            let loaded = load_user_ref(self.store.as_ref(), UserRef::Id(user_id)).await?;
            let (code_id, put) = self.draw(user_id, MailPurpose::ResetPassword);
            let command = MailCommand::IssueResetCode {
                code_id,
                now: self.clock.now(),
            };
            let events = match user::decide_mail(&loaded.state, command) {
                Ok(events) => events,
                // Erased since it was found: nobody to mail.
                Err(_) => return Ok(Some(())),
            };
            if events.is_empty() {
                return Ok(Some(()));
            }
            Ok(self
                .append(&loaded, events, vec![put], metadata)
                .await?
                .map(drop))
        })
        .await
    }

    /// Sets `username`'s password to `new_password` with the reset code mailed to them, and
    /// ends every session of theirs. An unknown name answers as a wrong code does.
    ///
    /// # Errors
    /// [`EmailError::InvalidCode`]; [`EmailError::Busy`] when the hashing queue is full; a
    /// hasher or store failure.
    pub async fn reset(
        &self,
        username: &Username,
        typed: &str,
        new_password: Password,
        metadata: &Metadata,
    ) -> Result<usize, EmailError> {
        let whom = UserRef::Name(username);
        let code_id = match self
            .try_code(whom, MailPurpose::ResetPassword, typed, metadata)
            .await
        {
            Err(EmailError::UnknownUser) => return Err(CodeRefused.into()),
            tried => tried?,
        };
        let admitted = self.admission.admit(metadata.client_addr.as_deref())?;
        let password_hash = self.hasher.hash(new_password).await?;
        drop(admitted);
        let appended = self
            .use_code(whom, MailPurpose::ResetPassword, metadata, || {
                MailCommand::ResetPassword {
                    code_id,
                    password_hash: password_hash.clone(),
                }
            })
            .await?;
        // Every session's tokens refused here before the answer.
        Ok(self.sessions.honour(appended).await?)
    }

    /// Spends a try of `whom`'s latest code of `purpose`, then compares `typed` with it.
    /// Answers the code's id when it matches.
    async fn try_code(
        &self,
        whom: UserRef<'_>,
        purpose: MailPurpose,
        typed: &str,
        metadata: &Metadata,
    ) -> Result<CodeId, EmailError> {
        let tried = until_settled(EmailError::Contended, move || async move {
            let loaded = load_user_ref(self.store.as_ref(), whom).await?;
            if loaded.account.is_none() {
                return Err(EmailError::UnknownUser);
            }
            let command = MailCommand::TryCode {
                purpose,
                now: self.clock.now(),
            };
            let events = user::decide_mail(&loaded.state, command)?;
            let code_id = events.iter().find_map(|event| match event {
                Event::MailCodeTried(e) => Some((e.user_id, e.code_id)),
                _ => None,
            });
            Ok(self
                .append(&loaded, events, vec![], metadata)
                .await?
                .and(code_id))
        })
        .await;
        let (user_id, code_id) = tried?;
        let stored = self.secrets.secrets(user_id, SecretKind::MailCode).await?;
        let matches = stored
            .iter()
            .filter(|s| s.id == secret_id(purpose))
            .filter_map(|s| code_in(&s.secret, code_id))
            .any(|code| codes_match(typed, code));
        if matches {
            Ok(code_id)
        } else {
            Err(CodeRefused.into())
        }
    }

    /// Uses the code that `command` names, with its effect, and removes its secret: once (a
    /// second use finds it used).
    async fn use_code(
        &self,
        whom: UserRef<'_>,
        purpose: MailPurpose,
        metadata: &Metadata,
        command: impl Fn() -> MailCommand,
    ) -> Result<Appended, EmailError> {
        let command = &command;
        let appended = until_settled(EmailError::Contended, move || async move {
            let loaded = load_user_ref(self.store.as_ref(), whom).await?;
            let Some(account) = &loaded.account else {
                return Err(EmailError::UnknownUser);
            };
            let events = user::decide_mail(&loaded.state, command())?;
            let delete = Beside::DeleteSecret {
                user_id: account.user_id,
                kind: SecretKind::MailCode,
                id: secret_id(purpose),
            };
            self.append(&loaded, events, vec![delete], metadata).await
        })
        .await?;
        self.read_models.wait_for(appended.position).await?;
        Ok(appended)
    }

    /// Appends `events` (with `beside`) to `loaded`'s stream at the version it was read at:
    /// `Some` when it won, `None` when it lost a race (another round).
    async fn append(
        &self,
        loaded: &LoadedUser,
        events: Vec<Event>,
        beside: Vec<Beside>,
        metadata: &Metadata,
    ) -> Result<Option<Appended>, EmailError> {
        let write = loaded.write(events, metadata, self.clock.now())?;
        Ok(settled(self.store.append_with(vec![write], beside).await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockCodeGenerator;
    use crate::revocation_view::RevocationSet;
    use crate::revoke::RevokeSession;
    use crate::testing::{
        admission, alice, alice_id, alice_registered, clock, hasher, ids, InMemoryEventStore,
    };
    use authlog_domain::event::{EmailVerified, MailCodeTried, MailCodeUsed};
    use authlog_domain::user::UserState;
    use authlog_domain::StreamId;

    fn given_alice() -> Arc<InMemoryEventStore> {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        store
    }

    /// The use case on `store`, drawing the code `123456` every time.
    fn emails(store: &Arc<InMemoryEventStore>) -> Emails {
        let view = Arc::new(RevocationSet::new());
        let revoke = Arc::new(RevokeSession::new(store.clone(), view.clone(), clock()));
        let sessions = Arc::new(Sessions::new(
            store.clone(),
            store.clone(),
            revoke,
            view,
            clock(),
        ));
        let mut codes = MockCodeGenerator::new();
        codes.expect_mail_code().return_const("123456".to_owned());
        Emails::new(
            store.clone(),
            store.clone(),
            store.clone(),
            sessions,
            hasher(true),
            admission(),
            Arc::new(codes),
            ids(),
            clock(),
        )
    }

    fn address() -> Email {
        Email::parse("alice@example.com").unwrap()
    }

    async fn state(store: &InMemoryEventStore) -> UserState {
        crate::streams::load_user_by_id(store, alice_id())
            .await
            .unwrap()
            .state
    }

    #[tokio::test]
    async fn an_address_is_verified_by_its_code_once_and_the_code_leaves_the_secrets() {
        let store = given_alice();
        let emails = emails(&store);
        let meta = Metadata::default();
        emails.change(alice_id(), address(), &meta).await.unwrap();
        let stored = store
            .secrets(alice_id(), SecretKind::MailCode)
            .await
            .unwrap();
        assert_eq!(
            stored.len(),
            1,
            "the code, sealed by the store, beside its event"
        );
        assert_eq!(
            emails.verify(alice_id(), "654321", &meta).await,
            Err(EmailError::InvalidCode(CodeRefused))
        );
        let before = store.position();
        emails.verify(alice_id(), " 123456 ", &meta).await.unwrap();
        let code_id = CodeId::from_uuid(crate::testing::uuid(1));
        assert_eq!(
            store.events_after(before),
            vec![
                Event::MailCodeTried(MailCodeTried {
                    user_id: alice_id(),
                    code_id
                }),
                Event::MailCodeUsed(MailCodeUsed {
                    user_id: alice_id(),
                    code_id
                }),
                Event::EmailVerified(EmailVerified {
                    user_id: alice_id()
                }),
            ]
        );
        assert!(store
            .secrets(alice_id(), SecretKind::MailCode)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            emails.verify(alice_id(), "123456", &meta).await,
            Err(EmailError::InvalidCode(CodeRefused))
        );
        let UserState::Registered(user) = state(&store).await else {
            panic!("alice is gone");
        };
        assert!(user.email_verified);
    }

    #[tokio::test]
    async fn a_reset_needs_a_verified_address_and_sets_the_password_with_its_code() {
        let store = given_alice();
        let emails = emails(&store);
        let meta = Metadata::default();
        let by_name = Forgotten::Username(alice());
        // No address: nothing is issued, nothing said.
        emails.forgot(&by_name, &meta).await.unwrap();
        assert!(store
            .secrets(alice_id(), SecretKind::MailCode)
            .await
            .unwrap()
            .is_empty());

        emails.change(alice_id(), address(), &meta).await.unwrap();
        emails.verify(alice_id(), "123456", &meta).await.unwrap();
        let before = store.position();
        emails
            .forgot(&Forgotten::Email(address()), &meta)
            .await
            .unwrap();
        assert!(matches!(
            &store.events_after(before)[..],
            [Event::MailCodeIssued(e)] if e.purpose == MailPurpose::ResetPassword
        ));
        let new = Password::parse("a new password".into()).unwrap();
        assert_eq!(
            emails.reset(&alice(), "000000", new.clone(), &meta).await,
            Err(EmailError::InvalidCode(CodeRefused))
        );
        emails.reset(&alice(), "123456", new, &meta).await.unwrap();
        let UserState::Registered(user) = state(&store).await else {
            panic!("alice is gone");
        };
        assert_eq!(user.password_hash.as_phc(), "$hash$a new password");
        // Unknown names answer as a wrong code does.
        let nobody = Username::parse("nobody").unwrap();
        let again = Password::parse("another password".into()).unwrap();
        assert_eq!(
            emails.reset(&nobody, "123456", again, &meta).await,
            Err(EmailError::InvalidCode(CodeRefused))
        );
    }
}
