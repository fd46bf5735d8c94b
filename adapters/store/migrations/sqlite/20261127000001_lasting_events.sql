-- Events that last (issue 15).
--
-- The version of each payload's schema. Rows written before it existed have none and read as
-- version 1; the hash of a row that has one covers it (adapters/store/src/chain.rs).
ALTER TABLE events ADD COLUMN schema_version INTEGER;

-- The name index: which account holds which name. User streams are keyed by the user's id, so
-- uniqueness of names is this table's, written in the same transaction as the `Registered` it
-- belongs to. `canonical` is the name under the identity rule (NFKC, full case folding) and
-- `skeleton` its UTS #39 confusable skeleton: a registration whose name or skeleton is taken is
-- refused. Either is NULL where an account registered under an older rule collides with an
-- earlier one (the start-up that indexes it says so).
CREATE TABLE usernames (
    user_id        TEXT    PRIMARY KEY,
    -- The account's stream: `user:{user_id}`, or for an account registered before streams
    -- were keyed by id, `user:{the canonical name of that time}`.
    stream_id      TEXT    NOT NULL,
    canonical      TEXT    UNIQUE,
    skeleton       TEXT    UNIQUE,
    -- The position of its `Registered`.
    registered_at  INTEGER NOT NULL,
    -- For an account registered before: the `subject` its older events carry.
    legacy_subject TEXT
);
CREATE INDEX usernames_by_position ON usernames (registered_at);

-- The analysts' view: `username` was the subject, which is now the user's id for an account's
-- events; it names the account again through the name index (and is the name typed for a
-- password check, or for an account's events written before ids were subjects).
DROP VIEW audit_events;
CREATE VIEW audit_events AS
SELECT
    e.position,
    e.recorded_at,
    e.event_type,
    COALESCE(u.canonical, e.subject)               AS username,
    e.stream_id,
    json_extract(e.payload, '$.user_id')           AS user_id,
    json_extract(e.payload, '$.session_id')        AS session_id,
    json_extract(e.payload, '$.reason')            AS reason,
    json_extract(e.payload, '$.role')              AS role,
    json_extract(e.metadata, '$.client_addr')      AS client_addr,
    json_extract(e.metadata, '$.user_agent')       AS user_agent,
    json_extract(e.metadata, '$.request_id')       AS request_id,
    json_remove(e.payload, '$.password_hash')      AS data
FROM events e LEFT JOIN usernames u ON u.user_id = e.subject;

-- The keys that conceal names typed at password checks that are no account's (a keyed hash of
-- the name is recorded, never the name): one per UTC day, sealed under the master key,
-- forgotten after the retention period.
CREATE TABLE name_keys (
    day        TEXT PRIMARY KEY,
    sealed_key BLOB NOT NULL
);
