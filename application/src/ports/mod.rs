//! The ports: what the use cases need from the outside world, as traits. Adapters implement
//! them; tests substitute the in-memory event store (`crate::testing`) or the mockall mocks
//! (`Mock*`, behind the `mocks` feature for other crates).

pub mod chain;
pub mod checkpoints;
pub mod clock;
pub mod hasher;
pub mod ids;
pub mod keys;
pub mod mail;
pub mod names;
pub mod personal;
pub mod read_models;
pub mod revocation_view;
pub mod store;
pub mod tokens;

pub use chain::{Chain, ChainLink, CheckpointKey};
pub use checkpoints::{Checkpoint, Checkpoints};
pub use clock::Clock;
pub use hasher::{HashError, PasswordHasher};
pub use ids::IdGenerator;
pub use keys::{KeyError, KeyGenerator, KeyStore, SigningKey};
pub use mail::{CodeGenerator, Mail, MailError, Mailer, CODE_DIGITS};
pub use names::{NameConcealer, NameKeyStore};
pub use personal::{DataKey, PersonalData, SealFailed};
pub use read_models::{
    ProjectionStatus, ReadModels, RecentRevocation, RevokedSession, SessionView, UserQuery,
    UserStatus, UserView,
};
pub use revocation_view::RevocationView;
pub use store::{
    Account, AppendError, Appended, AuditFilter, Beside, EventLog, EventStore, ExpectedVersion,
    Metadata, NameClaim, NewEvent, RecordedEvent, SecretKind, Snapshot, StoreError, StreamWrite,
    SubjectFilter, UserSecret, UserSecrets,
};
pub use tokens::{Claims, Companions, PublicKey, TokenError, TokenKind, TokenService};

#[cfg(any(test, feature = "mocks"))]
pub use self::{
    chain::MockChain, chain::MockCheckpointKey, checkpoints::MockCheckpoints, clock::MockClock,
    hasher::MockPasswordHasher, ids::MockIdGenerator, keys::MockKeyGenerator, keys::MockKeyStore,
    mail::MockCodeGenerator, mail::MockMailer, names::MockNameConcealer, names::MockNameKeyStore,
    read_models::MockReadModels, revocation_view::MockRevocationView, store::MockEventLog,
    store::MockEventStore, store::MockUserSecrets, tokens::MockTokenService,
};
