//! The facts authlog records. Each has a stable `event_type` name (the `event_type` column) and
//! a JSON payload (the `payload` column). A payload change is a new event type or version,
//! never a silent edit: old rows must keep decoding.
//!
//! Events carry no timestamp of their own: the log records when each was appended, and the
//! aggregates receive that time next to the event.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{PasswordHash, Role, SessionId, TokenId, UserId, Username};

/// Payload fields that audit output drops.
pub const SECRET_FIELDS: &[&str] = &["password_hash"];

/// Every fact in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Registered(Registered),
    PasswordChanged(PasswordChanged),
    RoleGranted(RoleGranted),
    RoleRevoked(RoleRevoked),
    LoggedIn(LoggedIn),
    LoginFailed(LoginFailed),
    Refreshed(Refreshed),
    Revoked(Revoked),
    SigningKeyRotated(SigningKeyRotated),
}

/// An account was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub user_id: UserId,
    pub username: Username,
    pub password_hash: PasswordHash,
}

/// The user's password was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChanged {
    pub user_id: UserId,
    pub password_hash: PasswordHash,
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

/// A password login opened a session; `refresh_token_id` is the `jti` of its first refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedIn {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub username: Username,
    pub refresh_token_id: TokenId,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    UnknownUser,
    WrongPassword,
}

/// A login was refused. The username is the canonical form of what was typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailed {
    pub username: String,
    pub reason: LoginFailure,
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

/// A stored row whose type or payload this version of authlog cannot read.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("payload of {event_type} does not decode: {source}")]
    Payload {
        event_type: String,
        source: serde_json::Error,
    },
}

impl Event {
    /// The stable name stored in the `event_type` column.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Registered(_) => "Registered",
            Self::PasswordChanged(_) => "PasswordChanged",
            Self::RoleGranted(_) => "RoleGranted",
            Self::RoleRevoked(_) => "RoleRevoked",
            Self::LoggedIn(_) => "LoggedIn",
            Self::LoginFailed(_) => "LoginFailed",
            Self::Refreshed(_) => "Refreshed",
            Self::Revoked(_) => "Revoked",
            Self::SigningKeyRotated(_) => "SigningKeyRotated",
        }
    }

    /// The JSON stored in the `payload` column.
    pub fn payload(&self) -> serde_json::Value {
        let value = match self {
            Self::Registered(e) => serde_json::to_value(e),
            Self::PasswordChanged(e) => serde_json::to_value(e),
            Self::RoleGranted(e) => serde_json::to_value(e),
            Self::RoleRevoked(e) => serde_json::to_value(e),
            Self::LoggedIn(e) => serde_json::to_value(e),
            Self::LoginFailed(e) => serde_json::to_value(e),
            Self::Refreshed(e) => serde_json::to_value(e),
            Self::Revoked(e) => serde_json::to_value(e),
            Self::SigningKeyRotated(e) => serde_json::to_value(e),
        };
        // These are plain structs of strings, numbers and enums: serialising them cannot fail.
        value.unwrap_or(serde_json::Value::Null)
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

    /// Every event type name, for validating filters.
    pub const TYPES: [&'static str; 9] = [
        "Registered",
        "PasswordChanged",
        "RoleGranted",
        "RoleRevoked",
        "LoggedIn",
        "LoginFailed",
        "Refreshed",
        "Revoked",
        "SigningKeyRotated",
    ];

    /// Reads a stored row back.
    ///
    /// # Errors
    /// [`EventDecodeError`] when the type is unknown or the payload does not fit it.
    pub fn decode(event_type: &str, payload: serde_json::Value) -> Result<Self, EventDecodeError> {
        fn parse<T: serde::de::DeserializeOwned>(
            event_type: &str,
            payload: serde_json::Value,
        ) -> Result<T, EventDecodeError> {
            serde_json::from_value(payload).map_err(|source| EventDecodeError::Payload {
                event_type: event_type.to_owned(),
                source,
            })
        }
        Ok(match event_type {
            "Registered" => Self::Registered(parse(event_type, payload)?),
            "PasswordChanged" => Self::PasswordChanged(parse(event_type, payload)?),
            "RoleGranted" => Self::RoleGranted(parse(event_type, payload)?),
            "RoleRevoked" => Self::RoleRevoked(parse(event_type, payload)?),
            "LoggedIn" => Self::LoggedIn(parse(event_type, payload)?),
            "LoginFailed" => Self::LoginFailed(parse(event_type, payload)?),
            "Refreshed" => Self::Refreshed(parse(event_type, payload)?),
            "Revoked" => Self::Revoked(parse(event_type, payload)?),
            "SigningKeyRotated" => Self::SigningKeyRotated(parse(event_type, payload)?),
            other => return Err(EventDecodeError::UnknownType(other.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn every_event_round_trips_through_its_stored_form() {
        let user_id = UserId::from_uuid(Uuid::from_u128(1));
        let session_id = SessionId::from_uuid(Uuid::from_u128(2));
        let token = TokenId::from_uuid(Uuid::from_u128(3));
        let username = Username::parse("alice").unwrap();
        let at = time::macros::datetime!(2026-01-01 00:00 UTC);
        let events = [
            Event::Registered(Registered {
                user_id,
                username: username.clone(),
                password_hash: PasswordHash::from_phc("$argon2id$x".into()),
            }),
            Event::PasswordChanged(PasswordChanged {
                user_id,
                password_hash: PasswordHash::from_phc("$argon2id$y".into()),
            }),
            Event::RoleGranted(RoleGranted {
                user_id,
                role: Role::admin(),
            }),
            Event::RoleRevoked(RoleRevoked {
                user_id,
                role: Role::admin(),
            }),
            Event::LoggedIn(LoggedIn {
                session_id,
                user_id,
                username,
                refresh_token_id: token,
                expires_at: at,
            }),
            Event::LoginFailed(LoginFailed {
                username: "bob".into(),
                reason: LoginFailure::UnknownUser,
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
        ];
        for event in events {
            let decoded = Event::decode(event.event_type(), event.payload()).unwrap();
            assert_eq!(decoded, event);
        }
    }

    #[test]
    fn audit_data_never_carries_a_password_hash() {
        let registered = Event::Registered(Registered {
            user_id: UserId::from_uuid(Uuid::from_u128(1)),
            username: Username::parse("alice").unwrap(),
            password_hash: PasswordHash::from_phc("$argon2id$v=19$secret".into()),
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
    fn every_event_type_is_listed() {
        for name in Event::TYPES {
            assert!(
                matches!(
                    Event::decode(name, serde_json::json!({})),
                    Err(EventDecodeError::Payload { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn revocation_reasons_are_stored_in_snake_case_as_as_str_spells_them() {
        use RevocationReason::*;
        for reason in [
            Logout,
            LogoutAll,
            SessionRevoked,
            RefreshReuse,
            PasswordChanged,
            Admin,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }

    #[test]
    fn unknown_types_and_bad_payloads_are_errors_not_panics() {
        assert!(matches!(
            Event::decode("Nope", serde_json::json!({})),
            Err(EventDecodeError::UnknownType(_))
        ));
        assert!(matches!(
            Event::decode("Revoked", serde_json::json!({"session_id": 1})),
            Err(EventDecodeError::Payload { .. })
        ));
    }
}
