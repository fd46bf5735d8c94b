//! authlog's use cases, each a small service over the ports it needs.
//!
//! - [`ports`]: the traits the outside world implements (event store, password hasher, tokens,
//!   clock, ids, keys, revocation view), each mockable with mockall.
//! - [`register`], [`login`], [`authenticate`], [`refresh`], [`revoke`], [`sessions`],
//!   [`password`], [`me`], [`roles`]: one service per use case. Each loads the aggregate it
//!   needs by stream, lets the domain decide, appends with the expected version, and reports
//!   failures as its own error enum.
//! - [`signing_keys`]: the first signing key, made once and shared through the store, and
//!   rotation.
//! - [`revocation`]: the in-memory set of revoked sessions, so that authenticating a token
//!   needs no database query.
//! - [`feed`]: following the log for what other processes append (revocations, key rotations).
//! - [`audit`]: the event log filtered, paged and redacted, for the HTTP API and the CLI alike.
//! - [`streams`]: loading aggregates and building events to append, shared by the services.

pub mod audit;
pub mod authenticate;
pub mod feed;
pub mod login;
pub mod me;
pub mod password;
pub mod ports;
pub mod refresh;
pub mod register;
pub mod revocation;
pub mod revoke;
pub mod roles;
pub mod sessions;
pub mod signing_keys;
pub mod streams;

#[cfg(test)]
mod testing;

use time::Duration;

/// How long tokens live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    pub access: Duration,
    pub refresh: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access: Duration::minutes(15),
            refresh: Duration::days(30),
        }
    }
}

/// When logins for one username are refused: after `max_failures` failures within `window`
/// (0 turns throttling off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::minutes(15),
        }
    }
}

/// A freshly issued access and refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// The CSRF double-submit values, when the tokens go into cookies.
    pub access_csrf: Option<String>,
    pub refresh_csrf: Option<String>,
}
