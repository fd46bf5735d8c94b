-- Rules whose results the store keeps, and the version each was last applied in (issue 28).
-- The name index stores confusable skeletons: when the skeleton rule changes (version 2 reads
-- small capitals as capitals), the start that finds an older version here takes every stored
-- skeleton again from its canonical name (adapters/store/src/names.rs, `reskeleton`).
CREATE TABLE store_rules (
    name    TEXT   PRIMARY KEY,
    version BIGINT NOT NULL
);
