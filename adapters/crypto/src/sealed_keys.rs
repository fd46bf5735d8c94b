//! The signing keys, sealed under the master key where they are stored.
//!
//! [`SealedKeyStore`] wraps the store's [`KeyStore`]: what goes in is sealed, what comes out is
//! opened, so neither the use cases nor the token service ever see a sealed key, and the
//! database never sees an open one. Each key is sealed for its own `kid`, so a sealed key copied
//! into another row does not open.
//!
//! Keys that a release before sealing stored in clear (or an older instance still running
//! beside this one in a rolling upgrade) are read as they are; [`SealedKeyStore::adopt`] seals
//! them at start.

use std::sync::Arc;

use async_trait::async_trait;
use authlog_application::ports::{
    AppendError, Appended, KeyStore, SigningKey, StoreError, StreamWrite,
};
use time::OffsetDateTime;

use crate::master_key::{is_sealed, MasterKey, SealError};

pub struct SealedKeyStore {
    inner: Arc<dyn KeyStore>,
    master: Arc<MasterKey>,
}

/// The stored keys do not open under the master key that was given.
#[derive(Debug, thiserror::Error)]
#[error(
    "the master key does not open signing key {kid}: this database's secrets were sealed under \
     another master key"
)]
pub struct WrongMasterKey {
    pub kid: String,
}

/// Why [`SealedKeyStore::adopt`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error(transparent)]
    WrongMasterKey(#[from] WrongMasterKey),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SealedKeyStore {
    pub fn new(inner: Arc<dyn KeyStore>, master: Arc<MasterKey>) -> Self {
        Self { inner, master }
    }

    /// Makes the stored keys this master key's, at start. First checks that it opens every
    /// sealed key, so a wrong key file is found at start rather than at the first login, and
    /// before anything is written under it; then seals every key stored in clear (by a release
    /// before sealing, or an older instance still running beside this one). Answers how many
    /// it sealed.
    ///
    /// # Errors
    /// [`AdoptError::WrongMasterKey`] naming the first sealed key that does not open (nothing is
    /// written); [`AdoptError::Store`] when the keys cannot be read or written.
    pub async fn adopt(&self) -> Result<usize, AdoptError> {
        let stored = self.inner.signing_keys().await?;
        if let Some(key) = stored.iter().find(|key| {
            is_sealed(&key.private_der)
                && self
                    .master
                    .open(&purpose(&key.kid), &key.private_der)
                    .is_err()
        }) {
            return Err(WrongMasterKey {
                kid: key.kid.clone(),
            }
            .into());
        }
        let mut sealed = 0;
        for key in stored {
            if key.private_der.is_empty() || is_sealed(&key.private_der) {
                continue;
            }
            let replacement = self
                .master
                .seal(&purpose(&key.kid), &key.private_der)
                .map_err(sealing_failed)?;
            if self
                .inner
                .replace_private_key(&key.kid, key.private_der, replacement)
                .await?
            {
                sealed += 1;
            }
        }
        Ok(sealed)
    }

    fn sealed(&self, mut key: SigningKey) -> Result<SigningKey, StoreError> {
        if !key.private_der.is_empty() {
            key.private_der = self
                .master
                .seal(&purpose(&key.kid), &key.private_der)
                .map_err(sealing_failed)?;
        }
        Ok(key)
    }
}

fn sealing_failed(error: SealError) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// What a signing key is sealed for: the associated data that ties it to its row.
pub fn purpose(kid: &str) -> Vec<u8> {
    format!("authlog signing key {kid}").into_bytes()
}

#[async_trait]
impl KeyStore for SealedKeyStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKey>, StoreError> {
        let mut keys = self.inner.signing_keys().await?;
        for key in &mut keys {
            if is_sealed(&key.private_der) {
                let open = self
                    .master
                    .open(&purpose(&key.kid), &key.private_der)
                    .map_err(|_| {
                        StoreError::Corrupt(
                            WrongMasterKey {
                                kid: key.kid.clone(),
                            }
                            .to_string(),
                        )
                    })?;
                key.private_der = open.to_vec();
            }
        }
        Ok(keys)
    }

    async fn add_signing_key(
        &self,
        key: SigningKey,
        rotated: StreamWrite,
    ) -> Result<Appended, AppendError> {
        self.inner.add_signing_key(self.sealed(key)?, rotated).await
    }

    async fn revoke_signing_key(
        &self,
        kid: &str,
        at: OffsetDateTime,
        tombstone: Vec<u8>,
        replacement: SigningKey,
        events: StreamWrite,
    ) -> Result<Appended, AppendError> {
        let replacement = self.sealed(replacement)?;
        self.inner
            .revoke_signing_key(kid, at, tombstone, replacement, events)
            .await
    }

    async fn replace_private_key(
        &self,
        kid: &str,
        current: Vec<u8>,
        replacement: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.inner
            .replace_private_key(kid, current, replacement)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authlog_application::ports::{ExpectedVersion, KeyGenerator};
    use authlog_application::testing::InMemoryEventStore;
    use authlog_domain::StreamId;

    use crate::Ed25519KeyGenerator;

    fn key() -> SigningKey {
        Ed25519KeyGenerator
            .generate(OffsetDateTime::UNIX_EPOCH)
            .unwrap()
    }

    fn write() -> StreamWrite {
        StreamWrite::new(StreamId::signing_keys(), ExpectedVersion::Any, vec![])
    }

    #[tokio::test]
    async fn keys_are_stored_sealed_and_read_open() {
        let inner = Arc::new(InMemoryEventStore::default());
        let master = Arc::new(MasterKey::generate().unwrap());
        let sealed = SealedKeyStore::new(inner.clone(), master);
        let key = key();
        sealed.add_signing_key(key.clone(), write()).await.unwrap();

        let stored = inner.signing_keys().await.unwrap();
        assert!(is_sealed(&stored[0].private_der));
        assert_eq!(sealed.signing_keys().await.unwrap(), vec![key]);
        assert_eq!(sealed.adopt().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn keys_stored_in_clear_are_read_and_then_sealed_once() {
        let inner = Arc::new(InMemoryEventStore::default());
        let key = key();
        inner.add_signing_key(key.clone(), write()).await.unwrap();
        let sealed = SealedKeyStore::new(inner.clone(), Arc::new(MasterKey::generate().unwrap()));
        assert_eq!(sealed.signing_keys().await.unwrap(), vec![key.clone()]);

        assert_eq!(sealed.adopt().await.unwrap(), 1);
        assert_eq!(sealed.adopt().await.unwrap(), 0);
        assert!(is_sealed(
            &inner.signing_keys().await.unwrap()[0].private_der
        ));
        assert_eq!(sealed.signing_keys().await.unwrap(), vec![key]);
    }

    #[tokio::test]
    async fn another_master_key_is_refused_naming_the_key_and_seals_nothing() {
        let inner = Arc::new(InMemoryEventStore::default());
        let first = SealedKeyStore::new(inner.clone(), Arc::new(MasterKey::generate().unwrap()));
        let sealed_key = key();
        first
            .add_signing_key(sealed_key.clone(), write())
            .await
            .unwrap();

        // An older instance adds a key in clear beside the sealed one.
        let mut in_clear = key();
        in_clear.created_at += time::Duration::seconds(1);
        inner
            .add_signing_key(in_clear.clone(), write())
            .await
            .unwrap();

        let other = SealedKeyStore::new(inner.clone(), Arc::new(MasterKey::generate().unwrap()));
        let error = other.adopt().await.unwrap_err();
        assert!(matches!(error, AdoptError::WrongMasterKey(_)));
        assert!(error.to_string().contains(&sealed_key.kid), "{error}");
        assert!(matches!(
            other.signing_keys().await,
            Err(StoreError::Corrupt(_))
        ));
        // Nothing was sealed under the wrong key: the key in clear is as it was.
        let stored = inner.signing_keys().await.unwrap();
        assert_eq!(stored[1].private_der, in_clear.private_der);
    }
}
