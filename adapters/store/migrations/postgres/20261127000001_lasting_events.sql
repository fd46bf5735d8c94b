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
