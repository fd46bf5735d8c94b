//! The hash chain over the `events` table.
//!
//! `hash(row) = SHA-256(hash(previous row) ‖ content(row))`, with 32 zero bytes before the
//! first row. Every field of the content is length-prefixed so that no two different rows can
//! encode to the same bytes. A row's schema version, where it has one, comes last (a tag byte
//! and 8 bytes): rows written before versions existed have none and hash as they always did,
//! and a version added to, removed from or changed in a row changes its hash.

use sha2::{Digest, Sha256};

/// The "previous hash" of the first row.
pub const GENESIS: [u8; 32] = [0; 32];

/// One row's content, as stored.
pub struct RowContent<'a> {
    pub position: u64,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_type: &'a str,
    pub subject: Option<&'a str>,
    pub payload: &'a str,
    pub metadata: &'a str,
    pub recorded_at: &'a str,
    pub schema_version: Option<u64>,
}

/// The hash of `row` chained to `previous`.
pub fn link(previous: &[u8], row: &RowContent<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(row.position.to_be_bytes());
    field(&mut hasher, row.stream_id.as_bytes());
    hasher.update(row.stream_version.to_be_bytes());
    field(&mut hasher, row.event_type.as_bytes());
    match row.subject {
        None => hasher.update([0]),
        Some(subject) => {
            hasher.update([1]);
            field(&mut hasher, subject.as_bytes());
        }
    }
    field(&mut hasher, row.payload.as_bytes());
    field(&mut hasher, row.metadata.as_bytes());
    field(&mut hasher, row.recorded_at.as_bytes());
    if let Some(version) = row.schema_version {
        hasher.update([1]);
        hasher.update(version.to_be_bytes());
    }
    hasher.finalize().into()
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(payload: &'a str, subject: Option<&'a str>) -> RowContent<'a> {
        RowContent {
            position: 1,
            stream_id: "user:alice",
            stream_version: 1,
            event_type: "Registered",
            subject,
            payload,
            metadata: "{}",
            recorded_at: "2026-01-01T00:00:00.000000Z",
            schema_version: None,
        }
    }

    #[test]
    fn any_change_to_the_content_or_the_previous_hash_changes_the_hash() {
        let base = link(&GENESIS, &row("{}", Some("alice")));
        assert_ne!(base, link(&GENESIS, &row("{ }", Some("alice"))));
        assert_ne!(base, link(&GENESIS, &row("{}", None)));
        assert_ne!(base, link(&GENESIS, &row("{}", Some(""))));
        assert_ne!(base, link(&[1; 32], &row("{}", Some("alice"))));
        assert_eq!(base, link(&GENESIS, &row("{}", Some("alice"))));
    }

    #[test]
    fn the_schema_version_is_covered_and_a_row_without_one_hashes_as_before() {
        let versioned = |v| RowContent {
            schema_version: v,
            ..row("{}", None)
        };
        let none = link(&GENESIS, &versioned(None));
        let one = link(&GENESIS, &versioned(Some(1)));
        assert_ne!(none, one);
        assert_ne!(one, link(&GENESIS, &versioned(Some(2))));
        // A row without a version: the hash of releases before versions existed (this value
        // is what they stored for it; the upgrade fixtures check real rows of theirs).
        let mut before = Sha256::new();
        before.update(GENESIS);
        before.update(1u64.to_be_bytes());
        field(&mut before, b"user:alice");
        before.update(1u64.to_be_bytes());
        field(&mut before, b"Registered");
        before.update([0]);
        field(&mut before, b"{}");
        field(&mut before, b"{}");
        field(&mut before, b"2026-01-01T00:00:00.000000Z");
        assert_eq!(none, <[u8; 32]>::from(before.finalize()));
    }
}
