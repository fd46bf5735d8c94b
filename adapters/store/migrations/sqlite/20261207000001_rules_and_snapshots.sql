-- Rules whose results the store keeps, and the version each was last applied in (issue 28).
-- The name index stores confusable skeletons: when the skeleton rule changes (version 2 reads
-- small capitals as capitals), the start that finds an older version here takes every stored
-- skeleton again from its canonical name (adapters/store/src/names.rs, `reskeleton`).
CREATE TABLE store_rules (
    name    TEXT   PRIMARY KEY,
    version BIGINT NOT NULL
);

-- Snapshots of streams: the fold of a stream's first `version` events, kept so that a read of
-- a long stream starts from it and reads only the events after it (issue 28: the login
-- throttle read every check of an account in the window, so a busy account's logins slowed
-- with its successes). A snapshot is a cache: deleting any row, or all, loses nothing but time,
-- and a `state` this release cannot read is passed over. No personal data: attempt ids and
-- times.
CREATE TABLE snapshots (
    stream_id TEXT   PRIMARY KEY,
    version   BIGINT NOT NULL,
    state     TEXT   NOT NULL
);

-- The hash of the event at each projection's checkpoint: a checkpoint that names a position
-- the log no longer holds, or holds another event at (rows deleted behind the service's back,
-- a restore of an older backup under newer read models), is refused instead of trusted (issue
-- 28). A checkpoint kept before takes the hash of the event at its position now; from then on
-- a checkpoint past 0 without a hash names an event that was gone when it was set.
ALTER TABLE projections ADD COLUMN hash BLOB;
UPDATE projections SET hash = (SELECT e.hash FROM events e WHERE e.position = projections.position)
WHERE position > 0;

-- The checkpoints of the subscribers that one instance at a time runs (issue 28: the mail
-- outbox, webhooks and signed checkpoints to come): the last position handled, the version of
-- the subscriber that handled it (another version starts again from 0), and the instance that
-- holds the lease to run it, until when. The read models keep theirs in `projections`, written
-- with their rows.
CREATE TABLE subscribers (
    name        TEXT   PRIMARY KEY,
    version     BIGINT NOT NULL,
    position    BIGINT NOT NULL,
    holder      TEXT,
    lease_until TEXT
);

-- The secrets users own (issue 28: for the second factors, recovery codes, passkeys and mail
-- codes to come), each sealed under its owner's data key in `user_keys`, bound to the user,
-- its kind and its id: erasing the user destroys the key, and the erasure deletes the rows too.
-- Written only in the transaction of the events that set or remove them.
CREATE TABLE user_secrets (
    user_id TEXT NOT NULL,
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    sealed  BLOB NOT NULL,
    PRIMARY KEY (user_id, kind, id)
);
