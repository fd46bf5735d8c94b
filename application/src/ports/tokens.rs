use authlog_domain::{Role, SessionId, TokenId, UserId, Username};

use super::{KeyError, SigningKey};
use std::sync::Arc;

use time::OffsetDateTime;

/// Which of the two tokens a JWT is (its `type` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// What authlog puts in, and reads back from, a token. The adapter adds `iss`, `aud`, `iat`,
/// `nbf` and the `kid` header, and checks them on the way back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user_id: UserId,
    pub username: Username,
    pub roles: Vec<Role>,
    pub session_id: SessionId,
    pub token_id: TokenId,
    pub kind: TokenKind,
    /// True only on an access token straight from a password login.
    pub fresh: bool,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The CSRF double-submit value, on tokens issued into cookies only.
    pub csrf: Option<String>,
}

impl Claims {
    pub fn has_role(&self, role: &Role) -> bool {
        self.roles.contains(role)
    }
}

/// What goes with a refresh token in the pair it is issued in: the access token's id and the
/// CSRF double-submit values. Derived from the refresh token's id (see
/// [`TokenService::companions`]), so that a pair can be issued again, identical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Companions {
    pub access_id: TokenId,
    pub access_csrf: String,
    pub refresh_csrf: String,
}

/// Why a token is not accepted. The messages are the ones clients see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Token has expired")]
    Expired,
    #[error("The token is not yet valid (nbf)")]
    NotYetValid,
    #[error("Signature verification failed")]
    BadSignature,
    #[error("Invalid issuer")]
    WrongIssuer,
    #[error("Invalid audience")]
    WrongAudience,
    #[error("Unknown signing key")]
    UnknownKey,
    #[error("Invalid algorithm")]
    WrongAlgorithm,
    /// Not a JWT, or claims of the wrong shape; the text says what.
    #[error("{0}")]
    Malformed(String),
    /// Signing failed (a broken key): a server fault, not the client's.
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// Issues and verifies signed tokens (JWTs).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenService: Send + Sync {
    /// Signs `claims` with the current key.
    ///
    /// # Errors
    /// [`TokenError::Signing`] when the key cannot sign.
    fn issue(&self, claims: &Claims) -> Result<String, TokenError>;

    /// The access token id and CSRF values that go with refresh token `refresh_token_id`: a
    /// keyed function of it, under a key only this service holds (derived from the signing
    /// key). Nobody without the key can predict them, not even from the log, which records
    /// refresh token ids; and one refresh token id always gets the same ones, so a refresh
    /// retried within the reuse grace answers with the very pair it answered before.
    fn companions(&self, refresh_token_id: TokenId) -> Companions;

    /// Checks the signature (against every key that may still verify), the algorithm, `iss`,
    /// `aud`, `nbf` and `exp` at `now`, and reads the claims. Shared (`Arc`), so a cache of
    /// verified tokens can hand them out on every request without copying them.
    ///
    /// # Errors
    /// [`TokenError`] says which check failed.
    fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Arc<Claims>, TokenError>;

    /// Replaces the key set (oldest first; the newest signs) after a rotation.
    ///
    /// # Errors
    /// [`KeyError`] when the set is empty or holds an unusable key; the old set stays.
    fn replace_keys(&self, keys: Vec<SigningKey>, now: OffsetDateTime) -> Result<(), KeyError>;

    /// The public keys that may still verify a live token, for the JWKS endpoint. Empty when
    /// tokens are signed with a shared secret.
    fn public_keys(&self) -> Vec<PublicKey>;
}

/// A public verification key, as a JWK publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// The JOSE algorithm, `EdDSA`.
    pub algorithm: String,
    /// The raw public key.
    pub public_key: Vec<u8>,
}
