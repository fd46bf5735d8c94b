-- The event log: the source of truth and the audit trail. Append-only (see the triggers).
-- Same shape and spellings as on SQLite, so the hash chain is computed over the same bytes.
CREATE TABLE events (
    -- Global order: gap-free and strictly increasing in commit order (appends are serialised
    -- by a transaction-scoped advisory lock).
    position       BIGINT PRIMARY KEY,
    stream_id      TEXT   NOT NULL,
    -- Order within the stream, from 1. Unique per stream: the optimistic-concurrency check.
    stream_version BIGINT NOT NULL,
    event_type     TEXT   NOT NULL,
    -- The canonical username the event concerns, for audit queries.
    subject        TEXT,
    -- JSON text, kept byte for byte as hashed (cast with payload::jsonb to query it).
    payload        TEXT   NOT NULL,
    -- Client address, user agent, request id (JSON text).
    metadata       TEXT   NOT NULL,
    -- UTC, fixed-width RFC 3339 with microseconds: text order is time order
    -- (cast with recorded_at::timestamptz).
    recorded_at    TEXT   NOT NULL,
    -- SHA-256 over the previous row's hash and this row's content.
    hash           BYTEA  NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_by_subject ON events (subject, position);
CREATE INDEX events_by_type_and_time ON events (event_type, recorded_at);

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % refused', TG_OP;
END
$$;

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Signing keys, private halves included, so that every instance on this database signs and
-- verifies with the same keys. Kept out of `events` so the audit trail never holds a secret.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TEXT NOT NULL
);
