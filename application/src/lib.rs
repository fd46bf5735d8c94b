//! authlog's use cases, each a small service over the ports it needs.
//!
//! - [`access`]: who is calling ([`access::Caller`]) and the role rules use cases apply.
//! - [`ports`]: the traits the outside world implements (event store, password hasher, tokens,
//!   clock, ids, keys, revocation view), each mockable with mockall.
//! - [`register`], [`login`], [`authenticate`], [`refresh`], [`revoke`], [`sessions`],
//!   [`password`], [`me`], [`roles`]: one service per use case. Each loads the aggregate it
//!   needs by stream, lets the domain decide, appends with the expected version, and reports
//!   failures as its own error enum.
//! - [`admission`]: the bounded queue in front of password hashing, per client address and in
//!   total.
//! - [`checks`]: checks of a secret (a password today) reserved against the login throttle
//!   before it is checked, shared by login and password change.
//! - [`signing_keys`]: the first signing key, made once and shared through the store, and
//!   rotation.
//! - [`revocation_view`]: the revocation view, the in-memory set of revoked sessions (its port
//!   is `ports::RevocationView`), so that authenticating a token needs no database query. One
//!   name each: the *revocation view* is that set; [`revoke`] is the use case that ends one
//!   session; [`sessions`] is a user's sessions (list, end one of one's own, end all).
//! - [`subscribers`]: the one way to consume the log: a subscriber names its event types and
//!   handles batches; one runner claims, wakes, polls, retries and reports lag for all.
//! - [`instance`]: the subscribers that keep this process's memory current with what any
//!   process records (the revoked sessions, the signing keys).
//! - [`audit`]: the event log filtered, paged and redacted, for the HTTP API and the CLI alike.
//! - [`erase`]: erasing a user: every session ends and their personal data in the log can no
//!   longer be read (the store destroys the key that sealed it).
//! - [`status`]: disabling and enabling an account (sessions end at once; login says
//!   `Account disabled` to whoever knows the password).
//! - [`email`]: a user's address and the codes mailed to it (verification, password reset);
//!   [`outbox`]: the subscriber that mails them, at least once.
//! - [`directory`]: the user directory, listed and searched from the users projection.
//! - [`feed`]: the event feed's consumers, and the one reader of new events they share.
//! - [`signed_checkpoints`]: the hash chain's head signed with a key outside the database, and
//!   the check of a checkpoint kept from before against the log as it is now.
//! - [`streams`]: loading aggregates, building events to append, and the load, decide, append,
//!   retry-on-conflict loop every use case runs.
//! - `testing` (feature `testing`, and in unit tests): the in-memory event store, fixtures and
//!   a fixed clock, for tests written as given events / when / then events.

pub mod access;
pub mod admission;
pub mod audit;
pub mod authenticate;
pub mod checks;
pub mod directory;
pub mod email;
pub mod erase;
pub mod feed;
pub mod instance;
pub mod login;
pub mod me;
pub mod outbox;
pub mod password;
pub mod ports;
pub mod refresh;
pub mod register;
pub mod revocation_view;
pub mod revoke;
pub mod roles;
pub mod sessions;
pub mod signed_checkpoints;
pub mod signing_keys;
pub mod status;
pub mod streams;
pub mod subscribers;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

use time::Duration;

pub use authlog_domain::attempts::Throttle;

/// How long tokens and sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    pub access: Duration,
    pub refresh: Duration,
    /// A session ends this long after its login, however often it is refreshed.
    pub session_max_age: Duration,
    /// How long after a rotation the refresh token it retired may still be presented, as a
    /// retry of that rotation, and get the same new pair again. Zero: never (any reuse revokes
    /// the session).
    pub refresh_reuse_grace: Duration,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            access: Duration::minutes(15),
            refresh: Duration::days(30),
            session_max_age: Duration::days(30),
            refresh_reuse_grace: Duration::ZERO,
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
