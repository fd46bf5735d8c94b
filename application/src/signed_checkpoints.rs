//! Signed checkpoints: the hash chain's head, signed with a key the database does not hold, for
//! anyone to keep outside it. A checkpoint kept from before an attack on the database shows the
//! attack: the log no longer holds that position with that hash, however the rows after it were
//! re-chained.
//!
//! What is signed is the text `authlog-checkpoint.v1\n{position}\n{hash}\n{recorded_at}`: the
//! position in decimal, the hash in lowercase hex, `recorded_at` exactly as the checkpoint
//! spells it. Any Ed25519 implementation can check it with the public key published at
//! `/.well-known/authlog-checkpoint-keys.json`.

use std::sync::Arc;

use authlog_domain::Role;
use time::format_description::well_known::Rfc3339;

use crate::access::{Caller, Forbidden};
use crate::ports::{Chain, CheckpointKey, StoreError};

/// A checkpoint: a position of the log, the chain's hash there, and a signature of both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub position: u64,
    /// The chain's hash at `position`, lowercase hex.
    pub hash: String,
    /// When the event at `position` was recorded (RFC 3339), as signed.
    pub recorded_at: String,
    /// The checkpoint key that signed it.
    pub kid: String,
    /// The Ed25519 signature of [`SignedCheckpoint::message`].
    pub signature: Vec<u8>,
}

impl SignedCheckpoint {
    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        message(self.position, &self.hash, &self.recorded_at)
    }
}

fn message(position: u64, hash: &str, recorded_at: &str) -> Vec<u8> {
    format!("authlog-checkpoint.v1\n{position}\n{hash}\n{recorded_at}").into_bytes()
}

/// Why a checkpoint was not taken, or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    #[error("the log is empty: there is nothing to sign")]
    EmptyLog,
    #[error(
        "the checkpoint was signed by key {found}, not by this server's checkpoint key {ours} \
         (a checkpoint is checked with the master key of the server that signed it)"
    )]
    OtherKey { found: String, ours: String },
    #[error("the checkpoint's signature does not verify: the checkpoint was altered")]
    BadSignature,
    #[error(
        "the log no longer holds position {position}, which the checkpoint signed at {recorded_at} \
         holds: events were cut from its tail"
    )]
    Missing { position: u64, recorded_at: String },
    #[error(
        "the log at position {position} is not what the checkpoint signed at {recorded_at} \
         holds: the hash there is {found}, the checkpoint's {expected}; events up to it were \
         changed, removed or re-chained"
    )]
    Differs {
        position: u64,
        recorded_at: String,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct SignedCheckpoints {
    chain: Arc<dyn Chain>,
    key: Arc<dyn CheckpointKey>,
}

impl SignedCheckpoints {
    pub fn new(chain: Arc<dyn Chain>, key: Arc<dyn CheckpointKey>) -> Self {
        Self { chain, key }
    }

    /// The key's name and public half, for the published key set.
    pub fn public_key(&self) -> (String, Vec<u8>) {
        (self.key.kid(), self.key.public_key())
    }

    /// The chain's head, signed: for an admin or an auditor.
    ///
    /// # Errors
    /// [`CheckpointError::Forbidden`] for anyone else; [`CheckpointError::EmptyLog`]; a store
    /// failure.
    pub async fn take(&self, caller: &Caller) -> Result<SignedCheckpoint, CheckpointError> {
        caller.require_any(&[Role::admin(), Role::auditor()])?;
        let head = self
            .chain
            .link(None)
            .await?
            .ok_or(CheckpointError::EmptyLog)?;
        let hash = hex(&head.hash);
        let recorded_at = head
            .recorded_at
            .format(&Rfc3339)
            .map_err(|e| StoreError::Corrupt(format!("a recorded time: {e}")))?;
        let signature = self.key.sign(&message(head.position, &hash, &recorded_at));
        Ok(SignedCheckpoint {
            position: head.position,
            hash,
            recorded_at,
            kid: self.key.kid(),
            signature,
        })
    }

    /// Checks that `checkpoint` was signed with this server's key and that the log still holds
    /// its position with its hash.
    ///
    /// # Errors
    /// [`CheckpointError::OtherKey`], [`CheckpointError::BadSignature`],
    /// [`CheckpointError::Missing`] or [`CheckpointError::Differs`], each naming what does not
    /// hold; a store failure.
    pub async fn check(&self, checkpoint: &SignedCheckpoint) -> Result<(), CheckpointError> {
        let ours = self.key.kid();
        if checkpoint.kid != ours {
            return Err(CheckpointError::OtherKey {
                found: checkpoint.kid.clone(),
                ours,
            });
        }
        if !self
            .key
            .verify(&checkpoint.message(), &checkpoint.signature)
        {
            return Err(CheckpointError::BadSignature);
        }
        let Some(link) = self.chain.link(Some(checkpoint.position)).await? else {
            return Err(CheckpointError::Missing {
                position: checkpoint.position,
                recorded_at: checkpoint.recorded_at.clone(),
            });
        };
        let found = hex(&link.hash);
        if found != checkpoint.hash {
            return Err(CheckpointError::Differs {
                position: checkpoint.position,
                recorded_at: checkpoint.recorded_at.clone(),
                found,
                expected: checkpoint.hash.clone(),
            });
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ChainLink, MockChain, MockCheckpointKey};
    use crate::testing::{claims_of, NOW};

    /// A key that "signs" by prefixing: enough to tell which message was signed.
    fn key() -> Arc<dyn CheckpointKey> {
        let mut key = MockCheckpointKey::new();
        key.expect_kid().returning(|| "kid-1".into());
        key.expect_sign()
            .returning(|message| [b"sig:".as_slice(), message].concat());
        key.expect_verify()
            .returning(|message, signature| signature == [b"sig:".as_slice(), message].concat());
        Arc::new(key)
    }

    fn chain(links: Vec<(u64, u8)>) -> Arc<dyn Chain> {
        let mut chain = MockChain::new();
        chain.expect_link().returning(move |position| {
            let link = |(p, h): &(u64, u8)| ChainLink {
                position: *p,
                hash: vec![*h; 32],
                recorded_at: NOW,
            };
            Ok(match position {
                None => links.last().map(link),
                Some(wanted) => links.iter().find(|(p, _)| *p == wanted).map(link),
            })
        });
        Arc::new(chain)
    }

    #[tokio::test]
    async fn a_checkpoint_of_the_head_holds_until_the_log_changes_under_it() {
        let taken = SignedCheckpoints::new(chain(vec![(1, 1), (2, 2)]), key())
            .take(&Caller::Operator)
            .await
            .unwrap();
        assert_eq!(taken.position, 2);
        assert_eq!(taken.hash, "02".repeat(32));
        assert_eq!(
            String::from_utf8(taken.message()).unwrap(),
            format!(
                "authlog-checkpoint.v1\n2\n{}\n{}",
                "02".repeat(32),
                taken.recorded_at
            )
        );
        let same = SignedCheckpoints::new(chain(vec![(1, 1), (2, 2), (3, 3)]), key());
        assert_eq!(
            same.check(&taken).await,
            Ok(()),
            "a longer log still holds it"
        );

        let cut = SignedCheckpoints::new(chain(vec![(1, 1)]), key());
        assert!(matches!(
            cut.check(&taken).await,
            Err(CheckpointError::Missing { position: 2, .. })
        ));
        let rechained = SignedCheckpoints::new(chain(vec![(1, 9), (2, 9)]), key());
        assert!(matches!(
            rechained.check(&taken).await,
            Err(CheckpointError::Differs { position: 2, .. })
        ));
    }

    #[tokio::test]
    async fn an_altered_checkpoint_or_another_keys_is_refused_before_the_log_is_read() {
        let mut chain = MockChain::new();
        chain.expect_link().never();
        let checkpoints = SignedCheckpoints::new(Arc::new(chain), key());
        let genuine = SignedCheckpoint {
            position: 7,
            hash: "07".repeat(32),
            recorded_at: "2026-12-08T00:00:00Z".into(),
            kid: "kid-1".into(),
            signature: [
                b"sig:".as_slice(),
                &message(7, &"07".repeat(32), "2026-12-08T00:00:00Z"),
            ]
            .concat(),
        };
        let moved = SignedCheckpoint {
            position: 6,
            ..genuine.clone()
        };
        assert_eq!(
            checkpoints.check(&moved).await,
            Err(CheckpointError::BadSignature)
        );
        let other = SignedCheckpoint {
            kid: "kid-2".into(),
            ..genuine
        };
        assert!(matches!(
            checkpoints.check(&other).await,
            Err(CheckpointError::OtherKey { .. })
        ));
    }

    #[tokio::test]
    async fn only_admins_and_auditors_take_one() {
        let checkpoints = SignedCheckpoints::new(chain(vec![(1, 1)]), key());
        let user = Caller::User(Arc::new(claims_of(&[])));
        assert!(matches!(
            checkpoints.take(&user).await,
            Err(CheckpointError::Forbidden(_))
        ));
        let auditor = Caller::User(Arc::new(claims_of(&[Role::auditor()])));
        assert!(checkpoints.take(&auditor).await.is_ok());
    }
}
