-- Personal data sealed under a key per user (issue 15, crypto-shredding).
--
-- Each user's data key, sealed under the master key (which is never in the database). The
-- personal fields of the user's events are stored sealed under it (adapters/store/src/
-- personal.rs). Erasing the user sets `sealed_key` to NULL in the transaction that appends
-- `UserErased`: their sealed fields can then be opened by no one, while the rows, and the hash
-- chain over them, stay as they were. The row is kept, so an erased user never gets a new key.
CREATE TABLE user_keys (
    user_id    TEXT PRIMARY KEY,
    sealed_key BYTEA
);
