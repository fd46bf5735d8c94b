//! How values are spelled in the `events` columns.

use authlog_application::ports::{AuditFilter, Metadata, RecordedEvent, StoreError};
use authlog_domain::{Event, EventType, StreamId};
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

/// Reads a time as [`format_timestamp`] writes it (`2026-01-02T03:04:05.123456Z`). Read by hand:
/// a start reads one per recent revocation, and the general parser cost more than the rest of
/// the fill together.
pub fn parse_timestamp(raw: &str) -> Result<OffsetDateTime, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("timestamp {raw:?}"));
    let bytes = raw.as_bytes();
    let shape = bytes.len() == 27
        && [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ]
        .iter()
        .all(|&(i, c)| bytes[i] == c);
    if !shape {
        return Err(corrupt());
    }
    let number = |from: usize, to: usize| -> Result<u32, StoreError> {
        bytes[from..to].iter().try_fold(0u32, |n, b| match b {
            b'0'..=b'9' => Ok(n * 10 + u32::from(b - b'0')),
            _ => Err(corrupt()),
        })
    };
    let year = i32::try_from(number(0, 4)?).map_err(|_| corrupt())?;
    let month = time::Month::try_from(u8::try_from(number(5, 7)?).map_err(|_| corrupt())?)
        .map_err(|_| corrupt())?;
    let narrow = |n: u32| u8::try_from(n).map_err(|_| corrupt());
    let date = time::Date::from_calendar_date(year, month, narrow(number(8, 10)?)?)
        .map_err(|_| corrupt())?;
    let time = time::Time::from_hms_micro(
        narrow(number(11, 13)?)?,
        narrow(number(14, 16)?)?,
        narrow(number(17, 19)?)?,
        number(20, 26)?,
    )
    .map_err(|_| corrupt())?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

pub fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The columns every event query selects, as [`RawEvent`] reads them.
pub const COLUMNS: &str = "position, stream_id, stream_version, event_type, subject, payload, \
     metadata, recorded_at, schema_version";

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
    /// `None` for a row written before versions existed: version 1.
    pub schema_version: Option<i64>,
}

impl RawEvent {
    /// The row as the application sees it. A type this release does not know decodes as
    /// `Event::Unknown` (counted, and warned about once per type); a row of a known type that
    /// does not decode is corrupt.
    pub fn decode(self) -> Result<RecordedEvent, StoreError> {
        let position = self.position;
        let metadata: Metadata = serde_json::from_str(&self.metadata)
            .map_err(|e| StoreError::Corrupt(format!("metadata at position {position}: {e}")))?;
        let version = match self.schema_version {
            None => 1,
            Some(stored) => u32::try_from(stored).map_err(|_| {
                StoreError::Corrupt(format!("schema version {stored} at position {position}"))
            })?,
        };
        let event = Event::decode_json(&self.event_type, version, &self.payload)
            .map_err(|e| StoreError::Corrupt(format!("position {position}: {e}")))?;
        if let Event::Unknown(unknown) = &event {
            unknown_type(&unknown.event_type, position);
        }
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

/// The rows a follower can act on: one that does not decode is passed over (counted, and
/// logged once per position), so that a single bad row never stops the follower.
pub fn decode_following(rows: Vec<RawEvent>) -> Vec<RecordedEvent> {
    rows.into_iter()
        .filter_map(|row| {
            let position = row.position;
            row.decode()
                .map_err(|e| {
                    metrics::counter!("authlog_undecodable_events_total").increment(1);
                    warn_once(format!("corrupt:{position}"), || {
                        tracing::warn!(position, error = %e, "passing over an event that does not decode");
                    });
                })
                .ok()
        })
        .collect()
}

/// Counts a row of a type this release does not know, and says so once per type.
fn unknown_type(event_type: &str, position: i64) {
    metrics::counter!("authlog_unknown_events_total", "type" => event_type.to_owned()).increment(1);
    warn_once(format!("type:{event_type}"), || {
        tracing::warn!(
            event_type,
            position,
            "the log holds events of a type this release does not know (written by a newer \
             release?); they are passed over"
        );
    });
}

/// Runs `warn` the first time `key` is seen in this process.
fn warn_once(key: String, warn: impl FnOnce()) {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if seen.lock().is_ok_and(|mut seen| seen.insert(key)) {
        warn();
    }
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
    /// Up to `limit` events of a stream after its version `version`, in order.
    StreamAfter(&'a StreamId, u64, u32),
    /// Up to `limit` events after a position, of the given types (any when empty).
    After {
        after: u64,
        limit: u32,
        types: &'static [EventType],
    },
    /// The events in `(after, upto]` of the given types: what a projector reads, a window of
    /// positions at a time (a limit on the matching rows instead would let the planner walk
    /// every later row of those types for each batch).
    Range {
        after: u64,
        upto: u64,
        types: &'static [EventType],
    },
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
        Read::StreamAfter(stream, version, limit) => {
            query
                .push("stream_id = ")
                .push_bind(stream.as_str().to_owned())
                .push(" AND stream_version > ")
                .push_bind(to_i64(version)?)
                .push(" ORDER BY stream_version LIMIT ")
                .push_bind(i64::from(limit));
        }
        Read::After {
            after,
            limit,
            types,
        } => {
            query.push("position > ").push_bind(to_i64(after)?);
            push_types(&mut query, types.iter().map(|t| t.as_str().to_owned()));
            query
                .push(" ORDER BY position LIMIT ")
                .push_bind(i64::from(limit));
        }
        Read::Range { after, upto, types } => {
            query
                .push("position > ")
                .push_bind(to_i64(after)?)
                .push(" AND position <= ")
                .push_bind(to_i64(upto)?);
            push_types(&mut query, types.iter().map(|t| t.as_str().to_owned()));
            query.push(" ORDER BY position");
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
    if let Some(whom) = &filter.subject {
        // Each alternative is a range of the (subject, position) index.
        query.push(" AND (");
        let mut or = "";
        for id in &whom.ids {
            query.push(or).push("subject = ").push_bind(id.clone());
            or = " OR ";
        }
        if !whom.names.is_empty() {
            query.push(or).push("(subject IN (");
            let mut names = query.separated(", ");
            for name in &whom.names {
                names.push_bind(name.clone());
            }
            query
                .push(") AND position >= ")
                .push_bind(to_i64(whom.names_from)?)
                .push(")");
            or = " OR ";
        }
        // No alternative: nobody's events.
        query.push(if or.is_empty() { "1 = 0)" } else { ")" });
    }
    push_types(query, filter.types.iter().cloned());
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

/// ` AND event_type IN (...)`, unless `types` is empty (any type).
fn push_types<'q, DB>(
    query: &mut QueryBuilder<'q, DB>,
    types: impl ExactSizeIterator<Item = String>,
) where
    DB: sqlx::Database,
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if types.len() == 0 {
        return;
    }
    query.push(" AND event_type IN (");
    let mut names = query.separated(", ");
    for name in types {
        names.push_bind(name);
    }
    query.push(")");
}

/// Every signing key, oldest first.
pub const SELECT_KEYS: &str =
    "SELECT kid, algorithm, private_key, public_key, created_at, revoked_at \
     FROM signing_keys ORDER BY created_at, kid";

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
        let leap = datetime!(2028-02-29 23:59:59.999999 UTC);
        assert_eq!(parse_timestamp(&format_timestamp(leap)).unwrap(), leap);
    }

    #[test]
    fn anything_but_the_fixed_form_is_corrupt() {
        for raw in [
            "",
            "2026-01-02T01:04:05Z",
            "2026-01-02 01:04:05.123456Z",
            "2026-13-02T01:04:05.123456Z",
            "2026-02-30T01:04:05.123456Z",
            "2026-01-02T24:04:05.123456Z",
            "2026-01-02T01:04:05.12345xZ",
            "+026-01-02T01:04:05.123456Z",
            "2026-01-02T01:04:05.123456+",
        ] {
            assert!(parse_timestamp(raw).is_err(), "{raw:?}");
        }
    }
}
