//! The ports: what the use cases need from the outside world, as traits. Adapters implement
//! them; tests substitute the mockall mocks (`Mock*`, behind the `mocks` feature for other
//! crates).

pub mod clock;
pub mod hasher;
pub mod ids;
pub mod keys;
pub mod revocations;
pub mod store;
pub mod tokens;

pub use clock::Clock;
pub use hasher::{HashError, PasswordHasher};
pub use ids::IdGenerator;
pub use keys::{KeyError, KeyGenerator, KeyStore, SigningKey};
pub use revocations::RevocationView;
pub use store::{
    AppendError, Appended, AuditFilter, EventStore, ExpectedVersion, Metadata, NewEvent,
    RecordedEvent, StoreError,
};
pub use tokens::{Claims, PublicKey, TokenError, TokenKind, TokenService};

#[cfg(any(test, feature = "mocks"))]
pub use self::{
    clock::MockClock, hasher::MockPasswordHasher, ids::MockIdGenerator, keys::MockKeyGenerator,
    keys::MockKeyStore, revocations::MockRevocationView, store::MockEventStore,
    tokens::MockTokenService,
};
