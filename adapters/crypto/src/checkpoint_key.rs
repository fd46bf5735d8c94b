//! The checkpoint key: an Ed25519 key derived from the master key, never stored.
//!
//! Whoever can write the database cannot sign a checkpoint, since the key is not there. Nor is
//! it anywhere else: every instance given the master key (and `authlog verify`) makes the same
//! key again. Its public half is published; its `kid` is that half's RFC 7638 thumbprint.

use authlog_application::ports::CheckpointKey;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _};

use crate::keys::thumbprint;
use crate::master_key::MasterKey;

/// What the master key derives the checkpoint key for.
const PURPOSE: &[u8] = b"authlog checkpoint key v1";

pub struct Ed25519CheckpointKey {
    key: SigningKey,
    kid: String,
}

impl Ed25519CheckpointKey {
    pub fn new(master: &MasterKey) -> Self {
        let key = SigningKey::from_bytes(&master.derive(PURPOSE));
        let kid = thumbprint(key.verifying_key().as_bytes());
        Self { key, kid }
    }
}

impl CheckpointKey for Ed25519CheckpointKey {
    fn kid(&self) -> String {
        self.kid.clone()
    }

    fn public_key(&self) -> Vec<u8> {
        self.key.verifying_key().to_bytes().to_vec()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).to_bytes().to_vec()
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature)
            .is_ok_and(|signature| self.key.verifying_key().verify(message, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_master_key_makes_the_same_key_and_another_one_another() {
        let master = MasterKey::from_bytes(&[7; 32]);
        let key = Ed25519CheckpointKey::new(&master);
        let again = Ed25519CheckpointKey::new(&MasterKey::from_bytes(&[7; 32]));
        let other = Ed25519CheckpointKey::new(&MasterKey::from_bytes(&[8; 32]));
        assert_eq!(key.kid(), again.kid());
        assert_ne!(key.kid(), other.kid());

        let signature = key.sign(b"position 7");
        assert!(again.verify(b"position 7", &signature));
        assert!(!key.verify(b"position 8", &signature));
        assert!(!other.verify(b"position 7", &signature));
        assert!(!key.verify(b"position 7", b"too short"));
    }
}
