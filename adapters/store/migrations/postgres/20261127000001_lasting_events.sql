-- Events that last (issue 15). See the SQLite migration of the same name for the why of each
-- column.
ALTER TABLE events ADD COLUMN schema_version BIGINT;

CREATE TABLE usernames (
    user_id        TEXT   PRIMARY KEY,
    stream_id      TEXT   NOT NULL,
    canonical      TEXT   UNIQUE,
    skeleton       TEXT   UNIQUE,
    registered_at  BIGINT NOT NULL,
    legacy_subject TEXT
);
CREATE INDEX usernames_by_position ON usernames (registered_at);

-- The analysts' view names the account through the name index (see the SQLite migration).
DROP VIEW audit_events;
CREATE VIEW audit_events AS
SELECT
    e.position,
    e.recorded_at::timestamptz                     AS recorded_at,
    e.event_type,
    COALESCE(u.canonical, e.subject)               AS username,
    e.stream_id,
    e.payload::jsonb ->> 'user_id'                 AS user_id,
    e.payload::jsonb ->> 'session_id'              AS session_id,
    e.payload::jsonb ->> 'reason'                  AS reason,
    e.payload::jsonb ->> 'role'                    AS role,
    e.metadata::jsonb ->> 'client_addr'            AS client_addr,
    e.metadata::jsonb ->> 'user_agent'             AS user_agent,
    e.metadata::jsonb ->> 'request_id'             AS request_id,
    e.payload::jsonb - 'password_hash'             AS data
FROM events e LEFT JOIN usernames u ON u.user_id = e.subject;

-- The keys that conceal names typed at password checks (see the SQLite migration).
CREATE TABLE name_keys (
    day        TEXT  PRIMARY KEY,
    sealed_key BYTEA NOT NULL
);
