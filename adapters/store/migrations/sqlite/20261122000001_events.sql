-- The event log: the source of truth and the audit trail. Append-only (see the triggers).
CREATE TABLE events (
    -- Global order: gap-free and strictly increasing in commit order (one writer at a time).
    position       INTEGER PRIMARY KEY,
    stream_id      TEXT    NOT NULL,
    -- Order within the stream, from 1. Unique per stream: the optimistic-concurrency check.
    stream_version INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    -- The canonical username the event concerns, for audit queries.
    subject        TEXT,
    payload        TEXT    NOT NULL,
    -- Client address, user agent, request id.
    metadata       TEXT    NOT NULL,
    -- UTC, fixed-width RFC 3339 with microseconds, so text order is time order.
    recorded_at    TEXT    NOT NULL,
    -- SHA-256 over the previous row's hash and this row's content.
    hash           BLOB    NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_by_subject ON events (subject, position);
CREATE INDEX events_by_type_and_time ON events (event_type, recorded_at);

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: UPDATE refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only: DELETE refused');
END;

-- Signing keys, private halves included, so that every instance on this database signs and
-- verifies with the same keys. Kept out of `events` so the audit trail never holds a secret.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    created_at  TEXT NOT NULL
);
