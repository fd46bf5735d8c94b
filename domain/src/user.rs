//! The user aggregate: identity, password hash, roles, and the revocations that end all of the
//! user's sessions at once, decided from the user's stream.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::email::{CodeRefused, MailCode, MailPurpose, CODE_LIFETIME, RESET_INTERVAL};
use crate::event::{
    EmailChanged, EmailVerified, MailCodeIssued, MailCodeTried, MailCodeUsed, PasswordChanged,
    Registered, RoleGranted, RoleRevoked, SessionsRevoked, UserDisabled, UserEnabled, UserErased,
};
use crate::login::Factor;
use crate::{
    CodeId, Email, Event, PasswordHash, Personal, RevocationReason, Role, SessionId, Stamp, UserId,
    Username,
};

/// What the user stream says so far. `None` until `Registered`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UserState {
    #[default]
    None,
    Registered(User),
    /// The user was erased (`UserErased`, or a personal field whose key is gone): nothing can
    /// be asked of the account any more, and its name is free.
    Erased(UserId),
}

/// Why a user may not hold a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoSession {
    /// No account (never registered, under this name or id).
    #[error("no such user")]
    NoAccount,
    /// The account was erased.
    #[error("the account was erased")]
    Erased,
    /// An admin disabled the account.
    #[error("Account disabled")]
    Disabled,
}

impl UserState {
    /// The one rule for "may this user hold a session": a registered account that was not
    /// erased and is not disabled. Login asks it before it opens a session, refresh before it
    /// extends one, and every later login step alike.
    ///
    /// # Errors
    /// [`NoSession`] says why not.
    pub fn may_hold_session(&self) -> Result<&User, NoSession> {
        match self {
            Self::Registered(user) if user.disabled => Err(NoSession::Disabled),
            Self::Registered(user) => Ok(user),
            Self::None => Err(NoSession::NoAccount),
            Self::Erased(_) => Err(NoSession::Erased),
        }
    }
}

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub password_hash: PasswordHash,
    pub roles: BTreeSet<Role>,
    pub created_at: OffsetDateTime,
    /// Disabled by an admin (`UserDisabled`, until `UserEnabled`).
    pub disabled: bool,
    /// The address the user gave, if any, and whether a code mailed to it came back.
    pub email: Option<Email>,
    pub email_verified: bool,
    /// The latest code of each purpose (an earlier one is replaced when another is issued).
    pub mail_codes: BTreeMap<MailPurpose, MailCode>,
    /// Every `SessionsRevoked` so far: each ended the sessions opened before it in the log.
    pub session_cutoffs: Vec<SessionCutoff>,
}

/// One `SessionsRevoked`: sessions opened at an earlier log position are revoked, but `except`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCutoff {
    pub position: u64,
    pub reason: RevocationReason,
    pub except: Option<SessionId>,
}

impl User {
    /// The factors a login of this user must prove, in order ([`crate::login`]): the password
    /// alone, until second factors can be enrolled.
    pub fn factors(&self) -> Vec<Factor> {
        vec![Factor::Password]
    }

    /// Why the session `session`, opened (`LoggedIn`) at log position `opened_at`, was revoked
    /// with all the user's others, if it was.
    pub fn session_revoked(&self, session: SessionId, opened_at: u64) -> Option<RevocationReason> {
        self.session_cutoffs
            .iter()
            .find(|cutoff| opened_at < cutoff.position && cutoff.except != Some(session))
            .map(|cutoff| cutoff.reason)
    }
}

/// What may be asked of a user.
#[derive(Debug, Clone)]
pub enum UserCommand {
    Register {
        user_id: UserId,
        username: Username,
        password_hash: PasswordHash,
    },
    /// Replaces the password and revokes every session but `keep` (the caller's own).
    ChangePassword {
        password_hash: PasswordHash,
        keep: Option<SessionId>,
    },
    GrantRole(Role),
    RevokeRole(Role),
    /// Revokes every session opened so far, but `except`.
    RevokeSessions {
        reason: RevocationReason,
        except: Option<SessionId>,
    },
    /// Ends every session and erases the user's personal data. Asking again records nothing.
    Erase,
    /// Ends every session and refuses new ones until [`UserCommand::Enable`]; `reason` is the
    /// admin's note. Asking again records nothing.
    Disable {
        reason: Option<String>,
    },
    /// Lets a disabled account log in again. Asking for an enabled one records nothing.
    Enable,
}

/// What may be asked about a user's address and the codes mailed to it ([`decide_mail`]).
#[derive(Debug, Clone)]
pub enum MailCommand {
    /// Sets the user's address (unverified) and issues a code to verify it, `code_id`, at
    /// `now`. The address the user has and verified already records nothing; the address the
    /// user has, unverified, gets a new code.
    ChangeEmail {
        email: Email,
        code_id: CodeId,
        now: OffsetDateTime,
    },
    /// Issues a password-reset code, `code_id`, to the user's verified address, unless one was
    /// issued within [`RESET_INTERVAL`]. Without a verified address it records nothing.
    IssueResetCode {
        code_id: CodeId,
        now: OffsetDateTime,
    },
    /// Spends one try of the latest code of `purpose` (recorded before the code is compared).
    TryCode {
        purpose: MailPurpose,
        now: OffsetDateTime,
    },
    /// The code `code_id`, tried and found right, verifies the address it was mailed to.
    VerifyEmail { code_id: CodeId },
    /// The code `code_id`, tried and found right, sets a new password and ends every session.
    ResetPassword {
        code_id: CodeId,
        password_hash: PasswordHash,
    },
}

/// Why a user command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("username already exists")]
    UsernameTaken,
    #[error("no such user")]
    UnknownUser,
}

/// Why a mail command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailRefused {
    #[error("no such user")]
    UnknownUser,
    /// A mailed code that is not (or no longer) the one to try: one answer for all.
    #[error(transparent)]
    Code(#[from] CodeRefused),
}

/// Decides which events `command` leads to. Granting a role the user has, or revoking one they
/// lack, records nothing: the log holds changes, not repeated wishes.
///
/// # Errors
/// [`UserError::UsernameTaken`] for registering an existing user, [`UserError::UnknownUser`] for
/// anything else asked of a user that does not exist, or was erased.
pub fn decide(state: &UserState, command: UserCommand) -> Result<Vec<Event>, UserError> {
    match (state, command) {
        (UserState::Erased(_), UserCommand::Erase) => Ok(vec![]),
        (UserState::Erased(_), _) => Err(UserError::UnknownUser),
        (UserState::Registered(user), UserCommand::Erase) => Ok(vec![
            Event::SessionsRevoked(SessionsRevoked {
                user_id: user.id,
                reason: RevocationReason::Admin,
                except: None,
            }),
            Event::UserErased(UserErased { user_id: user.id }),
        ]),
        (
            UserState::None,
            UserCommand::Register {
                user_id,
                username,
                password_hash,
            },
        ) => Ok(vec![Event::Registered(Registered {
            user_id,
            username: Personal::Known(username),
            password_hash: Personal::Known(password_hash),
        })]),
        (UserState::Registered(_), UserCommand::Register { .. }) => Err(UserError::UsernameTaken),
        (UserState::None, _) => Err(UserError::UnknownUser),
        (
            UserState::Registered(user),
            UserCommand::ChangePassword {
                password_hash,
                keep,
            },
        ) => Ok(vec![
            Event::PasswordChanged(PasswordChanged {
                user_id: user.id,
                password_hash: Personal::Known(password_hash),
            }),
            Event::SessionsRevoked(SessionsRevoked {
                user_id: user.id,
                reason: RevocationReason::PasswordChanged,
                except: keep,
            }),
        ]),
        (UserState::Registered(user), UserCommand::RevokeSessions { reason, except }) => {
            Ok(vec![Event::SessionsRevoked(SessionsRevoked {
                user_id: user.id,
                reason,
                except,
            })])
        }
        (UserState::Registered(user), UserCommand::Disable { reason }) => {
            if user.disabled {
                return Ok(vec![]);
            }
            Ok(vec![
                Event::UserDisabled(UserDisabled {
                    user_id: user.id,
                    reason: reason.map(Personal::Known),
                }),
                Event::SessionsRevoked(SessionsRevoked {
                    user_id: user.id,
                    reason: RevocationReason::Admin,
                    except: None,
                }),
            ])
        }
        (UserState::Registered(user), UserCommand::Enable) => {
            if !user.disabled {
                return Ok(vec![]);
            }
            Ok(vec![Event::UserEnabled(UserEnabled { user_id: user.id })])
        }
        (UserState::Registered(user), UserCommand::GrantRole(role)) => {
            if user.roles.contains(&role) {
                return Ok(vec![]);
            }
            Ok(vec![Event::RoleGranted(RoleGranted {
                user_id: user.id,
                role,
            })])
        }
        (UserState::Registered(user), UserCommand::RevokeRole(role)) => {
            if !user.roles.contains(&role) {
                return Ok(vec![]);
            }
            Ok(vec![Event::RoleRevoked(RoleRevoked {
                user_id: user.id,
                role,
            })])
        }
    }
}

/// Decides which events a command about the user's address or its codes leads to.
///
/// # Errors
/// [`MailRefused::UnknownUser`] for a user that does not exist or was erased;
/// [`MailRefused::Code`] for a code that may not be tried or used.
pub fn decide_mail(state: &UserState, command: MailCommand) -> Result<Vec<Event>, MailRefused> {
    let UserState::Registered(user) = state else {
        return Err(MailRefused::UnknownUser);
    };
    let issue = |code_id, purpose, email: &Email, now: OffsetDateTime| {
        Event::MailCodeIssued(MailCodeIssued {
            user_id: user.id,
            code_id,
            purpose,
            email: Personal::Known(email.clone()),
            expires_at: now + CODE_LIFETIME,
        })
    };
    // A code of `purpose` with id `code_id` that is still open (its try was recorded).
    let open_code = |purpose, code_id| {
        user.mail_codes
            .get(&purpose)
            .filter(|code| code.id == code_id && !code.used)
            .ok_or(MailRefused::Code(CodeRefused))
    };
    match command {
        MailCommand::ChangeEmail {
            email,
            code_id,
            now,
        } => {
            let same = user.email.as_ref().map(Email::canonical) == Some(email.canonical());
            if same && user.email_verified {
                return Ok(vec![]);
            }
            let mut events = Vec::with_capacity(2);
            if !same || user.email.as_ref() != Some(&email) {
                events.push(Event::EmailChanged(EmailChanged {
                    user_id: user.id,
                    email: Personal::Known(email.clone()),
                }));
            }
            events.push(issue(code_id, MailPurpose::VerifyEmail, &email, now));
            Ok(events)
        }
        MailCommand::IssueResetCode { code_id, now } => {
            let Some(email) = user.email.as_ref().filter(|_| user.email_verified) else {
                return Ok(vec![]);
            };
            let recent = user
                .mail_codes
                .get(&MailPurpose::ResetPassword)
                .is_some_and(|code| now < code.issued_at + RESET_INTERVAL);
            if recent {
                return Ok(vec![]);
            }
            Ok(vec![issue(code_id, MailPurpose::ResetPassword, email, now)])
        }
        MailCommand::TryCode { purpose, now } => {
            let code = user
                .mail_codes
                .get(&purpose)
                .ok_or(MailRefused::Code(CodeRefused))?;
            code.may_try(now)?;
            Ok(vec![Event::MailCodeTried(MailCodeTried {
                user_id: user.id,
                code_id: code.id,
            })])
        }
        MailCommand::VerifyEmail { code_id } => {
            open_code(MailPurpose::VerifyEmail, code_id)?;
            Ok(vec![
                Event::MailCodeUsed(MailCodeUsed {
                    user_id: user.id,
                    code_id,
                }),
                Event::EmailVerified(EmailVerified { user_id: user.id }),
            ])
        }
        MailCommand::ResetPassword {
            code_id,
            password_hash,
        } => {
            open_code(MailPurpose::ResetPassword, code_id)?;
            Ok(vec![
                Event::MailCodeUsed(MailCodeUsed {
                    user_id: user.id,
                    code_id,
                }),
                Event::PasswordChanged(PasswordChanged {
                    user_id: user.id,
                    password_hash: Personal::Known(password_hash),
                }),
                Event::SessionsRevoked(SessionsRevoked {
                    user_id: user.id,
                    reason: RevocationReason::PasswordChanged,
                    except: None,
                }),
            ])
        }
    }
}

/// Folds one event, recorded at `stamp`, into the state. Events of other aggregates, and of
/// types this release does not know, are passed over. A personal field read as erased makes the
/// user erased: its key is gone, and with it the account.
pub fn apply(state: UserState, event: &Event, stamp: Stamp) -> UserState {
    match (state, event) {
        (UserState::Erased(id), _) => UserState::Erased(id),
        (_, Event::UserErased(e)) => UserState::Erased(e.user_id),
        (UserState::None, Event::Registered(e)) => {
            match (e.username.known(), e.password_hash.known()) {
                (Some(username), Some(password_hash)) => UserState::Registered(User {
                    id: e.user_id,
                    username: username.clone(),
                    password_hash: password_hash.clone(),
                    roles: BTreeSet::new(),
                    created_at: stamp.at,
                    disabled: false,
                    email: None,
                    email_verified: false,
                    mail_codes: BTreeMap::new(),
                    session_cutoffs: Vec::new(),
                }),
                _ => UserState::Erased(e.user_id),
            }
        }
        (UserState::Registered(mut user), Event::SessionsRevoked(e)) => {
            user.session_cutoffs.push(SessionCutoff {
                position: stamp.position,
                reason: e.reason,
                except: e.except,
            });
            UserState::Registered(user)
        }
        (UserState::Registered(mut user), Event::PasswordChanged(e)) => {
            match e.password_hash.known() {
                Some(hash) => {
                    user.password_hash = hash.clone();
                    UserState::Registered(user)
                }
                None => UserState::Erased(user.id),
            }
        }
        (UserState::Registered(mut user), Event::EmailChanged(e)) => match e.email.known() {
            Some(email) => {
                user.email = Some(email.clone());
                user.email_verified = false;
                UserState::Registered(user)
            }
            None => UserState::Erased(user.id),
        },
        (UserState::Registered(mut user), Event::MailCodeIssued(e)) => {
            user.mail_codes.insert(
                e.purpose,
                MailCode {
                    id: e.code_id,
                    purpose: e.purpose,
                    issued_at: stamp.at,
                    expires_at: e.expires_at,
                    tries: 0,
                    used: false,
                },
            );
            UserState::Registered(user)
        }
        (UserState::Registered(mut user), Event::MailCodeTried(e)) => {
            if let Some(code) = user.mail_codes.values_mut().find(|c| c.id == e.code_id) {
                code.tries += 1;
            }
            UserState::Registered(user)
        }
        (UserState::Registered(mut user), Event::MailCodeUsed(e)) => {
            if let Some(code) = user.mail_codes.values_mut().find(|c| c.id == e.code_id) {
                code.used = true;
            }
            UserState::Registered(user)
        }
        (UserState::Registered(mut user), Event::EmailVerified(_)) => {
            user.email_verified = true;
            UserState::Registered(user)
        }
        (UserState::Registered(mut user), Event::UserDisabled(_)) => {
            user.disabled = true;
            UserState::Registered(user)
        }
        (UserState::Registered(mut user), Event::UserEnabled(_)) => {
            user.disabled = false;
            UserState::Registered(user)
        }
        (UserState::Registered(mut user), Event::RoleGranted(e)) => {
            user.roles.insert(e.role.clone());
            UserState::Registered(user)
        }
        (UserState::Registered(mut user), Event::RoleRevoked(e)) => {
            user.roles.remove(&e.role);
            UserState::Registered(user)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use uuid::Uuid;

    const AT: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn stamp(position: u64) -> Stamp {
        Stamp { position, at: AT }
    }

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    fn id() -> UserId {
        UserId::from_uuid(Uuid::from_u128(7))
    }

    fn hash(s: &str) -> PasswordHash {
        PasswordHash::from_phc(s.into())
    }

    fn registered() -> Event {
        Event::Registered(Registered {
            user_id: id(),
            username: alice().into(),
            password_hash: hash("h1").into(),
        })
    }

    fn given(events: &[Event]) -> UserState {
        events
            .iter()
            .zip(1..)
            .fold(UserState::None, |state, (event, position)| {
                apply(state, event, stamp(position))
            })
    }

    #[test]
    fn only_a_registered_user_that_was_not_erased_may_hold_a_session() {
        assert_eq!(given(&[]).may_hold_session(), Err(NoSession::NoAccount));
        let alice = given(&[registered()]);
        assert_eq!(alice.may_hold_session().map(|u| u.id), Ok(id()));
        assert_eq!(
            alice.may_hold_session().unwrap().factors(),
            [Factor::Password]
        );
        let erased = given(&[
            registered(),
            Event::UserErased(UserErased { user_id: id() }),
        ]);
        assert_eq!(erased.may_hold_session(), Err(NoSession::Erased));
    }

    #[test]
    fn given_a_user_when_disabled_then_every_session_ends_and_none_may_be_held_until_enabled() {
        let alice = given(&[registered()]);
        let disabled = decide(
            &alice,
            UserCommand::Disable {
                reason: Some("left".into()),
            },
        )
        .unwrap();
        assert_eq!(
            disabled,
            vec![
                Event::UserDisabled(UserDisabled {
                    user_id: id(),
                    reason: Some(Personal::Known("left".into())),
                }),
                Event::SessionsRevoked(SessionsRevoked {
                    user_id: id(),
                    reason: RevocationReason::Admin,
                    except: None,
                }),
            ]
        );
        let mut history = vec![registered()];
        history.extend(disabled);
        let state = given(&history);
        assert_eq!(state.may_hold_session(), Err(NoSession::Disabled));
        assert_eq!(NoSession::Disabled.to_string(), "Account disabled");
        // Asked again: nothing new to record.
        assert_eq!(
            decide(&state, UserCommand::Disable { reason: None }),
            Ok(vec![])
        );

        let enabled = decide(&state, UserCommand::Enable).unwrap();
        assert_eq!(
            enabled,
            vec![Event::UserEnabled(UserEnabled { user_id: id() })]
        );
        history.extend(enabled);
        let state = given(&history);
        assert_eq!(state.may_hold_session().map(|u| u.id), Ok(id()));
        assert_eq!(decide(&state, UserCommand::Enable), Ok(vec![]));
    }

    fn email() -> Email {
        Email::parse("alice@example.com").unwrap()
    }

    fn code(n: u128) -> CodeId {
        CodeId::from_uuid(Uuid::from_u128(n))
    }

    /// Decides `command` on `history` and returns the history with its events.
    fn after(history: &[Event], command: MailCommand) -> Vec<Event> {
        let events = decide_mail(&given(history), command).unwrap();
        history.iter().cloned().chain(events).collect()
    }

    fn mail(state: &UserState) -> &User {
        match state {
            UserState::Registered(user) => user,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn given_an_address_when_its_code_is_tried_and_used_then_it_is_verified_once() {
        let set = after(
            &[registered()],
            MailCommand::ChangeEmail {
                email: email(),
                code_id: code(1),
                now: AT,
            },
        );
        let user = given(&set);
        assert_eq!(mail(&user).email, Some(email()));
        assert!(!mail(&user).email_verified);
        let tried = after(
            &set,
            MailCommand::TryCode {
                purpose: MailPurpose::VerifyEmail,
                now: AT,
            },
        );
        let verified = after(&tried, MailCommand::VerifyEmail { code_id: code(1) });
        assert!(mail(&given(&verified)).email_verified);
        // Used: no more tries, and the same address again records nothing.
        assert_eq!(
            decide_mail(
                &given(&verified),
                MailCommand::TryCode {
                    purpose: MailPurpose::VerifyEmail,
                    now: AT,
                }
            ),
            Err(MailRefused::Code(CodeRefused))
        );
        assert_eq!(
            decide_mail(
                &given(&verified),
                MailCommand::ChangeEmail {
                    email: Email::parse("ALICE@example.com").unwrap(),
                    code_id: code(2),
                    now: AT,
                }
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn a_code_allows_five_tries_and_expires_after_fifteen_minutes() {
        let mut history = after(
            &[registered()],
            MailCommand::ChangeEmail {
                email: email(),
                code_id: code(1),
                now: AT,
            },
        );
        let try_at = |now| MailCommand::TryCode {
            purpose: MailPurpose::VerifyEmail,
            now,
        };
        assert_eq!(
            decide_mail(&given(&history), try_at(AT + time::Duration::minutes(15))),
            Err(MailRefused::Code(CodeRefused))
        );
        for _ in 0..5 {
            history.extend(decide_mail(&given(&history), try_at(AT)).unwrap());
        }
        assert_eq!(
            decide_mail(&given(&history), try_at(AT)),
            Err(MailRefused::Code(CodeRefused))
        );
        // A new code starts afresh, and the old one is no longer the one to use.
        let again = after(
            &history,
            MailCommand::ChangeEmail {
                email: email(),
                code_id: code(2),
                now: AT,
            },
        );
        assert!(decide_mail(&given(&again), try_at(AT)).is_ok());
        assert_eq!(
            decide_mail(
                &given(&again),
                MailCommand::VerifyEmail { code_id: code(1) }
            ),
            Err(MailRefused::Code(CodeRefused))
        );
    }

    #[test]
    fn a_reset_code_goes_only_to_a_verified_address_at_most_once_a_minute() {
        let reset = |n, now| MailCommand::IssueResetCode {
            code_id: code(n),
            now,
        };
        let unverified = after(
            &[registered()],
            MailCommand::ChangeEmail {
                email: email(),
                code_id: code(1),
                now: AT,
            },
        );
        assert_eq!(decide_mail(&given(&unverified), reset(2, AT)), Ok(vec![]));
        let tried = after(
            &unverified,
            MailCommand::TryCode {
                purpose: MailPurpose::VerifyEmail,
                now: AT,
            },
        );
        let verified = after(&tried, MailCommand::VerifyEmail { code_id: code(1) });
        let issued = decide_mail(&given(&verified), reset(2, AT)).unwrap();
        assert!(
            matches!(&issued[..], [Event::MailCodeIssued(e)] if e.purpose == MailPurpose::ResetPassword)
        );
        let history: Vec<Event> = verified.iter().cloned().chain(issued).collect();
        assert_eq!(
            decide_mail(&given(&history), reset(3, AT + time::Duration::seconds(59))),
            Ok(vec![])
        );
        let tried = after(
            &history,
            MailCommand::TryCode {
                purpose: MailPurpose::ResetPassword,
                now: AT,
            },
        );
        let done = decide_mail(
            &given(&tried),
            MailCommand::ResetPassword {
                code_id: code(2),
                password_hash: hash("h2"),
            },
        )
        .unwrap();
        assert!(matches!(
            &done[..],
            [Event::MailCodeUsed(_), Event::PasswordChanged(_), Event::SessionsRevoked(e)]
                if e.except.is_none()
        ));
    }

    #[test]
    fn an_erased_or_unknown_user_cannot_be_disabled_or_enabled() {
        let erased = given(&[
            registered(),
            Event::UserErased(UserErased { user_id: id() }),
        ]);
        for state in [given(&[]), erased] {
            assert_eq!(
                decide(&state, UserCommand::Disable { reason: None }),
                Err(UserError::UnknownUser)
            );
            assert_eq!(
                decide(&state, UserCommand::Enable),
                Err(UserError::UnknownUser)
            );
        }
    }

    #[test]
    fn given_nothing_when_register_then_registered() {
        let events = decide(
            &given(&[]),
            UserCommand::Register {
                user_id: id(),
                username: alice(),
                password_hash: hash("h1"),
            },
        );
        assert_eq!(events, Ok(vec![registered()]));
    }

    #[test]
    fn given_registered_when_register_again_then_username_taken() {
        let events = decide(
            &given(&[registered()]),
            UserCommand::Register {
                user_id: UserId::from_uuid(Uuid::from_u128(8)),
                username: alice(),
                password_hash: hash("h2"),
            },
        );
        assert_eq!(events, Err(UserError::UsernameTaken));
    }

    #[test]
    fn given_nothing_when_anything_but_register_then_unknown_user() {
        for command in [
            UserCommand::ChangePassword {
                password_hash: hash("h"),
                keep: None,
            },
            UserCommand::GrantRole(Role::admin()),
            UserCommand::RevokeRole(Role::admin()),
        ] {
            assert_eq!(decide(&given(&[]), command), Err(UserError::UnknownUser));
        }
    }

    fn session(n: u128) -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn given_registered_when_change_password_then_password_changed_and_every_other_session_revoked()
    {
        let events = decide(
            &given(&[registered()]),
            UserCommand::ChangePassword {
                password_hash: hash("h2"),
                keep: Some(session(9)),
            },
        );
        assert_eq!(
            events,
            Ok(vec![
                Event::PasswordChanged(PasswordChanged {
                    user_id: id(),
                    password_hash: hash("h2").into(),
                }),
                Event::SessionsRevoked(SessionsRevoked {
                    user_id: id(),
                    reason: RevocationReason::PasswordChanged,
                    except: Some(session(9)),
                })
            ])
        );
    }

    #[test]
    fn sessions_opened_before_a_sessions_revoked_are_revoked_but_the_one_it_spares() {
        let revoked = Event::SessionsRevoked(SessionsRevoked {
            user_id: id(),
            reason: RevocationReason::LogoutAll,
            except: Some(session(2)),
        });
        // Registered at 1, SessionsRevoked at 2.
        let UserState::Registered(user) = given(&[registered(), revoked]) else {
            panic!("not registered")
        };
        assert_eq!(
            user.session_revoked(session(1), 1),
            Some(RevocationReason::LogoutAll)
        );
        assert_eq!(user.session_revoked(session(2), 1), None, "spared");
        assert_eq!(user.session_revoked(session(3), 3), None, "opened after");
    }

    #[test]
    fn given_registered_when_grant_role_then_role_granted() {
        let events = decide(
            &given(&[registered()]),
            UserCommand::GrantRole(Role::admin()),
        );
        assert_eq!(
            events,
            Ok(vec![Event::RoleGranted(RoleGranted {
                user_id: id(),
                role: Role::admin()
            })])
        );
    }

    #[test]
    fn given_role_granted_when_grant_it_again_then_nothing_is_recorded() {
        let granted = Event::RoleGranted(RoleGranted {
            user_id: id(),
            role: Role::admin(),
        });
        let events = decide(
            &given(&[registered(), granted]),
            UserCommand::GrantRole(Role::admin()),
        );
        assert_eq!(events, Ok(vec![]));
    }

    #[test]
    fn given_role_granted_when_revoke_it_then_role_revoked() {
        let granted = Event::RoleGranted(RoleGranted {
            user_id: id(),
            role: Role::admin(),
        });
        let events = decide(
            &given(&[registered(), granted]),
            UserCommand::RevokeRole(Role::admin()),
        );
        assert_eq!(
            events,
            Ok(vec![Event::RoleRevoked(RoleRevoked {
                user_id: id(),
                role: Role::admin()
            })])
        );
    }

    #[test]
    fn given_no_role_when_revoke_it_then_nothing_is_recorded() {
        let events = decide(
            &given(&[registered()]),
            UserCommand::RevokeRole(Role::admin()),
        );
        assert_eq!(events, Ok(vec![]));
    }

    #[test]
    fn applying_the_history_gives_the_current_user() {
        let state = given(&[
            registered(),
            Event::RoleGranted(RoleGranted {
                user_id: id(),
                role: Role::admin(),
            }),
            Event::PasswordChanged(PasswordChanged {
                user_id: id(),
                password_hash: hash("h2").into(),
            }),
        ]);
        let UserState::Registered(user) = state else {
            panic!("not registered")
        };
        assert_eq!(user.password_hash, hash("h2"));
        assert!(user.roles.contains(&Role::admin()));
        assert_eq!(user.created_at, AT);
    }

    #[test]
    fn given_a_user_when_erase_then_every_session_ends_and_the_user_is_erased() {
        let events = decide(&given(&[registered()]), UserCommand::Erase).unwrap();
        assert_eq!(
            events,
            vec![
                Event::SessionsRevoked(SessionsRevoked {
                    user_id: id(),
                    reason: RevocationReason::Admin,
                    except: None,
                }),
                Event::UserErased(UserErased { user_id: id() }),
            ]
        );
        let mut history = vec![registered()];
        history.extend(events);
        let state = given(&history);
        assert_eq!(state, UserState::Erased(id()));
        // Erasing again records nothing; anything else is asked of nobody.
        assert_eq!(decide(&state, UserCommand::Erase), Ok(vec![]));
        assert_eq!(
            decide(&state, UserCommand::GrantRole(Role::admin())),
            Err(UserError::UnknownUser)
        );
        assert_eq!(
            decide(&given(&[]), UserCommand::Erase),
            Err(UserError::UnknownUser)
        );
    }

    #[test]
    fn a_registration_whose_key_is_gone_reads_as_an_erased_user() {
        let erased = Event::Registered(Registered {
            user_id: id(),
            username: Personal::Erased,
            password_hash: Personal::Erased,
        });
        assert_eq!(given(&[erased]), UserState::Erased(id()));
    }
}
