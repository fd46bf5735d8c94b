-- The append of 20261126000001_append_function, with each event's schema version: hashed
-- after the other fields when the row has one (as adapters/store/src/chain.rs does) and stored
-- in `events.schema_version`. An overload: the function of 13 arguments that releases before
-- this one call stays, below, as a wrapper that appends rows without a version, exactly as
-- they did.
CREATE FUNCTION authlog_append(
    lock_key            BIGINT,
    lock_wait           TEXT,
    requests            INT,
    write_request       INT[],
    write_stream        TEXT[],
    write_expected      BIGINT[],
    write_first_event   INT[],
    write_events        INT[],
    event_type          TEXT[],
    event_subject       TEXT[],
    event_payload       TEXT[],
    event_metadata      TEXT[],
    event_recorded_at   TEXT[],
    event_version       BIGINT[]
) RETURNS TABLE (
    request         INT,
    first_position  BIGINT,
    last_position   BIGINT,
    conflict_stream TEXT,
    actual_version  BIGINT
)
LANGUAGE plpgsql AS $$
DECLARE
    head      BIGINT;
    previous  BYTEA;
    streams   TEXT[];    -- the batch's streams ...
    versions  BIGINT[];  -- ... and their versions, as the batch's earlier requests leave them
    writes    INT := coalesce(array_length(write_request, 1), 0);
    w         INT := 1;  -- the current request's first write
    last      INT;       -- the current request's last write (w - 1: it has none)
    r         INT;
    i         INT;
    slot      INT;
    version   BIGINT;
    holds     BOOLEAN;
    sid       TEXT;
    hash      BYTEA;
    row_position BIGINT[] := '{}';
    row_stream   TEXT[]   := '{}';
    row_version  BIGINT[] := '{}';
    row_event    INT[]    := '{}';
    row_hash     BYTEA[]  := '{}';
BEGIN
    -- Wait for the lock this long at most: a wedged appender elsewhere gets this one a clear
    -- error (lock_not_available), not an endless wait. Local to this transaction.
    PERFORM set_config('lock_timeout', lock_wait, true);
    PERFORM pg_advisory_xact_lock(lock_key);

    SELECT e.position, e.hash INTO head, previous FROM events e ORDER BY e.position DESC LIMIT 1;
    IF NOT FOUND THEN
        head := 0;
        previous := decode(repeat('00', 32), 'hex');
    END IF;
    SELECT array_agg(s.stream ORDER BY s.stream),
           array_agg(coalesce((SELECT max(e.stream_version) FROM events e
                               WHERE e.stream_id = s.stream), 0) ORDER BY s.stream)
      INTO streams, versions
      FROM (SELECT DISTINCT unnest(write_stream) AS stream) s;

    FOR r IN 0 .. requests - 1 LOOP
        request := r;
        last := w - 1;
        WHILE last < writes AND write_request[last + 1] = r LOOP
            last := last + 1;
        END LOOP;

        -- Every version check of the request before any of its events.
        holds := true;
        FOR i IN w .. last LOOP
            version := versions[array_position(streams, write_stream[i])];
            IF NOT (write_expected[i] = -1 OR write_expected[i] = version) THEN
                first_position := NULL;
                last_position := NULL;
                conflict_stream := write_stream[i];
                actual_version := version;
                RETURN NEXT;
                holds := false;
                EXIT;
            END IF;
        END LOOP;

        IF holds THEN
            first_position := head + 1;
            FOR i IN w .. last LOOP
                sid := write_stream[i];
                slot := array_position(streams, sid);
                version := versions[slot];
                FOR ev IN write_first_event[i] .. write_first_event[i] + write_events[i] - 1 LOOP
                    head := head + 1;
                    version := version + 1;
                    hash := sha256(
                        previous
                        || int8send(head)
                        || authlog_field(sid)
                        || int8send(version)
                        || authlog_field(event_type[ev])
                        || CASE WHEN event_subject[ev] IS NULL THEN '\x00'::BYTEA
                                ELSE '\x01'::BYTEA || authlog_field(event_subject[ev]) END
                        || authlog_field(event_payload[ev])
                        || authlog_field(event_metadata[ev])
                        || authlog_field(event_recorded_at[ev])
                        -- A row without a version (written by an older release) hashes as it
                        -- always did.
                        || CASE WHEN event_version[ev] IS NULL THEN ''::BYTEA
                                ELSE '\x01'::BYTEA || int8send(event_version[ev]) END);
                    row_position := array_append(row_position, head);
                    row_stream := array_append(row_stream, sid);
                    row_version := array_append(row_version, version);
                    row_event := array_append(row_event, ev);
                    row_hash := array_append(row_hash, hash);
                    previous := hash;
                END LOOP;
                versions[slot] := version;
            END LOOP;
            last_position := head;
            conflict_stream := NULL;
            actual_version := NULL;
            RETURN NEXT;
        END IF;
        w := last + 1;
    END LOOP;

    IF cardinality(row_position) > 0 THEN
        INSERT INTO events (position, stream_id, stream_version, event_type, subject, payload,
                            metadata, recorded_at, hash, schema_version)
        SELECT r.position, r.stream, r.version, event_type[r.event], event_subject[r.event],
               event_payload[r.event], event_metadata[r.event], event_recorded_at[r.event], r.hash,
               event_version[r.event]
          FROM unnest(row_position, row_stream, row_version, row_event, row_hash)
               AS r(position, stream, version, event, hash);
        -- Delivered to every instance's LISTEN once the transaction commits, once per batch.
        PERFORM pg_notify('authlog_events', '');
    END IF;
END
$$;


CREATE OR REPLACE FUNCTION authlog_append(
    lock_key            BIGINT,
    lock_wait           TEXT,
    requests            INT,
    write_request       INT[],
    write_stream        TEXT[],
    write_expected      BIGINT[],
    write_first_event   INT[],
    write_events        INT[],
    event_type          TEXT[],
    event_subject       TEXT[],
    event_payload       TEXT[],
    event_metadata      TEXT[],
    event_recorded_at   TEXT[]
) RETURNS TABLE (
    request         INT,
    first_position  BIGINT,
    last_position   BIGINT,
    conflict_stream TEXT,
    actual_version  BIGINT
)
LANGUAGE sql AS $$
    SELECT * FROM authlog_append(lock_key, lock_wait, requests, write_request, write_stream,
        write_expected, write_first_event, write_events, event_type, event_subject,
        event_payload, event_metadata, event_recorded_at,
        array_fill(NULL::BIGINT, ARRAY[coalesce(array_length(event_type, 1), 0)]))
$$;
