//! The facts authlog records. Each has a stable `event_type` name (the `event_type` column), a
//! JSON payload (the `payload` column) and the version of that payload's schema (the
//! `schema_version` column; rows from before versions existed have none and read as version 1).
//!
//! Old rows must keep decoding, in this release and every later one, and are never rewritten:
//! a field may be added as optional (an older release ignores it, a newer one reads its absence
//! as `None`); any other change to a type's shape raises its [`Event::schema_version`] and adds
//! an upcaster in [`crate::upcast`], which turns the old shape into the new one when a row is
//! read. Golden fixtures hold the bytes each release stored: `fixtures/events-v1.jsonl` the
//! first release's payloads, `fixtures/events-v2.jsonl` what the second added
//! (`LoginAttempted`, `LoginSucceeded`, `SessionsRevoked`, `LoginFailed.attempt_id`),
//! `fixtures/events-v3.jsonl` what the third added (`SigningKeyRevoked`),
//! `fixtures/events-v4.jsonl` the first versioned rows (`LoggedIn` version 2),
//! `fixtures/events-v5.jsonl` the first sealed ones (`Registered` and `PasswordChanged` version
//! 2, device metadata sealed) and `UserErased`, with the keys to open them in
//! `fixtures/events-v5.keys.json` (the store's tests open them), `fixtures/events-v6.jsonl` the
//! accounts' (`UserDisabled` with its reason sealed, `UserEnabled`, `LoginRefused`, and the
//! email events, the addresses sealed) with `fixtures/events-v6.keys.json`; a test decodes
//! every line.
//!
//! A row this release cannot read as meant, because a newer release wrote it during a rolling
//! upgrade (a type it does not know, or a version above the one it writes), decodes as
//! [`Event::Unknown`]: aggregates and followers pass over it, audit shows it as stored.
//!
//! Events carry no timestamp of their own: the log records when each was appended, and the
//! aggregates receive that time (and the position) next to the event.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::stream::StreamKind;
use crate::{
    AttemptId, CodeId, Email, MailPurpose, PasswordHash, Personal, Role, SessionId, TokenId,
    UserId, Username,
};

/// Declares every event type once (see the registry below): the `Event` enum with a variant
/// per type, the `EventType` enum of typed constants, and what follows from each entry.
macro_rules! events {
    ($(
        $name:ident {
            version: $version:literal,
            stream: $stream:ident
            $(, user: $user:ident)?
            $(, personal: [$($field:literal),* $(,)?])?
            $(,)?
        }
    ),* $(,)?) => {
        /// Every fact in the log.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Event {
            $($name($name),)*
            /// A type this release does not know, kept as stored.
            Unknown(UnknownEvent),
        }

        /// The type of an event, as consumers name it: a constant, so that a misspelt type
        /// does not compile (a string would match nothing, silently).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($name,)*
        }

        impl EventType {
            /// Every type this release knows, in the registry's order.
            pub const ALL: &'static [EventType] = &[$(EventType::$name,)*];

            /// The stable name stored in the `event_type` column.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$name => stringify!($name),)*
                }
            }

            /// The type stored as `name`, if this release knows it.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($name) => Some(EventType::$name),)*
                    _ => None,
                }
            }

            /// The version of its payload's schema this release writes.
            pub const fn current_version(self) -> u32 {
                match self {
                    $(EventType::$name => $version,)*
                }
            }

            /// The kind of stream its events are appended to.
            pub const fn stream(self) -> StreamKind {
                match self {
                    $(EventType::$name => StreamKind::$stream,)*
                }
            }

            /// Whether its payload names the user it concerns.
            pub const fn names_a_user(self) -> bool {
                match self {
                    $(EventType::$name => events!(@is $($user)?),)*
                }
            }

            /// Its payload fields that are personal data, sealed under the user's data key.
            pub const fn personal_fields(self) -> &'static [&'static str] {
                match self {
                    $(EventType::$name => &[$($($field),*)?],)*
                }
            }
        }

        impl Event {
            /// Every type name this release knows, for validating filters.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($name),)*];

            /// The event's type, `None` for one this release does not know.
            pub fn kind(&self) -> Option<EventType> {
                match self {
                    $(Self::$name(_) => Some(EventType::$name),)*
                    Self::Unknown(_) => None,
                }
            }

            /// The JSON stored in the `payload` column.
            pub fn payload(&self) -> serde_json::Value {
                let value = match self {
                    $(Self::$name(e) => serde_json::to_value(e),)*
                    Self::Unknown(e) => Ok(e.payload.clone()),
                };
                // Plain structs of strings, numbers and enums: serialising cannot fail.
                value.unwrap_or(serde_json::Value::Null)
            }

            /// The user the event is about, where its payload names one.
            pub fn user_id(&self) -> Option<UserId> {
                match self {
                    $(Self::$name(_e) => events!(@user _e $($user)?),)*
                    Self::Unknown(_) => None,
                }
            }

            /// Decodes a payload of the current version of `kind`.
            fn decode_known<P: Payload>(
                kind: EventType,
                payload: Parsed<'_, P>,
            ) -> Result<Self, EventDecodeError> {
                Ok(match kind {
                    $(EventType::$name => Self::$name(payload.decode()?),)*
                })
            }
        }
    };
    (@is $user:ident) => { true };
    (@is) => { false };
    (@user $e:ident $user:ident) => { Some($e.$user) };
    (@user $e:ident) => { None };
}

/// Payload fields that audit output drops.
pub const SECRET_FIELDS: &[&str] = &["password_hash"];

// The registry: every event type, declared once. From it come the `Event` enum, the typed
// `EventType` constants consumers name, the stored name, the schema version this release writes,
// the stream kind it is appended to, the user it concerns, its personal fields, the type list
// that filters and the OpenAPI document are checked against, and decoding. A new type is its
// struct below and one line here (then a golden fixture of its stored form: a test requires one).
events! {
    Registered { version: 2, stream: User, user: user_id, personal: ["username", "password_hash"] },
    PasswordChanged { version: 2, stream: User, user: user_id, personal: ["password_hash"] },
    RoleGranted { version: 1, stream: User, user: user_id },
    RoleRevoked { version: 1, stream: User, user: user_id },
    SessionsRevoked { version: 1, stream: User, user: user_id },
    LoginAttempted { version: 1, stream: Login },
    LoggedIn { version: 2, stream: Session, user: user_id },
    LoginSucceeded { version: 1, stream: Login },
    LoginFailed { version: 2, stream: Login },
    Refreshed { version: 1, stream: Session },
    Revoked { version: 1, stream: Session, user: user_id },
    SigningKeyRotated { version: 1, stream: Keys },
    SigningKeyRevoked { version: 1, stream: Keys },
    UserErased { version: 1, stream: User, user: user_id },
    UserDisabled { version: 1, stream: User, user: user_id, personal: ["reason"] },
    UserEnabled { version: 1, stream: User, user: user_id },
    LoginRefused { version: 1, stream: Login },
    EmailChanged { version: 1, stream: User, user: user_id, personal: ["email"] },
    MailCodeIssued { version: 1, stream: User, user: user_id, personal: ["email"] },
    MailCodeTried { version: 1, stream: User, user: user_id },
    MailCodeUsed { version: 1, stream: User, user: user_id },
    EmailVerified { version: 1, stream: User, user: user_id },
}

/// An account was created.
///
/// Version 2. The shape is version 1's; what changed is how it is stored: its personal fields
/// ([`Event::personal_fields`]) are sealed under the user's data key, and the store opens them
/// before the payload is decoded (or hands over [`Personal::Erased`] once the key is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub user_id: UserId,
    pub username: Personal<Username>,
    pub password_hash: Personal<PasswordHash>,
}

/// The user's password was replaced.
///
/// Version 2: stored sealed, as [`Registered`] version 2 is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub user_id: UserId,
    pub password_hash: Personal<PasswordHash>,
}

/// The user's personal data was erased: the key that sealed it is destroyed, in the same
/// transaction, and the name is free to be registered again. Recorded with a `SessionsRevoked`
/// that ends every session the user had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserErased {
    pub user_id: UserId,
}

/// An admin disabled the account: it may hold no session until [`UserEnabled`] (its right
/// password answers `Account disabled`). Recorded with a `SessionsRevoked` that ends every
/// session it had. `reason` is the admin's note, if any: free text, so personal data, sealed
/// under the user's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDisabled {
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Personal<String>>,
}

/// The user gave an email address (at registration or later); it is unverified until
/// [`EmailVerified`]. Sealed: it is personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailChanged {
    pub user_id: UserId,
    pub email: Personal<Email>,
}

/// A one-time code was issued for `purpose` and is to be mailed to `email` (sealed) by the
/// outbox; it replaces any earlier code of that purpose. The code itself is not here: it is
/// stored sealed beside this event, as a secret of the user's (`mail_code`, under `code_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailCodeIssued {
    pub user_id: UserId,
    pub code_id: CodeId,
    pub purpose: MailPurpose,
    pub email: Personal<Email>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A code was tried (recorded before it is compared, so that parallel guesses each spend one
/// of its tries). A try with no [`MailCodeUsed`] after it was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailCodeTried {
    pub user_id: UserId,
    pub code_id: CodeId,
}

/// A code was used for what it was issued for: it works no more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailCodeUsed {
    pub user_id: UserId,
    pub code_id: CodeId,
}

/// The user proved they read their address (a code mailed to it came back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailVerified {
    pub user_id: UserId,
}

/// An admin enabled a disabled account again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEnabled {
    pub user_id: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGranted {
    pub user_id: UserId,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRevoked {
    pub user_id: UserId,
    pub role: Role,
}

/// Every session of the user opened before this fact (in log order) is revoked, but `except`:
/// one fact about the user instead of one `Revoked` per session, so a session whose login raced
/// it cannot be missed. Logout everywhere, a password change (which keeps the caller's own
/// session) and `authlog sessions revoke-all` record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsRevoked {
    pub user_id: UserId,
    pub reason: RevocationReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<SessionId>,
}

/// A password check for a name was reserved, before the password is hashed. It counts against
/// the name's login throttle until `LoginSucceeded` concludes it; parallel guesses must each
/// reserve one, so at most the limit of them are ever hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttempted {
    pub attempt_id: AttemptId,
}

/// A password login opened a session; `refresh_token_id` is the `jti` of its first refresh token.
///
/// Version 2. Version 1 also held the `username`, a copy of personal data in every login that
/// the user's id already names; [`crate::upcast`] drops it from version-1 rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedIn {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub refresh_token_id: TokenId,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A reserved password check found the right password (for a login, or for a password change
/// from `session_id`); the attempt no longer counts against the throttle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSucceeded {
    pub attempt_id: AttemptId,
    pub session_id: SessionId,
}

/// A reserved password check found the right password, and the login was refused all the same
/// for a reason that is the account's, not the password's: the attempt is concluded and does
/// not count against the throttle (a disabled account's owner does not lock it by trying).
/// A type of its own rather than a new [`LoginFailure`], which an older release could not
/// decode: it reads this one as unknown, and the reservation as open until [`crate::attempts`]
/// counts it as failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRefused {
    pub attempt_id: AttemptId,
    pub reason: LoginRefusal,
}

/// Why a right password opened no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginRefusal {
    AccountDisabled,
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    UnknownUser,
    WrongPassword,
}

/// A password check failed. `attempt_id` names the reservation it concludes; failures recorded
/// before reservations existed have none.
///
/// Version 2. Version 1 also held the `username` typed, in clear: whatever was typed into the
/// name box (a password, sometimes) stayed in the log for ever. The check's stream and subject
/// now say whose check it was: the account's id, or for a name that is no account a keyed hash
/// of it; [`crate::upcast`] drops the field from version-1 rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailed {
    pub reason: LoginFailure,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_id: Option<AttemptId>,
}

/// A refresh token was exchanged for a new pair; `refresh_token_id` is the new current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refreshed {
    pub session_id: SessionId,
    pub refresh_token_id: TokenId,
    pub generation: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Why a session ended before its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    Logout,
    LogoutAll,
    SessionRevoked,
    RefreshReuse,
    PasswordChanged,
    Admin,
}

impl RevocationReason {
    /// Every reason, for parsing and listing.
    pub const ALL: [Self; 6] = [
        Self::Logout,
        Self::LogoutAll,
        Self::SessionRevoked,
        Self::RefreshReuse,
        Self::PasswordChanged,
        Self::Admin,
    ];

    /// The stored spelling (`refresh_reuse`, ...), for labels and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::SessionRevoked => "session_revoked",
            Self::RefreshReuse => "refresh_reuse",
            Self::PasswordChanged => "password_changed",
            Self::Admin => "admin",
        }
    }

    /// The reason its stored spelling names.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == raw)
    }
}

/// A session ended: every access and refresh token that carries its id stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub reason: RevocationReason,
}

/// A new signing key took over. Only the public half is ever part of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRotated {
    pub kid: String,
    pub algorithm: String,
    /// The public key, base64url without padding (the JWK `x`).
    pub public_key: String,
}

/// A signing key was revoked (thought compromised): it verifies nothing from now on, on any
/// instance, and its key material is erased. Always recorded with the `SigningKeyRotated` of
/// the key that replaces it, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRevoked {
    pub kid: String,
}

/// A row this release cannot read as meant: a type it does not know, or a schema version newer
/// than the one it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEvent {
    pub event_type: String,
    pub schema_version: u32,
    pub payload: serde_json::Value,
}

/// A stored row of a known type whose payload this version of authlog cannot read.
#[derive(Debug, thiserror::Error)]
#[error("payload of {event_type} version {schema_version} does not decode: {source}")]
pub struct EventDecodeError {
    pub event_type: String,
    pub schema_version: u32,
    pub source: serde_json::Error,
}

impl Event {
    /// The stable name stored in the `event_type` column.
    pub fn event_type(&self) -> &str {
        match self.kind() {
            Some(kind) => kind.as_str(),
            None => match self {
                Self::Unknown(e) => &e.event_type,
                // `kind` is `None` for `Unknown` alone.
                _ => "",
            },
        }
    }

    /// The version of the payload's schema this release writes for the event's type (the
    /// `schema_version` column). Raised, with an upcaster, whenever a type's shape changes
    /// other than by an optional field.
    pub fn schema_version(&self) -> u32 {
        match (self.kind(), self) {
            (Some(kind), _) => kind.current_version(),
            (None, Self::Unknown(e)) => e.schema_version,
            (None, _) => 1,
        }
    }

    /// The version this release writes for the type named `event_type`, `None` for a type it
    /// does not know.
    pub fn current_version(event_type: &str) -> Option<u32> {
        EventType::parse(event_type).map(EventType::current_version)
    }

    /// The payload fields of `event_type` that are personal data: stored sealed under the data
    /// key of the user the event concerns, and unreadable once that user is erased. (The
    /// metadata's client address and user agent are sealed alike, for every event of a user.)
    pub fn personal_fields(event_type: &str) -> &'static [&'static str] {
        EventType::parse(event_type).map_or(&[], EventType::personal_fields)
    }

    /// The payload as audit output shows it: everything but secrets. Password hashes stay in
    /// the log (it is the source of truth) and never leave the service.
    pub fn audit_data(&self) -> serde_json::Value {
        let mut payload = self.payload();
        if let serde_json::Value::Object(fields) = &mut payload {
            for secret in SECRET_FIELDS {
                fields.remove(*secret);
            }
        }
        payload
    }

    /// Reads a stored row back: its type, the version of its payload's schema (1 for a row
    /// stored before versions existed) and the payload. An older version is upcast to the
    /// current one; a type this release does not know, or a newer version, is
    /// [`Event::Unknown`].
    ///
    /// # Errors
    /// [`EventDecodeError`] when the payload does not fit its (known) type and version.
    pub fn decode(
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<Self, EventDecodeError> {
        match Self::current_version(event_type) {
            Some(current) if schema_version < current => {
                let upcast = crate::upcast::upcast(event_type, schema_version, current, payload)
                    .map_err(|source| EventDecodeError {
                        event_type: event_type.to_owned(),
                        schema_version,
                        source,
                    })?;
                Self::decode_from(event_type, current, upcast)
            }
            _ => Self::decode_from(event_type, schema_version, payload),
        }
    }

    /// [`Event::decode`] straight from the stored text: no intermediate JSON tree for a row of
    /// the current version, which was most of the cost of reading a long stretch of the log.
    ///
    /// # Errors
    /// [`EventDecodeError`] when the payload is not JSON or does not fit its (known) type and
    /// version.
    pub fn decode_json(
        event_type: &str,
        schema_version: u32,
        payload: &str,
    ) -> Result<Self, EventDecodeError> {
        match Self::current_version(event_type) {
            Some(current) if schema_version < current => {
                let tree = serde_json::from_str(payload).map_err(|source| EventDecodeError {
                    event_type: event_type.to_owned(),
                    schema_version,
                    source,
                })?;
                Self::decode(event_type, schema_version, tree)
            }
            _ => Self::decode_from(event_type, schema_version, payload),
        }
    }

    /// Decodes a payload of `schema_version`, which is the current version of a known type or
    /// else is kept as [`Event::Unknown`].
    fn decode_from<P: Payload>(
        event_type: &str,
        schema_version: u32,
        payload: P,
    ) -> Result<Self, EventDecodeError> {
        let p = Parsed {
            payload,
            event_type,
            schema_version,
        };
        match EventType::parse(event_type).filter(|kind| kind.current_version() == schema_version) {
            Some(kind) => Self::decode_known(kind, p),
            None => Ok(Self::Unknown(UnknownEvent {
                event_type: event_type.to_owned(),
                schema_version,
                payload: p.decode()?,
            })),
        }
    }
}

/// A payload on its way to the type its row names.
struct Parsed<'a, P> {
    payload: P,
    event_type: &'a str,
    schema_version: u32,
}

impl<P: Payload> Parsed<'_, P> {
    fn decode<T: serde::de::DeserializeOwned>(self) -> Result<T, EventDecodeError> {
        self.payload.parse().map_err(|source| EventDecodeError {
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            source,
        })
    }
}

/// A stored payload, as a JSON tree or as the text itself.
trait Payload {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error>;
}

impl Payload for serde_json::Value {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self)
    }
}

impl Payload for &str {
    fn parse<T: serde::de::DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn every_event() -> Vec<Event> {
        let user_id = UserId::from_uuid(Uuid::from_u128(1));
        let session_id = SessionId::from_uuid(Uuid::from_u128(2));
        let token = TokenId::from_uuid(Uuid::from_u128(3));
        let attempt_id = AttemptId::from_uuid(Uuid::from_u128(4));
        let username = Username::parse("alice").unwrap();
        let at = time::macros::datetime!(2026-01-01 00:00 UTC);
        vec![
            Event::Registered(Registered {
                user_id,
                username: username.clone().into(),
                password_hash: PasswordHash::from_phc("$argon2id$x".into()).into(),
            }),
            Event::PasswordChanged(PasswordChanged {
                user_id,
                password_hash: PasswordHash::from_phc("$argon2id$y".into()).into(),
            }),
            Event::RoleGranted(RoleGranted {
                user_id,
                role: Role::admin(),
            }),
            Event::RoleRevoked(RoleRevoked {
                user_id,
                role: Role::admin(),
            }),
            Event::SessionsRevoked(SessionsRevoked {
                user_id,
                reason: RevocationReason::PasswordChanged,
                except: Some(session_id),
            }),
            Event::LoginAttempted(LoginAttempted { attempt_id }),
            Event::LoggedIn(LoggedIn {
                session_id,
                user_id,
                refresh_token_id: token,
                expires_at: at,
            }),
            Event::LoginSucceeded(LoginSucceeded {
                attempt_id,
                session_id,
            }),
            Event::LoginFailed(LoginFailed {
                reason: LoginFailure::UnknownUser,
                attempt_id: Some(attempt_id),
            }),
            Event::Refreshed(Refreshed {
                session_id,
                refresh_token_id: token,
                generation: 2,
                expires_at: at,
            }),
            Event::Revoked(Revoked {
                session_id,
                user_id,
                reason: RevocationReason::RefreshReuse,
            }),
            Event::SigningKeyRotated(SigningKeyRotated {
                kid: "k1".into(),
                algorithm: "EdDSA".into(),
                public_key: "abc".into(),
            }),
            Event::SigningKeyRevoked(SigningKeyRevoked { kid: "k1".into() }),
            Event::UserErased(UserErased { user_id }),
            Event::UserDisabled(UserDisabled {
                user_id,
                reason: Some("left the company".to_owned().into()),
            }),
            Event::UserEnabled(UserEnabled { user_id }),
            Event::LoginRefused(LoginRefused {
                attempt_id,
                reason: LoginRefusal::AccountDisabled,
            }),
            Event::EmailChanged(EmailChanged {
                user_id,
                email: Email::parse("alice@example.com").unwrap().into(),
            }),
            Event::MailCodeIssued(MailCodeIssued {
                user_id,
                code_id: CodeId::from_uuid(Uuid::from_u128(5)),
                purpose: MailPurpose::ResetPassword,
                email: Email::parse("alice@example.com").unwrap().into(),
                expires_at: at,
            }),
            Event::MailCodeTried(MailCodeTried {
                user_id,
                code_id: CodeId::from_uuid(Uuid::from_u128(5)),
            }),
            Event::MailCodeUsed(MailCodeUsed {
                user_id,
                code_id: CodeId::from_uuid(Uuid::from_u128(5)),
            }),
            Event::EmailVerified(EmailVerified { user_id }),
        ]
    }

    /// Every golden fixture's rows, as (type, stored version, stored payload).
    fn every_golden_row() -> Vec<(String, u32, String)> {
        [
            include_str!("../fixtures/events-v1.jsonl"),
            include_str!("../fixtures/events-v2.jsonl"),
            include_str!("../fixtures/events-v3.jsonl"),
            include_str!("../fixtures/events-v4.jsonl"),
            include_str!("../fixtures/events-v5.jsonl"),
            include_str!("../fixtures/events-v6.jsonl"),
        ]
        .iter()
        .flat_map(|fixture| fixture.lines())
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let version = row.get("schema_version").map_or(1, |v| v.as_u64().unwrap());
            (
                row["event_type"].as_str().unwrap().to_owned(),
                u32::try_from(version).unwrap(),
                row["payload"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
    }

    #[test]
    fn every_type_of_the_registry_has_its_current_version_in_a_golden_fixture() {
        // A new type, or a new version, is not done until the bytes it stores are kept: the
        // next release must decode them as this one meant them.
        let rows = every_golden_row();
        for kind in EventType::ALL {
            assert!(
                rows.iter().any(|(name, version, _)| name == kind.as_str()
                    && *version == kind.current_version()),
                "no golden fixture holds {} version {}",
                kind.as_str(),
                kind.current_version()
            );
        }
    }

    #[test]
    fn the_registry_derives_what_each_type_is() {
        assert_eq!(EventType::ALL.len(), Event::TYPES.len());
        for (kind, name) in EventType::ALL.iter().zip(Event::TYPES) {
            assert_eq!(kind.as_str(), *name);
            assert_eq!(EventType::parse(name), Some(*kind));
            assert_eq!(Event::current_version(name), Some(kind.current_version()));
        }
        assert_eq!(EventType::parse("FromANewerRelease"), None);
        assert_eq!(
            EventType::Registered.personal_fields(),
            ["username", "password_hash"]
        );
        assert!(EventType::Revoked.names_a_user());
        assert!(!EventType::LoginFailed.names_a_user());
        assert_eq!(EventType::LoginFailed.stream(), StreamKind::Login);
        // Each decoded event says its own type, and names its user where the registry says.
        for event in every_event() {
            let kind = event.kind().unwrap();
            assert_eq!(event.event_type(), kind.as_str());
            assert_eq!(event.user_id().is_some(), kind.names_a_user(), "{kind:?}");
        }
    }

    #[test]
    fn an_erased_field_decodes_as_erased() {
        let stored = r#"{"password_hash":"[erased]","user_id":"01a20c7b-7454-76f9-818e-e7d48816b9f0","username":"[erased]"}"#;
        let Event::Registered(registered) = Event::decode_json("Registered", 2, stored).unwrap()
        else {
            panic!("not a registration");
        };
        assert_eq!(registered.username, Personal::Erased);
        assert_eq!(registered.password_hash, Personal::Erased);
        assert_eq!(Event::Registered(registered).payload().to_string(), stored);
    }

    #[test]
    fn every_event_round_trips_through_its_stored_form() {
        let events = every_event();
        assert_eq!(events.len(), Event::TYPES.len());
        for event in events {
            let version = event.schema_version();
            assert_eq!(Event::current_version(event.event_type()), Some(version));
            let decoded = Event::decode(event.event_type(), version, event.payload()).unwrap();
            assert_eq!(decoded, event);
            let text = event.payload().to_string();
            assert_eq!(
                Event::decode_json(event.event_type(), version, &text).unwrap(),
                event
            );
        }
    }

    #[test]
    fn every_payload_the_first_release_stored_still_decodes_to_what_it_meant() {
        let golden = include_str!("../fixtures/events-v1.jsonl");
        let mut types = std::collections::BTreeSet::new();
        for line in golden.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let event_type = row["event_type"].as_str().unwrap();
            let payload: serde_json::Value =
                serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
            // Rows of that release have no schema version: they read as version 1.
            let event = Event::decode(event_type, 1, payload.clone()).unwrap();
            assert!(!matches!(event, Event::Unknown(_)), "{event_type}");
            // Decoding loses nothing but what an upcaster drops: stored again, it is the same
            // JSON as the upcast payload.
            let current = Event::current_version(event_type).unwrap();
            let upcast = crate::upcast::upcast(event_type, 1, current, payload).unwrap();
            assert_eq!(event.payload(), upcast, "{event_type}");
            types.insert(event_type.to_owned());
        }
        // v1 knew these nine; the golden file holds every one of them.
        assert_eq!(types.len(), 9, "{types:?}");
    }

    /// Each row of a golden fixture (JSON lines of `event_type`, the stored `payload` text and,
    /// from the first release that stored one, `schema_version`): its type, the event decoded
    /// from the stored text, which must be a known one, and the text.
    fn golden(fixture: &str) -> Vec<(String, Event, String)> {
        fixture
            .lines()
            .map(|line| {
                let row: serde_json::Value = serde_json::from_str(line).unwrap();
                let event_type = row["event_type"].as_str().unwrap().to_owned();
                let stored = row["payload"].as_str().unwrap().to_owned();
                let version = row.get("schema_version").map_or(1, |v| v.as_u64().unwrap());
                let event =
                    Event::decode_json(&event_type, u32::try_from(version).unwrap(), &stored)
                        .unwrap();
                assert!(!matches!(event, Event::Unknown(_)), "{event_type}");
                (event_type, event, stored)
            })
            .collect()
    }

    #[test]
    fn every_payload_the_second_release_added_decodes_to_what_it_meant() {
        // Written by that release's binary (tests/fixtures/make.py against it): the three
        // event types it added and the optional field it added to `LoginFailed`. Stored again,
        // each is its payload as upcast to today's version (which drops `LoginFailed.username`).
        let mut types = std::collections::BTreeSet::new();
        for (event_type, event, stored) in golden(include_str!("../fixtures/events-v2.jsonl")) {
            let payload: serde_json::Value = serde_json::from_str(&stored).unwrap();
            let current = Event::current_version(&event_type).unwrap();
            let upcast = crate::upcast::upcast(&event_type, 1, current, payload).unwrap();
            assert_eq!(event.payload(), upcast, "{event_type}");
            if event_type == "LoginFailed" {
                assert!(event.payload().get("attempt_id").is_some());
            }
            types.insert(event_type);
        }
        assert_eq!(
            types.into_iter().collect::<Vec<_>>(),
            [
                "LoginAttempted",
                "LoginFailed",
                "LoginSucceeded",
                "SessionsRevoked"
            ]
        );
    }

    #[test]
    fn every_payload_the_third_release_added_decodes_and_stores_again_byte_for_byte() {
        // Written by this release's binary (`authlog keys revoke` on a fresh database).
        let mut types = Vec::new();
        for (event_type, event, stored) in golden(include_str!("../fixtures/events-v3.jsonl")) {
            assert_eq!(event.payload().to_string(), stored, "{event_type}");
            types.push(event_type);
        }
        assert_eq!(types, ["SigningKeyRevoked"]);
    }

    #[test]
    fn the_first_versioned_payloads_decode_and_store_again_byte_for_byte() {
        // Written by the release that added schema versions (tests/fixtures/make.sh against
        // it, one row of each type, read back from its SQLite file with `schema_version`).
        let mut types = std::collections::BTreeSet::new();
        for (event_type, event, stored) in golden(include_str!("../fixtures/events-v4.jsonl")) {
            assert_eq!(event.payload().to_string(), stored, "{event_type}");
            types.insert(event_type);
        }
        // Every type of that release: all but `UserErased`, which came after.
        assert_eq!(types.len(), 13, "{types:?}");
    }

    #[test]
    fn the_first_sealed_rows_keep_their_personal_fields_sealed_and_an_erasure_decodes() {
        // Written by the release that sealed personal data (a throwaway database). The sealed
        // ones open in the store's tests; here, what any reader sees without a key.
        for line in include_str!("../fixtures/events-v5.jsonl").lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let event_type = row["event_type"].as_str().unwrap();
            let stored = row["payload"].as_str().unwrap();
            let payload: serde_json::Value = serde_json::from_str(stored).unwrap();
            for field in Event::personal_fields(event_type) {
                assert!(payload.get(field).is_none(), "{event_type}: {stored}");
            }
            if event_type == "UserErased" {
                let event = Event::decode_json(event_type, 1, stored).unwrap();
                assert!(matches!(event, Event::UserErased(_)));
                assert_eq!(event.payload().to_string(), stored);
            }
        }
    }

    #[test]
    fn the_account_rows_keep_their_personal_fields_sealed_and_the_rest_decode() {
        // Written by the release that added them (a throwaway database: an address given at
        // registration and verified with the mailed code, `authlog user disable|enable`, a
        // login of the disabled account); the sealed fields open in the store's tests.
        let mut types = Vec::new();
        for line in include_str!("../fixtures/events-v6.jsonl").lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let event_type = row["event_type"].as_str().unwrap();
            let stored = row["payload"].as_str().unwrap();
            let payload: serde_json::Value = serde_json::from_str(stored).unwrap();
            for field in Event::personal_fields(event_type) {
                assert!(payload.get(field).is_none(), "{event_type}: {stored}");
            }
            assert!(!stored.contains("example.com") && !stored.contains("leave"));
            if Event::personal_fields(event_type) == ["email"] {
                types.push(event_type.to_owned());
                continue;
            }
            let event = Event::decode_json(event_type, 1, stored).unwrap();
            match &event {
                // Without its key, what any reader sees: no reason.
                Event::UserDisabled(e) => assert_eq!(e.reason, None),
                other => assert_eq!(other.payload().to_string(), stored, "{event_type}"),
            }
            if let Event::LoginRefused(e) = &event {
                assert_eq!(e.reason, LoginRefusal::AccountDisabled);
            }
            types.push(event_type.to_owned());
        }
        assert_eq!(
            types,
            [
                "EmailChanged",
                "MailCodeIssued",
                "MailCodeTried",
                "MailCodeUsed",
                "EmailVerified",
                "UserDisabled",
                "LoginRefused",
                "UserEnabled"
            ]
        );
    }

    #[test]
    fn a_first_version_login_is_upcast_without_its_username() {
        let stored = r#"{"expires_at":"2026-12-23T19:21:15.348470385Z","refresh_token_id":"01a209da-f954-7737-a885-0b9501527790","session_id":"01a209da-f954-7737-a885-0b941252d5d5","user_id":"01a209da-f86c-7461-9a4b-33a71bf0eb45","username":"alice"}"#;
        let Event::LoggedIn(login) = Event::decode_json("LoggedIn", 1, stored).unwrap() else {
            panic!("not a login");
        };
        assert_eq!(
            login.user_id.to_string(),
            "01a209da-f86c-7461-9a4b-33a71bf0eb45"
        );
        assert!(!Event::LoggedIn(login)
            .payload()
            .to_string()
            .contains("alice"));
        // Stored as version 2, the same payload without the field is not a version-1 login:
        // version 2 refuses nothing it does not know, so the name would simply be ignored.
        assert!(Event::decode_json("LoggedIn", 2, stored).is_ok());
    }

    #[test]
    fn a_version_newer_than_this_release_writes_is_kept_as_unknown() {
        let payload = serde_json::json!({"session_id": "x", "shape": "of the future"});
        let event = Event::decode("LoggedIn", 3, payload.clone()).unwrap();
        let Event::Unknown(unknown) = &event else {
            panic!("decoded a future version as the current one: {event:?}");
        };
        assert_eq!(unknown.schema_version, 3);
        assert_eq!(event.event_type(), "LoggedIn");
        assert_eq!(event.schema_version(), 3);
        assert_eq!(event.payload(), payload);
        let text = payload.to_string();
        assert!(matches!(
            Event::decode_json("LoggedIn", 3, &text).unwrap(),
            Event::Unknown(_)
        ));
    }

    #[test]
    fn optional_fields_added_later_are_absent_from_the_stored_form_when_unset() {
        let failed = Event::LoginFailed(LoginFailed {
            reason: LoginFailure::WrongPassword,
            attempt_id: None,
        });
        assert_eq!(
            failed.payload(),
            serde_json::json!({"reason": "wrong_password"})
        );
    }

    #[test]
    fn audit_data_never_carries_a_password_hash() {
        let registered = Event::Registered(Registered {
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            username: Username::parse("alice").unwrap().into(),
            password_hash: PasswordHash::from_phc("$argon2id$v=19$secret".into()).into(),
        });
        let data = registered.audit_data();
        assert!(data.get("password_hash").is_none());
        assert_eq!(data["username"], "alice");
        assert!(!data.to_string().contains("argon2"));
        assert!(
            registered.payload().to_string().contains("argon2"),
            "the log itself keeps it"
        );
    }

    #[test]
    fn every_known_type_is_listed_and_refuses_a_payload_that_does_not_fit() {
        for name in Event::TYPES {
            let version = Event::current_version(name).unwrap();
            assert!(
                Event::decode(name, version, serde_json::json!({})).is_err(),
                "{name}"
            );
            assert!(
                Event::decode(name, 1, serde_json::json!({})).is_err(),
                "{name}"
            );
        }
    }

    #[test]
    fn revocation_reasons_are_stored_in_snake_case_as_as_str_spells_them() {
        for reason in RevocationReason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
            assert_eq!(RevocationReason::parse(reason.as_str()), Some(reason));
        }
    }

    #[test]
    fn an_unknown_type_is_kept_as_stored_and_a_bad_payload_is_an_error_not_a_panic() {
        let payload = serde_json::json!({"future": true});
        let unknown = Event::decode("FromANewerRelease", 1, payload.clone()).unwrap();
        assert_eq!(unknown.event_type(), "FromANewerRelease");
        assert_eq!(unknown.payload(), payload);
        assert!(Event::decode("Revoked", 1, serde_json::json!({"session_id": 1})).is_err());
        assert!(Event::decode_json("LoggedIn", 1, "not json").is_err());
    }
}
