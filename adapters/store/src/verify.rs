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
    /// A guard of that name is there but does not do what authlog installed it to do (a
    /// no-op of the same name, a `WHEN` that never holds, a function that lets rows go).
    #[error(
        "the append-only guard {name} is not as authlog installed it: it reads `{found}`, \
         where `{expected}` was installed"
    )]
    AlteredGuard {
        name: String,
        found: String,
        expected: String,
    },
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

/// A trigger on `events` as the database holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Guard {
    pub name: String,
    /// What it does, spelt as the backend's `guards` reads it.
    pub definition: String,
}

/// Checks that every guard a backend must have is there, defined as `required` says (compared
/// with runs of white space as one space): a guard is checked by what it does, not by its
/// name.
pub fn require_guards(required: &[(&str, &str)], present: &[Guard]) -> Result<(), VerifyError> {
    let spaced = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (name, expected) in required {
        let Some(guard) = present.iter().find(|g| g.name == *name) else {
            return Err(VerifyError::MissingGuard((*name).to_owned()));
        };
        let (found, expected) = (spaced(&guard.definition), spaced(expected));
        if found != expected {
            return Err(VerifyError::AlteredGuard {
                name: (*name).to_owned(),
                found,
                expected,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUIRED: &[(&str, &str)] = &[("refuse", "BEGIN  SELECT RAISE(ABORT, 'no');\n END")];

    fn guard(name: &str, definition: &str) -> Guard {
        Guard {
            name: name.into(),
            definition: definition.into(),
        }
    }

    #[test]
    fn a_guard_is_checked_by_its_definition_not_its_name() {
        let same = guard("refuse", "BEGIN SELECT RAISE(ABORT, 'no'); END");
        assert!(
            require_guards(REQUIRED, &[same]).is_ok(),
            "white space aside"
        );
        assert!(matches!(
            require_guards(REQUIRED, &[guard("other", "BEGIN SELECT 1; END")]),
            Err(VerifyError::MissingGuard(name)) if name == "refuse"
        ));
        for no_op in [
            "BEGIN SELECT 1; END",
            "BEGIN SELECT RAISE(ABORT, 'no') WHERE 0; END",
            "WHEN 0 BEGIN SELECT RAISE(ABORT, 'no'); END",
        ] {
            assert!(
                matches!(
                    require_guards(REQUIRED, &[guard("refuse", no_op)]),
                    Err(VerifyError::AlteredGuard { name, .. }) if name == "refuse"
                ),
                "{no_op}"
            );
        }
    }
}
