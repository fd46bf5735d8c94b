//! The signing keys: made on the first start, stored where every instance can read them,
//! rotated and revoked from the command line.

use std::sync::Arc;

use authlog_domain::event::{SigningKeyRevoked, SigningKeyRotated};
use authlog_domain::{Event, StreamId};

use crate::ports::{
    Clock, ExpectedVersion, KeyError, KeyGenerator, KeyStore, Metadata, NewEvent, SigningKey,
    StoreError, StreamWrite,
};
use crate::streams::settled;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    #[error(transparent)]
    Generation(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the key store reports no key right after adding one")]
    Vanished,
    #[error("no signing key {0:?} is in force (unknown, or already revoked)")]
    UnknownKey(String),
}

pub struct SigningKeys {
    keys: Arc<dyn KeyStore>,
    generator: Arc<dyn KeyGenerator>,
    clock: Arc<dyn Clock>,
}

impl SigningKeys {
    pub fn new(
        keys: Arc<dyn KeyStore>,
        generator: Arc<dyn KeyGenerator>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            keys,
            generator,
            clock,
        }
    }

    /// Every stored key, oldest first, making the first one if there is none. The first key
    /// and its `SigningKeyRotated` (public half only) are stored in one transaction that
    /// expects no keys stream; an instance that loses that race uses the winner's key.
    ///
    /// # Errors
    /// [`SigningKeyError`] when no key can be made or stored.
    pub async fn load_or_create(&self) -> Result<Vec<SigningKey>, SigningKeyError> {
        let existing = self.keys.signing_keys().await?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        // Losing the race to another instance is fine: its key is read below.
        self.add(ExpectedVersion::NoStream).await?;
        let keys = self.keys.signing_keys().await?;
        if keys.is_empty() {
            return Err(SigningKeyError::Vanished);
        }
        Ok(keys)
    }

    /// Makes a new signing key and records `SigningKeyRotated`, in one transaction. Running
    /// instances follow the log, load the new key and sign with it; the old keys keep verifying
    /// until the tokens they signed have expired. Answers the new key's id.
    ///
    /// # Errors
    /// [`SigningKeyError`] when no key can be made or stored.
    pub async fn rotate(&self) -> Result<String, SigningKeyError> {
        // `Any` expects nothing, so it cannot lose a race.
        self.add(ExpectedVersion::Any)
            .await?
            .ok_or_else(|| StoreError::Unavailable("a rotation lost a race it cannot lose".into()))
            .map_err(SigningKeyError::from)
    }

    /// Revokes key `kid`, thought compromised: from the next poll of each instance's follower
    /// (well within a second) no instance accepts a token it signed, the JWKS drops it, and
    /// its private key is erased from the store (its public key replaced by a tombstone). A
    /// new key replaces it, in the same transaction: `SigningKeyRevoked` and the new key's
    /// `SigningKeyRotated` are recorded together. The replacement is made even when `kid` no
    /// longer signs: it costs nothing, and an older release, which passes over
    /// `SigningKeyRevoked`, reloads its keys on the rotation and so stops trusting the revoked
    /// one too (it finds the tombstone, which verifies nothing). Answers the new key's id.
    ///
    /// Every token `kid` signed stops working, refresh tokens included: their users log in
    /// again.
    ///
    /// # Errors
    /// [`SigningKeyError::UnknownKey`] when no unrevoked key has that id (nothing is stored);
    /// [`SigningKeyError`] when no key can be made or stored.
    pub async fn revoke(&self, kid: &str) -> Result<String, SigningKeyError> {
        let keys = self.keys.signing_keys().await?;
        if !keys.iter().any(|k| k.kid == kid && !k.is_revoked()) {
            return Err(SigningKeyError::UnknownKey(kid.to_owned()));
        }
        let now = self.clock.now();
        let replacement = self.generator.generate(now)?;
        // A key made only for its public half: its private half is dropped right here.
        let tombstone = self.generator.generate(now)?.public_key;
        let new_kid = replacement.kid.clone();
        let revoked = NewEvent {
            event: Event::SigningKeyRevoked(SigningKeyRevoked {
                kid: kid.to_owned(),
            }),
            subject: None,
            metadata: Metadata::default(),
            occurred_at: now,
        };
        let events = vec![revoked, rotated(&replacement, now)];
        // `Any` expects nothing, so it cannot lose a race; two revocations of one key racing
        // both record theirs, and the key keeps the first revocation time.
        let write = StreamWrite::new(StreamId::signing_keys(), ExpectedVersion::Any, events);
        settled(
            self.keys
                .revoke_signing_key(kid, now, tombstone, replacement, write)
                .await,
        )?
        .ok_or_else(|| StoreError::Unavailable("a revocation lost a race it cannot lose".into()))?;
        Ok(new_kid)
    }

    /// Makes a key and stores it with its event if the keys stream is at `expected`; answers
    /// its id, or `None` when the expectation failed and nothing was stored.
    async fn add(&self, expected: ExpectedVersion) -> Result<Option<String>, SigningKeyError> {
        let now = self.clock.now();
        let key = self.generator.generate(now)?;
        let kid = key.kid.clone();
        let event = rotated(&key, now);
        let write = StreamWrite::new(StreamId::signing_keys(), expected, vec![event]);
        Ok(settled(self.keys.add_signing_key(key, write).await)?.map(|_| kid))
    }
}

/// The `SigningKeyRotated` event for `key`: its public half only.
fn rotated(key: &SigningKey, now: time::OffsetDateTime) -> NewEvent {
    NewEvent {
        event: Event::SigningKeyRotated(SigningKeyRotated {
            kid: key.kid.clone(),
            algorithm: key.algorithm.clone(),
            public_key: base64url(&key.public_key),
        }),
        subject: None,
        metadata: Metadata::default(),
        occurred_at: now,
    }
}

/// Base64url without padding, as JWKs spell keys (the JWK `x`).
fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockKeyGenerator;
    use crate::testing::{clock, InMemoryEventStore, NOW};

    fn key(kid: &str) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            algorithm: "EdDSA".into(),
            private_der: vec![1, 2, 3],
            public_key: vec![4, 5, 6],
            created_at: NOW,
            revoked_at: None,
        }
    }

    fn generating(kids: &'static [&'static str]) -> Arc<MockKeyGenerator> {
        let mut generator = MockKeyGenerator::new();
        let mut next = kids.iter();
        generator
            .expect_generate()
            .times(kids.len())
            .returning(move |_| Ok(key(next.next().copied().unwrap_or("extra"))));
        Arc::new(generator)
    }

    fn rotation(kid: &str) -> Event {
        Event::SigningKeyRotated(SigningKeyRotated {
            kid: kid.into(),
            algorithm: "EdDSA".into(),
            public_key: base64url(&[4, 5, 6]),
        })
    }

    #[tokio::test]
    async fn the_first_start_makes_a_key_and_records_its_public_half_with_it() {
        let store = Arc::new(InMemoryEventStore::new());
        let keys = SigningKeys::new(store.clone(), generating(&["k1"]), clock())
            .load_or_create()
            .await
            .unwrap();
        assert_eq!(keys, vec![key("k1")]);
        assert_eq!(store.events_after(0), vec![rotation("k1")]);
    }

    #[tokio::test]
    async fn a_later_start_loads_the_stored_keys_and_makes_none() {
        let store = Arc::new(InMemoryEventStore::new());
        SigningKeys::new(store.clone(), generating(&["k1"]), clock())
            .load_or_create()
            .await
            .unwrap();
        let keys = SigningKeys::new(store.clone(), generating(&[]), clock())
            .load_or_create()
            .await
            .unwrap();
        assert_eq!(keys, vec![key("k1")]);
        assert_eq!(store.position(), 1);
    }

    #[tokio::test]
    async fn an_instance_that_loses_the_race_for_the_first_key_uses_the_winners() {
        let store = Arc::new(InMemoryEventStore::new());
        // Another instance stored its first key in the meantime: the keys stream exists.
        store.given(StreamId::signing_keys(), [rotation("theirs")]);
        store
            .add_signing_key(
                key("theirs"),
                StreamWrite::unchanged(StreamId::signing_keys(), ExpectedVersion::Any),
            )
            .await
            .unwrap();
        let keys = SigningKeys::new(store.clone(), generating(&[]), clock())
            .load_or_create()
            .await
            .unwrap();
        assert_eq!(keys, vec![key("theirs")]);
    }

    #[tokio::test]
    async fn rotation_stores_a_new_key_with_its_event() {
        let store = Arc::new(InMemoryEventStore::new());
        let keys = SigningKeys::new(store.clone(), generating(&["k1", "k2"]), clock());
        keys.load_or_create().await.unwrap();
        assert_eq!(keys.rotate().await, Ok("k2".to_owned()));
        assert_eq!(store.events_after(1), vec![rotation("k2")]);
        assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn revoking_a_key_erases_it_and_stores_its_replacement_with_both_events() {
        let store = Arc::new(InMemoryEventStore::new());
        let keys = SigningKeys::new(store.clone(), generating(&["k1", "k2", "tomb"]), clock());
        keys.load_or_create().await.unwrap();

        assert_eq!(keys.revoke("k1").await, Ok("k2".to_owned()));

        assert_eq!(
            store.events_after(1),
            vec![
                Event::SigningKeyRevoked(SigningKeyRevoked { kid: "k1".into() }),
                rotation("k2"),
            ]
        );
        let stored = store.signing_keys().await.unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].revoked_at, Some(NOW));
        assert!(stored[0].private_der.is_empty());
        assert_eq!(stored[0].public_key, key("tomb").public_key);
        assert_eq!(stored[1], key("k2"));
    }

    #[tokio::test]
    async fn an_unknown_or_already_revoked_key_is_refused_and_nothing_is_stored() {
        let store = Arc::new(InMemoryEventStore::new());
        let keys = SigningKeys::new(store.clone(), generating(&["k1", "k2", "tomb"]), clock());
        keys.load_or_create().await.unwrap();
        keys.revoke("k1").await.unwrap();
        let before = store.position();
        let refused = SigningKeys::new(store.clone(), generating(&[]), clock());

        assert_eq!(
            refused.revoke("nope").await,
            Err(SigningKeyError::UnknownKey("nope".into()))
        );
        assert_eq!(
            refused.revoke("k1").await,
            Err(SigningKeyError::UnknownKey("k1".into()))
        );
        assert_eq!(store.position(), before);
    }
}
