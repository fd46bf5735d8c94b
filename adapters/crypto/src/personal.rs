//! Users' data keys: a random AES-256-GCM key per user, sealed under the master key for the
//! store to keep (bound to the user's id, so a sealed key copied to another user's row does not
//! open). What a data key seals is framed as the master key's sealing is (magic, nonce,
//! ciphertext and tag), with its own random nonce each time.

use std::sync::Arc;

use authlog_application::ports::{DataKey, PersonalData, SealFailed};
use authlog_domain::UserId;

use crate::master_key::{random_key, MasterKey};

/// Makes and opens users' data keys under the master key.
pub struct DataKeys {
    master: Arc<MasterKey>,
}

impl DataKeys {
    pub fn new(master: Arc<MasterKey>) -> Self {
        Self { master }
    }
}

/// What a user's key is sealed for: it opens as that user's key only.
fn purpose(user: UserId) -> String {
    format!("authlog data key of user {user}")
}

/// One user's key, open. (The same cipher and framing as the master key's.)
struct UserKey(MasterKey);

impl DataKey for UserKey {
    fn seal(&self, purpose: &[u8], clear: &[u8]) -> Result<Vec<u8>, SealFailed> {
        self.0
            .seal(purpose, clear)
            .map_err(|e| SealFailed(e.to_string()))
    }

    fn open(&self, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealFailed> {
        self.0
            .open(purpose, sealed)
            .map(|clear| clear.to_vec())
            .map_err(|e| SealFailed(e.to_string()))
    }
}

impl PersonalData for DataKeys {
    fn new_key(&self, user: UserId) -> Result<(Box<dyn DataKey>, Vec<u8>), SealFailed> {
        let bytes = random_key().map_err(|e| SealFailed(e.to_string()))?;
        let sealed = self
            .master
            .seal(purpose(user).as_bytes(), bytes.as_ref())
            .map_err(|e| SealFailed(e.to_string()))?;
        Ok((Box::new(UserKey(MasterKey::from_bytes(&bytes))), sealed))
    }

    fn open_key(&self, user: UserId, sealed: &[u8]) -> Result<Box<dyn DataKey>, SealFailed> {
        let bytes = self
            .master
            .open(purpose(user).as_bytes(), sealed)
            .map_err(|_| {
                SealFailed(format!(
                    "the data key of user {user} does not open under this master key"
                ))
            })?;
        let bytes: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SealFailed(format!("the data key of user {user} is not 32 bytes")))?;
        Ok(Box::new(UserKey(MasterKey::from_bytes(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn user(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn a_users_key_opens_what_it_sealed_for_the_same_purpose_only() {
        let keys = DataKeys::new(Arc::new(MasterKey::generate().unwrap()));
        let (key, sealed_key) = keys.new_key(user(1)).unwrap();
        let sealed = key.seal(b"username", b"alice").unwrap();
        assert!(!sealed.windows(5).any(|w| w == b"alice"));
        let reopened = keys.open_key(user(1), &sealed_key).unwrap();
        assert_eq!(reopened.open(b"username", &sealed).unwrap(), b"alice");
        assert!(reopened.open(b"user_agent", &sealed).is_err());
        // Another user's row, another master key: neither opens the key.
        assert!(keys.open_key(user(2), &sealed_key).is_err());
        let other = DataKeys::new(Arc::new(MasterKey::generate().unwrap()));
        assert!(other.open_key(user(1), &sealed_key).is_err());
        // Two users' keys are two keys.
        let (second, _) = keys.new_key(user(2)).unwrap();
        assert!(second.open(b"username", &sealed).is_err());
    }
}
