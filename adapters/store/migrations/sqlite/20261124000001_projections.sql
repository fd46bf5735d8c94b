-- The read models' checkpoints: each projection's tables are derived from the log up to
-- `position`, by the code at `version`, and written in the same transaction as this row. The
-- tables themselves are made by the projections (a version change rebuilds them), not here.
-- `rebuilding` marks a rebuild under way (the time it was claimed), so only one process runs it.
CREATE TABLE projections (
    name       TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    rebuilding TEXT
);
