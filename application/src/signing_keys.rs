//! The signing keys: made on the first start, stored where every instance can read them.

use std::sync::Arc;

use authlog_domain::event::SigningKeyRotated;
use authlog_domain::{Event, StreamId};

use crate::ports::{
    AppendError, Clock, EventStore, ExpectedVersion, KeyError, KeyGenerator, KeyStore, Metadata,
    NewEvent, SigningKey, StoreError,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    #[error(transparent)]
    Generation(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the key store reports no key right after adding one")]
    Vanished,
}

impl From<AppendError> for SigningKeyError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Store(e) => Self::Store(e),
            // The keys stream is appended with `Any`, so there is no conflict to report.
            AppendError::Conflict { .. } => Self::Store(StoreError::Unavailable(e.to_string())),
        }
    }
}

pub struct SigningKeys {
    keys: Arc<dyn KeyStore>,
    generator: Arc<dyn KeyGenerator>,
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
}

impl SigningKeys {
    pub fn new(
        keys: Arc<dyn KeyStore>,
        generator: Arc<dyn KeyGenerator>,
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            keys,
            generator,
            store,
            clock,
        }
    }

    /// Every stored key, oldest first, making the first one if there is none. The instance that
    /// stores the first key also records `SigningKeyRotated` (public half only); an instance
    /// that loses that race uses the winner's key.
    ///
    /// # Errors
    /// [`SigningKeyError`] when no key can be made or stored.
    pub async fn load_or_create(&self) -> Result<Vec<SigningKey>, SigningKeyError> {
        let existing = self.keys.signing_keys().await?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        let now = self.clock.now();
        let key = self.generator.generate(now)?;
        let event = rotated(&key, now);
        if self.keys.add_first_signing_key(key).await? {
            self.store
                .append(StreamId::signing_keys(), ExpectedVersion::Any, vec![event])
                .await?;
        }
        let keys = self.keys.signing_keys().await?;
        if keys.is_empty() {
            return Err(SigningKeyError::Vanished);
        }
        Ok(keys)
    }

    /// Makes a new signing key and records `SigningKeyRotated`. Running instances follow the
    /// log, load the new key and sign with it; the old keys keep verifying until the tokens
    /// they signed have expired. Answers the new key's id.
    ///
    /// # Errors
    /// [`SigningKeyError`] when no key can be made or stored.
    pub async fn rotate(&self) -> Result<String, SigningKeyError> {
        let now = self.clock.now();
        let key = self.generator.generate(now)?;
        let kid = key.kid.clone();
        let event = rotated(&key, now);
        self.keys.add_signing_key(key).await?;
        self.store
            .append(StreamId::signing_keys(), ExpectedVersion::Any, vec![event])
            .await?;
        Ok(kid)
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
    use crate::ports::{Appended, MockEventStore, MockKeyGenerator, MockKeyStore};
    use crate::testing::{clock, NOW};

    fn key(kid: &str) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            algorithm: "EdDSA".into(),
            private_der: vec![1, 2, 3],
            public_key: vec![0xfb, 0xff],
            created_at: NOW,
        }
    }

    #[test]
    fn base64url_has_no_padding_and_the_url_alphabet() {
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"f"), "Zg");
    }

    #[tokio::test]
    async fn rotation_stores_a_new_key_and_records_its_public_half() {
        let mut keys = MockKeyStore::new();
        keys.expect_add_signing_key()
            .withf(|k| k.kid == "next")
            .return_once(|_| Ok(()));
        let mut generator = MockKeyGenerator::new();
        generator.expect_generate().return_once(|_| Ok(key("next")));
        let mut store = MockEventStore::new();
        store
            .expect_append()
            .withf(|_, _, events| matches!(&events[0].event, Event::SigningKeyRotated(e) if e.kid == "next"))
            .return_once(|_, _, _| Ok(Appended { stream_version: 2, position: 7 }));
        let service = SigningKeys::new(
            Arc::new(keys),
            Arc::new(generator),
            Arc::new(store),
            clock(),
        );

        assert_eq!(service.rotate().await, Ok("next".to_owned()));
    }

    #[tokio::test]
    async fn existing_keys_are_used_as_they_are() {
        let mut keys = MockKeyStore::new();
        keys.expect_signing_keys()
            .return_once(|| Ok(vec![key("old")]));
        let mut generator = MockKeyGenerator::new();
        generator.expect_generate().never();
        let service = SigningKeys::new(
            Arc::new(keys),
            Arc::new(generator),
            Arc::new(MockEventStore::new()),
            clock(),
        );

        assert_eq!(service.load_or_create().await, Ok(vec![key("old")]));
    }

    #[tokio::test]
    async fn the_first_key_is_made_stored_and_recorded_without_its_private_half() {
        let mut keys = MockKeyStore::new();
        let mut listed = 0;
        keys.expect_signing_keys().times(2).returning(move || {
            listed += 1;
            Ok(if listed == 1 {
                vec![]
            } else {
                vec![key("new")]
            })
        });
        keys.expect_add_first_signing_key()
            .return_once(|_| Ok(true));
        let mut generator = MockKeyGenerator::new();
        generator.expect_generate().return_once(|_| Ok(key("new")));
        let mut store = MockEventStore::new();
        store
            .expect_append()
            .withf(|stream, _, events| {
                let Event::SigningKeyRotated(e) = &events[0].event else {
                    return false;
                };
                stream.as_str() == "keys" && e.kid == "new" && e.public_key == "-_8"
            })
            .return_once(|_, _, _| {
                Ok(Appended {
                    stream_version: 1,
                    position: 1,
                })
            });
        let service = SigningKeys::new(
            Arc::new(keys),
            Arc::new(generator),
            Arc::new(store),
            clock(),
        );

        assert_eq!(service.load_or_create().await, Ok(vec![key("new")]));
    }

    #[tokio::test]
    async fn losing_the_first_key_race_uses_the_winners_key_and_records_nothing() {
        let mut keys = MockKeyStore::new();
        let mut listed = 0;
        keys.expect_signing_keys().times(2).returning(move || {
            listed += 1;
            Ok(if listed == 1 {
                vec![]
            } else {
                vec![key("winner")]
            })
        });
        keys.expect_add_first_signing_key()
            .return_once(|_| Ok(false));
        let mut generator = MockKeyGenerator::new();
        generator
            .expect_generate()
            .return_once(|_| Ok(key("loser")));
        let mut store = MockEventStore::new();
        store.expect_append().never();
        let service = SigningKeys::new(
            Arc::new(keys),
            Arc::new(generator),
            Arc::new(store),
            clock(),
        );

        assert_eq!(service.load_or_create().await, Ok(vec![key("winner")]));
    }
}
