//! Registering an account.

use std::sync::Arc;

use authlog_domain::user::{self, MailCommand, UserCommand, UserError, UserState};
use authlog_domain::{Email, MailPurpose, Password, Stamp, StreamId, UserId, Username};

use crate::admission::{Admission, Busy};
use crate::email::Emails;
use crate::ports::{
    AppendError, Beside, Clock, EventStore, ExpectedVersion, HashError, IdGenerator, Metadata,
    NameClaim, PasswordHasher, StoreError, StreamWrite,
};
use crate::streams::{load_user, subject_of, to_append};

/// Why a registration did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("username already exists")]
    UsernameTaken,
    /// An address was given, and this server sends no mail (no `--smtp-url`): it is refused
    /// rather than kept unverifiable.
    #[error("email is not enabled on this server")]
    MailDisabled,
    /// The hashing queue is full; try again after `retry_after`.
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error(transparent)]
    Hashing(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct RegisterUser {
    store: Arc<dyn EventStore>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    admission: Arc<Admission>,
    /// Set when the server sends mail: an address given at registration gets its code.
    emails: Option<Arc<Emails>>,
}

impl RegisterUser {
    pub fn new(
        store: Arc<dyn EventStore>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        admission: Arc<Admission>,
    ) -> Self {
        Self {
            store,
            hasher,
            clock,
            ids,
            admission,
            emails: None,
        }
    }

    /// Accepts an address at registration, verified by a code that `emails` issues.
    #[must_use]
    pub fn with_mail(mut self, emails: Arc<Emails>) -> Self {
        self.emails = Some(emails);
        self
    }

    /// Creates the account `username` with `password`, and with `email` (unverified, a code
    /// on its way to it) if given.
    ///
    /// # Errors
    /// [`RegisterError::UsernameTaken`] when the name (under the identity rule) or one
    /// confusable with it is an account's, including when a concurrent registration of it wins
    /// the race; [`RegisterError::MailDisabled`] for an address on a server without mail;
    /// [`RegisterError::Busy`] when the hashing queue is full; otherwise a hasher or store
    /// failure.
    pub async fn execute(
        &self,
        username: Username,
        password: Password,
        email: Option<Email>,
        metadata: &Metadata,
    ) -> Result<UserId, RegisterError> {
        let mail = match (email, &self.emails) {
            (None, _) => None,
            (Some(_), None) => return Err(RegisterError::MailDisabled),
            (Some(email), Some(emails)) => Some((email, emails)),
        };
        let loaded = load_user(self.store.as_ref(), &username).await?;
        // Refusing a taken name before hashing saves an Argon2 run. It is not what makes names
        // unique: two registrations can both pass this line, and the claim below decides (it
        // also refuses a confusable name, which this line does not look for).
        if !matches!(loaded.state, UserState::None) {
            return Err(RegisterError::UsernameTaken);
        }
        let admitted = self.admission.admit(metadata.client_addr.as_deref())?;
        let password_hash = self.hasher.hash(password).await?;
        drop(admitted);
        let user_id = UserId::from_uuid(self.ids.new_id());
        let command = UserCommand::Register {
            user_id,
            username: username.clone(),
            password_hash,
        };
        let mut events = user::decide(&loaded.state, command).map_err(|e| match e {
            UserError::UsernameTaken | UserError::UnknownUser => RegisterError::UsernameTaken,
        })?;
        let now = self.clock.now();
        let stream = StreamId::user(user_id);
        let mut beside = vec![Beside::ClaimName(NameClaim::of(
            &username,
            user_id,
            stream.clone(),
        ))];
        if let Some((email, emails)) = mail {
            // Decided on the account as it will be once registered, in the same append.
            let registered = events.iter().fold(UserState::None, |state, event| {
                user::apply(
                    state,
                    event,
                    Stamp {
                        position: 0,
                        at: now,
                    },
                )
            });
            let (code_id, put) = emails.draw(user_id, MailPurpose::VerifyEmail);
            let command = MailCommand::ChangeEmail {
                email,
                code_id,
                now,
            };
            events.extend(
                user::decide_mail(&registered, command)
                    .map_err(|e| StoreError::Unavailable(format!("an address refused: {e}")))?,
            );
            beside.push(put);
        }
        let events = to_append(events, &subject_of(user_id), metadata, now);
        let write = StreamWrite::new(stream, ExpectedVersion::NoStream, events);
        match self.store.append_with(vec![write], beside).await {
            Ok(_) => Ok(user_id),
            Err(AppendError::NameTaken | AppendError::Conflict { .. }) => {
                Err(RegisterError::UsernameTaken)
            }
            Err(AppendError::Store(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockPasswordHasher;
    use crate::testing::{
        admission, alice, alice_id, alice_registered, clock, hasher, ids, uuid, InMemoryEventStore,
    };
    use authlog_domain::event::Registered;
    use authlog_domain::{Event, PasswordHash};
    use std::sync::Arc;

    fn password() -> Password {
        Password::parse("correct horse".into()).unwrap()
    }

    #[tokio::test]
    async fn a_free_name_is_registered_with_the_hash_of_its_password() {
        let store = Arc::new(InMemoryEventStore::new());
        let user_id = RegisterUser::new(store.clone(), hasher(true), clock(), ids(), admission())
            .execute(alice(), password(), None, &Metadata::default())
            .await
            .unwrap();
        assert_eq!(user_id, UserId::from_uuid(uuid(1)));
        assert_eq!(
            store.events_after(0),
            vec![Event::Registered(Registered {
                user_id,
                username: alice().into(),
                password_hash: PasswordHash::from_phc("$hash$correct horse".into()).into(),
            })]
        );
    }

    #[tokio::test]
    async fn a_taken_name_is_refused_before_any_hashing_whatever_its_case() {
        let store = Arc::new(InMemoryEventStore::new());
        store.given(StreamId::user(alice_id()), [alice_registered()]);
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_hash().never();
        let result =
            RegisterUser::new(store.clone(), Arc::new(hasher), clock(), ids(), admission())
                .execute(
                    Username::parse("ALICE").unwrap(),
                    password(),
                    None,
                    &Metadata::default(),
                )
                .await;
        assert_eq!(result, Err(RegisterError::UsernameTaken));
        assert_eq!(store.position(), 1);
    }

    #[tokio::test]
    async fn a_registration_that_loses_the_race_for_the_name_is_taken() {
        let store = Arc::new(InMemoryEventStore::new());
        let racing = store.clone();
        let mut hasher = MockPasswordHasher::new();
        // While this registration hashes, another one of the same name lands.
        hasher.expect_hash().return_once(move |_| {
            racing.given(StreamId::user(alice_id()), [alice_registered()]);
            Ok(PasswordHash::from_phc("$hash$x".into()))
        });
        let result =
            RegisterUser::new(store.clone(), Arc::new(hasher), clock(), ids(), admission())
                .execute(alice(), password(), None, &Metadata::default())
                .await;
        assert_eq!(result, Err(RegisterError::UsernameTaken));
        assert_eq!(store.position(), 1, "only the winner's");
    }
}
