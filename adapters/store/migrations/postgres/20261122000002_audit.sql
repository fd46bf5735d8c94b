-- Audit queries page through the log in position order, filtered by user, type or time.
-- By user: events_by_subject (subject, position) already serves it.
CREATE INDEX events_by_type_and_position ON events (event_type, position);
CREATE INDEX events_by_time ON events (recorded_at);

-- The log for analysts: common payload and metadata fields as columns, secrets left out.
CREATE VIEW audit_events AS
SELECT
    position,
    recorded_at::timestamptz                     AS recorded_at,
    event_type,
    subject                                      AS username,
    stream_id,
    payload::jsonb ->> 'user_id'                 AS user_id,
    payload::jsonb ->> 'session_id'              AS session_id,
    payload::jsonb ->> 'reason'                  AS reason,
    payload::jsonb ->> 'role'                    AS role,
    metadata::jsonb ->> 'client_addr'            AS client_addr,
    metadata::jsonb ->> 'user_agent'             AS user_agent,
    metadata::jsonb ->> 'request_id'             AS request_id,
    payload::jsonb - 'password_hash'             AS data
FROM events;
