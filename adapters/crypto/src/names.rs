//! Names typed at password checks that are no account's, concealed: an HMAC-SHA-256 of the
//! canonical name under a key of the day (UTC), recorded as `name:{day}:{hash}`.
//!
//! Each day's key is random, sealed under the master key where the store keeps it (so every
//! instance conceals a day's names alike), and forgotten after [`RETENTION_DAYS`]. Until then an
//! operator who asks audit for a name finds its checks; after, nobody can tell which name a
//! recorded hash was, not even with the database and the master key. A per-day key also means
//! the same name typed on two days cannot be linked once either key is gone.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use authlog_application::ports::{NameConcealer, NameKeyStore, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};
use zeroize::Zeroizing;

use crate::master_key::MasterKey;

/// How long a day's key is kept: the checks of a name typed that long ago can no longer be
/// found by the name.
pub const RETENTION_DAYS: i64 = 30;

/// Bytes of the HMAC kept: 128 bits, beyond any search for a collision.
const HASH_BYTES: usize = 16;

pub struct ConcealedNames {
    store: Arc<dyn NameKeyStore>,
    master: Arc<MasterKey>,
    /// Opened keys by day: a day's first check is the only one that reads the store.
    opened: RwLock<BTreeMap<String, Zeroizing<Vec<u8>>>>,
}

impl ConcealedNames {
    pub fn new(store: Arc<dyn NameKeyStore>, master: Arc<MasterKey>) -> Self {
        Self {
            store,
            master,
            opened: RwLock::new(BTreeMap::new()),
        }
    }

    /// Forgets the keys past the retention period as of `now`; answers how many. A new day's
    /// first check does it too; this is for a start after a quiet spell.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be written.
    pub async fn forget_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let horizon = day_of(now - Duration::days(RETENTION_DAYS));
        if let Ok(mut opened) = self.opened.write() {
            opened.retain(|day, _| *day >= horizon);
        }
        self.store.forget_name_keys_before(&horizon).await
    }

    /// The key of `day` (today, as of `now`), made and kept if no instance has yet.
    async fn key_of(
        &self,
        day: &str,
        now: OffsetDateTime,
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if let Some(key) = self.opened.read().ok().and_then(|o| o.get(day).cloned()) {
            return Ok(key);
        }
        let sealed = match self.store.name_key(day).await? {
            Some(sealed) => sealed,
            None => {
                let mut fresh = Zeroizing::new(vec![0u8; 32]);
                OsRng.fill_bytes(&mut fresh);
                let sealed = self
                    .master
                    .seal(purpose(day).as_bytes(), &fresh)
                    .map_err(|e| StoreError::Unavailable(format!("sealing a name key: {e}")))?;
                let kept = self.store.add_name_key(day, sealed).await?;
                self.forget_expired(now).await?;
                kept
            }
        };
        let key = self.open(day, &sealed)?;
        if let Ok(mut opened) = self.opened.write() {
            opened.insert(day.to_owned(), key.clone());
        }
        Ok(key)
    }

    fn open(&self, day: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        self.master
            .open(purpose(day).as_bytes(), sealed)
            .map_err(|_| {
                StoreError::Corrupt(format!(
                    "the name key of {day} does not open under the master key"
                ))
            })
    }
}

#[async_trait]
impl NameConcealer for ConcealedNames {
    async fn conceal(&self, canonical: &str, now: OffsetDateTime) -> Result<String, StoreError> {
        let day = day_of(now);
        let key = self.key_of(&day, now).await?;
        concealed(&key, &day, canonical)
    }

    async fn recognisable(&self, canonical: &str) -> Result<Vec<String>, StoreError> {
        let mut forms = Vec::new();
        for (day, sealed) in self.store.name_keys().await? {
            let key = self.open(&day, &sealed)?;
            forms.push(concealed(&key, &day, canonical)?);
        }
        Ok(forms)
    }
}

/// What a day's key is sealed for: it opens as that day's name key and nothing else.
fn purpose(day: &str) -> String {
    format!("authlog name key {day}")
}

/// The UTC day of `at`, as keys are kept by (`2026-11-24`).
fn day_of(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    // Only numeric components of a UTC date: it cannot fail to format.
    utc.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_else(|_| utc.date().to_string())
}

/// `name:{day}:{the first 128 bits of HMAC-SHA-256(key, canonical), base64url}`.
fn concealed(key: &[u8], day: &str, canonical: &str) -> Result<String, StoreError> {
    // HMAC takes a key of any length; the error is for the type's sake.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|e| StoreError::Corrupt(format!("the name key of {day}: {e}")))?;
    mac.update(canonical.as_bytes());
    let digest = mac.finalize().into_bytes();
    Ok(format!(
        "name:{day}:{}",
        URL_SAFE_NO_PAD.encode(&digest[..HASH_BYTES])
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use authlog_application::testing::InMemoryEventStore;
    use time::macros::datetime;

    fn names() -> (ConcealedNames, Arc<InMemoryEventStore>) {
        let store = Arc::new(InMemoryEventStore::new());
        let master = Arc::new(MasterKey::generate().unwrap());
        (ConcealedNames::new(store.clone(), master), store)
    }

    const DAY: OffsetDateTime = datetime!(2026-11-24 10:00 UTC);

    #[tokio::test]
    async fn a_name_is_concealed_alike_within_a_day_and_unlinkably_across_days() {
        let (names, store) = names();
        let first = names.conceal("mallory", DAY).await.unwrap();
        assert!(first.starts_with("name:2026-11-24:"), "{first}");
        assert!(!first.contains("mallory"));
        assert_eq!(first.len(), "name:2026-11-24:".len() + 22);
        assert_eq!(
            names
                .conceal("mallory", DAY + Duration::hours(13))
                .await
                .unwrap(),
            first
        );
        assert_ne!(names.conceal("mallorz", DAY).await.unwrap(), first);
        let next_day = names
            .conceal("mallory", DAY + Duration::days(1))
            .await
            .unwrap();
        assert!(next_day.starts_with("name:2026-11-25:"));
        assert_ne!(next_day[16..], first[16..]);
        // The store keeps each day's key sealed, never in clear.
        let kept = store.name_keys().await.unwrap();
        assert_eq!(kept.len(), 2);
        assert!(kept
            .iter()
            .all(|(_, sealed)| crate::master_key::is_sealed(sealed)));
        // Audit finds both.
        let mut forms = names.recognisable("mallory").await.unwrap();
        forms.sort();
        assert_eq!(forms, [first, next_day]);
    }

    #[tokio::test]
    async fn another_instance_on_the_same_store_conceals_alike() {
        let store = Arc::new(InMemoryEventStore::new());
        let master = Arc::new(MasterKey::generate().unwrap());
        let one = ConcealedNames::new(store.clone(), master.clone());
        let other = ConcealedNames::new(store, master);
        assert_eq!(
            one.conceal("eve", DAY).await.unwrap(),
            other.conceal("eve", DAY).await.unwrap()
        );
    }

    #[tokio::test]
    async fn keys_past_the_retention_are_forgotten_and_their_names_no_longer_found() {
        let (names, store) = names();
        let old = names.conceal("mallory", DAY).await.unwrap();
        let later = DAY + Duration::days(RETENTION_DAYS + 1);
        let new = names.conceal("mallory", later).await.unwrap();
        let kept: Vec<String> = store
            .name_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|(day, _)| day)
            .collect();
        assert_eq!(kept, ["2026-12-25"]);
        assert_eq!(names.recognisable("mallory").await.unwrap(), [new]);
        assert!(!names.recognisable("mallory").await.unwrap().contains(&old));
        assert!(
            names.opened.read().unwrap().len() == 1,
            "no copy kept in memory"
        );
    }
}
