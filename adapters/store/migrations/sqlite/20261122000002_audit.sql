-- Audit queries page through the log in position order, filtered by user, type or time.
-- By user: events_by_subject (subject, position) already serves it.
CREATE INDEX events_by_type_and_position ON events (event_type, position);
CREATE INDEX events_by_time ON events (recorded_at);

-- The log for analysts: common payload and metadata fields as columns, secrets left out.
CREATE VIEW audit_events AS
SELECT
    position,
    recorded_at,
    event_type,
    subject                                      AS username,
    stream_id,
    json_extract(payload, '$.user_id')           AS user_id,
    json_extract(payload, '$.session_id')        AS session_id,
    json_extract(payload, '$.reason')            AS reason,
    json_extract(payload, '$.role')              AS role,
    json_extract(metadata, '$.client_addr')      AS client_addr,
    json_extract(metadata, '$.user_agent')       AS user_agent,
    json_extract(metadata, '$.request_id')       AS request_id,
    json_remove(payload, '$.password_hash')      AS data
FROM events;
