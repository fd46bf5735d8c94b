-- A revoked signing key (`authlog keys revoke`) keeps its row, so that the keys after it keep
-- their places in the rotation history, with its key material erased and the time it was
-- revoked here. NULL: in force.
ALTER TABLE signing_keys ADD COLUMN revoked_at TEXT;
