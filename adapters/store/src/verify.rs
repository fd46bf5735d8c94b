//! Checking the log's integrity: the hash chain, gap-free positions, and the database guards
//! that make the table append-only.

use authlog_application::ports::StoreError;

use crate::chain::{self, RowContent};
use crate::rows::{to_u64, RawEvent};

/// Rows read per query while walking the chain.
pub const BATCH: i64 = 10_000;

/// An `events` row with its stored hash.
#[derive(Debug, sqlx::FromRow)]
pub struct HashedRow {
    #[sqlx(flatten)]
    pub event: RawEvent,
    pub hash: Vec<u8>,
}

/// An intact log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intact {
    /// How many rows the chain covers.
    pub rows: u64,
}

/// What `verify` found wrong, or why it could not look.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the log is broken at position {position}: {reason}")]
    Broken { position: u64, reason: String },
    #[error("the append-only guard {0} is missing from the database")]
    MissingGuard(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Walks rows in position order, each checked against the one before.
pub struct ChainWalk {
    previous: Vec<u8>,
    rows: u64,
}

impl Default for ChainWalk {
    fn default() -> Self {
        Self {
            previous: chain::GENESIS.to_vec(),
            rows: 0,
        }
    }
}

impl ChainWalk {
    /// The position the next row must have.
    pub fn next_position(&self) -> u64 {
        self.rows + 1
    }

    /// Checks `row`: its position follows the last without a gap, and its hash is the hash of
    /// its content chained to the previous row's.
    ///
    /// # Errors
    /// [`VerifyError::Broken`] at the first row that fails either check.
    pub fn check(&mut self, row: &HashedRow) -> Result<(), VerifyError> {
        let expected = self.next_position();
        let position = to_u64(row.event.position)?;
        if position != expected {
            return Err(VerifyError::Broken {
                position: expected,
                reason: format!("row missing (next row found is {position})"),
            });
        }
        let e = &row.event;
        let hash = chain::link(
            &self.previous,
            &RowContent {
                position,
                stream_id: &e.stream_id,
                stream_version: to_u64(e.stream_version)?,
                event_type: &e.event_type,
                subject: e.subject.as_deref(),
                payload: &e.payload,
                metadata: &e.metadata,
                recorded_at: &e.recorded_at,
                schema_version: e.schema_version.map(to_u64).transpose()?,
            },
        );
        if hash.as_slice() != row.hash.as_slice() {
            return Err(VerifyError::Broken {
                position,
                reason: "content does not match its hash (edited, or a row before it was)".into(),
            });
        }
        self.previous = row.hash.clone();
        self.rows += 1;
        Ok(())
    }

    pub fn finish(self) -> Intact {
        Intact { rows: self.rows }
    }
}

/// Which guards a backend must have, and which it has.
pub fn require_guards(required: &[&str], present: &[String]) -> Result<(), VerifyError> {
    match required
        .iter()
        .find(|name| !present.iter().any(|p| p == *name))
    {
        Some(missing) => Err(VerifyError::MissingGuard((*missing).to_owned())),
        None => Ok(()),
    }
}
