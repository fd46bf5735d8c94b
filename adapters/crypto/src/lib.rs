//! authlog's cryptography, and its other sources of the outside world's state.
//!
//! - [`password`]: Argon2id hashing on the blocking pool behind a semaphore sized to the cores,
//!   with a dummy hash so that logins for unknown users cost the same as wrong passwords.
//! - [`jwt`]: signing and verifying tokens (EdDSA/Ed25519 by default, HS256 opt-in) with
//!   jsonwebtoken: one allowed algorithm, `kid` lookup, `iss`, `aud`, `nbf`, `exp` and `type`
//!   checks; a key ring that rotation replaces while requests are served.
//! - [`checkpoint_key`]: the Ed25519 key that signs checkpoints of the hash chain, derived
//!   from the master key and never stored.
//! - [`cache`]: the bounded cache of verified tokens in front of [`jwt`] (the hot path).
//! - [`keys`]: generating Ed25519 signing keys, named by their RFC 7638 thumbprint.
//! - [`master_key`]: the key file outside the database, and sealing (AES-256-GCM) under it.
//! - [`sealed_keys`]: the signing keys sealed under the master key where they are stored.
//! - [`names`]: names typed at password checks that are no account's, concealed by a keyed
//!   hash under a key of the day, kept for a retention period.
//! - [`personal`]: users' data keys, which seal their personal data in the log; erasing a
//!   user destroys theirs.
//! - [`system`]: the system clock (the only reader of the system's time), UUIDv7 ids and random
//!   secrets; with the `testing` feature, a clock tests can move forward.

pub mod cache;
pub mod checkpoint_key;
pub mod jwt;
pub mod keys;
pub mod master_key;
pub mod names;
pub mod password;
pub mod personal;
pub mod sealed_keys;
pub mod system;

pub use cache::VerifiedTokenCache;
pub use jwt::{check_hs256_secret, JwtConfig, JwtTokens, MIN_HS256_SECRET};
pub use keys::Ed25519KeyGenerator;
pub use master_key::MasterKey;
pub use names::ConcealedNames;
pub use password::{Argon2Hasher, Argon2Params};
pub use personal::DataKeys;
pub use sealed_keys::SealedKeyStore;
#[cfg(feature = "testing")]
pub use system::AdjustableClock;
pub use system::{RandomCodes, SystemClock, UuidV7Ids};
