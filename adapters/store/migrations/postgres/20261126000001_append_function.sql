-- One append batch in one statement, so in one network round trip, and the append lock held
-- only while the database works, never across a round trip to an instance (issue 17).
--
-- The batch of `requests` requests arrives flattened into arrays:
--   write_*: one element per stream write, in request order; write_request is the request's
--            index (0-based, ascending; a request may have no writes); write_expected is -1 for "any version", 0 for "no
--            stream", n for "exactly n"; write_first_event (1-based) and write_events say which
--            elements of the event_* arrays are the write's events.
--   event_*: one element per event.
-- It returns one row per request: its first and last position, or the write whose expected
-- version did not hold (the request then writes nothing; the others are unaffected).
--
-- The hash is the one adapters/store/src/chain.rs computes and `authlog verify` checks:
-- SHA-256 over the previous row's hash, then the row's fields, each text field prefixed by its
-- length in bytes and integers as 8 big-endian bytes (int8send).
CREATE FUNCTION authlog_field(value TEXT) RETURNS BYTEA
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT int8send(octet_length(convert_to(value, 'UTF8'))::BIGINT) || convert_to(value, 'UTF8')
$$;

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
    event_recorded_at   TEXT[]
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
                        || authlog_field(event_recorded_at[ev]));
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
                            metadata, recorded_at, hash)
        SELECT r.position, r.stream, r.version, event_type[r.event], event_subject[r.event],
               event_payload[r.event], event_metadata[r.event], event_recorded_at[r.event], r.hash
          FROM unnest(row_position, row_stream, row_version, row_event, row_hash)
               AS r(position, stream, version, event, hash);
        -- Delivered to every instance's LISTEN once the transaction commits, once per batch.
        PERFORM pg_notify('authlog_events', '');
    END IF;
END
$$;
