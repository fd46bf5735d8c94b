//! How values are spelled in the `events` columns.

use authlog_application::ports::{Metadata, RecordedEvent, StoreError};
use authlog_domain::{Event, StreamId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
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

/// The columns every event query selects, in the order [`decode`] reads them.
pub const COLUMNS: &str =
    "position, stream_id, stream_version, event_type, subject, payload, metadata, recorded_at";

pub fn decode(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let get_i64 = |name: &str| row.try_get::<i64, _>(name).map_err(unavailable);
    let get_text = |name: &str| row.try_get::<String, _>(name).map_err(unavailable);
    let position = get_i64("position")?;
    let event_type = get_text("event_type")?;
    let payload: serde_json::Value = serde_json::from_str(&get_text("payload")?)
        .map_err(|e| StoreError::Corrupt(format!("payload at position {position}: {e}")))?;
    let metadata: Metadata = serde_json::from_str(&get_text("metadata")?)
        .map_err(|e| StoreError::Corrupt(format!("metadata at position {position}: {e}")))?;
    let event = Event::decode(&event_type, payload)
        .map_err(|e| StoreError::Corrupt(format!("position {position}: {e}")))?;
    Ok(RecordedEvent {
        position: to_u64(position)?,
        stream_id: StreamId::from_stored(get_text("stream_id")?),
        stream_version: to_u64(get_i64("stream_version")?)?,
        event,
        subject: row.try_get("subject").map_err(unavailable)?,
        metadata,
        recorded_at: parse_timestamp(&get_text("recorded_at")?)?,
    })
}

pub fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative number {value}")))
}

pub fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Unavailable(format!("{value} is out of range")))
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
