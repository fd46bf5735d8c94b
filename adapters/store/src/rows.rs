//! How values are spelled in the `events` columns.

use authlog_application::ports::{AuditFilter, Metadata, RecordedEvent, SigningKey, StoreError};
use authlog_domain::{Event, StreamId};
use sqlx::QueryBuilder;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Fixed width, so that comparing the text compares the times.
const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn format_timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    // The format has only numeric components of a UTC date-time: it cannot fail to apply.
    utc.format(TIMESTAMP).unwrap_or_else(|_| utc.to_string())
}

pub fn parse_timestamp(raw: &str) -> Result<OffsetDateTime, StoreError> {
    PrimitiveDateTime::parse(raw, TIMESTAMP)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|e| StoreError::Corrupt(format!("recorded_at {raw:?}: {e}")))
}

pub fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The columns every event query selects, as [`RawEvent`] reads them.
pub const COLUMNS: &str =
    "position, stream_id, stream_version, event_type, subject, payload, metadata, recorded_at";

/// An `events` row as both backends store it (the same types, so the same hash input).
#[derive(Debug, sqlx::FromRow)]
pub struct RawEvent {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub subject: Option<String>,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: String,
}

impl RawEvent {
    pub fn decode(self) -> Result<RecordedEvent, StoreError> {
        let position = self.position;
        let payload: serde_json::Value = serde_json::from_str(&self.payload)
            .map_err(|e| StoreError::Corrupt(format!("payload at position {position}: {e}")))?;
        let metadata: Metadata = serde_json::from_str(&self.metadata)
            .map_err(|e| StoreError::Corrupt(format!("metadata at position {position}: {e}")))?;
        let event = Event::decode(&self.event_type, payload)
            .map_err(|e| StoreError::Corrupt(format!("position {position}: {e}")))?;
        Ok(RecordedEvent {
            position: to_u64(position)?,
            stream_id: StreamId::from_stored(self.stream_id),
            stream_version: to_u64(self.stream_version)?,
            event,
            subject: self.subject,
            metadata,
            recorded_at: parse_timestamp(&self.recorded_at)?,
        })
    }
}

pub fn decode_all(rows: Vec<RawEvent>) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.into_iter().map(RawEvent::decode).collect()
}

pub fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative number {value}")))
}

pub fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Unavailable(format!("{value} is out of range")))
}

/// One read of the event log, as the `EventStore` port asks for it.
pub enum Read<'a> {
    /// Every event of a stream, in order.
    Stream(&'a StreamId),
    /// The last `count` events of a stream, oldest first.
    Tail(&'a StreamId, u32),
    /// The first event of a stream and its last `count`, each once.
    Edges(&'a StreamId, u32),
    /// Every event about a subject (a canonical username), in position order.
    Subject(String),
    /// Up to `limit` events after a position.
    After(u64, u32),
    /// Every event of a type recorded at or after a time.
    TypeSince(&'static str, OffsetDateTime),
    /// An audit filter.
    Audit(&'a AuditFilter),
}

/// The SQL of `read`, written once for both backends: the builder spells the binds in the
/// backend's placeholder style (`?` or `$n`).
pub fn read_query<'q, DB>(read: Read<'_>) -> Result<QueryBuilder<'q, DB>, StoreError>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM events WHERE "));
    match read {
        Read::Stream(stream) => {
            query
                .push("stream_id = ")
                .push_bind(stream.as_str().to_owned())
                .push(" ORDER BY stream_version");
        }
        Read::Tail(stream, count) => {
            query = QueryBuilder::new(format!(
                "SELECT * FROM (SELECT {COLUMNS} FROM events WHERE stream_id = "
            ));
            query
                .push_bind(stream.as_str().to_owned())
                .push(" ORDER BY stream_version DESC LIMIT ")
                .push_bind(i64::from(count))
                .push(") AS tail ORDER BY stream_version");
        }
        Read::Edges(stream, count) => {
            // Two index lookups on (stream_id, stream_version), whatever the stream's length.
            query
                .push("stream_id = ")
                .push_bind(stream.as_str().to_owned())
                .push(" AND (stream_version = 1 OR stream_version > (SELECT MAX(stream_version) FROM events WHERE stream_id = ")
                .push_bind(stream.as_str().to_owned())
                .push(") - ")
                .push_bind(i64::from(count))
                .push(") ORDER BY stream_version");
        }
        Read::Subject(subject) => {
            query
                .push("subject = ")
                .push_bind(subject)
                .push(" ORDER BY position");
        }
        Read::After(after, limit) => {
            query
                .push("position > ")
                .push_bind(to_i64(after)?)
                .push(" ORDER BY position LIMIT ")
                .push_bind(i64::from(limit));
        }
        Read::TypeSince(event_type, since) => {
            query
                .push("event_type = ")
                .push_bind(event_type.to_owned())
                .push(" AND recorded_at >= ")
                .push_bind(format_timestamp(since))
                .push(" ORDER BY position");
        }
        Read::Audit(filter) => push_audit_filter(&mut query, filter)?,
    }
    Ok(query)
}

/// The audit filter's conditions, binds and page, after `WHERE `.
fn push_audit_filter<'q, DB>(
    query: &mut QueryBuilder<'q, DB>,
    filter: &AuditFilter,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query.push("position > ").push_bind(to_i64(filter.after)?);
    if let Some(subject) = &filter.subject {
        query.push(" AND subject = ").push_bind(subject.clone());
    }
    if !filter.types.is_empty() {
        query.push(" AND event_type IN (");
        let mut names = query.separated(", ");
        for name in &filter.types {
            names.push_bind(name.clone());
        }
        query.push(")");
    }
    if let Some(since) = filter.since {
        query
            .push(" AND recorded_at >= ")
            .push_bind(format_timestamp(since));
    }
    if let Some(until) = filter.until {
        query
            .push(" AND recorded_at < ")
            .push_bind(format_timestamp(until));
    }
    query
        .push(" ORDER BY position LIMIT ")
        .push_bind(i64::from(filter.limit));
    Ok(())
}

/// Every signing key, oldest first, as [`crate::sqlite::KeyRow`] reads them.
pub const SELECT_KEYS: &str = "SELECT kid, algorithm, private_key, public_key, created_at \
     FROM signing_keys ORDER BY created_at, kid";

/// The insert of `key`, with binds in the backend's placeholder style. With `only_if_none`,
/// it inserts nothing when any key exists already (the first key, made once).
pub fn insert_key<'a, DB>(key: &'a SigningKey, only_if_none: bool) -> QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Vec<u8>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut query = QueryBuilder::new(
        "INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at) SELECT ",
    );
    let mut values = query.separated(", ");
    values.push_bind(key.kid.clone());
    values.push_bind(key.algorithm.clone());
    values.push_bind(key.private_der.clone());
    values.push_bind(key.public_key.clone());
    values.push_bind(format_timestamp(key.created_at));
    if only_if_none {
        query.push(" WHERE NOT EXISTS (SELECT 1 FROM signing_keys)");
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_are_fixed_width_utc_with_microseconds_and_round_trip() {
        let at = datetime!(2026-01-02 03:04:05.123456 +02:00);
        let text = format_timestamp(at);
        assert_eq!(text, "2026-01-02T01:04:05.123456Z");
        assert_eq!(parse_timestamp(&text).unwrap(), at);
    }
}
