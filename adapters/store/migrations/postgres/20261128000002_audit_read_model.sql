-- The analysts' `audit_events` becomes a read model (issue 15): personal data in `events` is
-- sealed under each user's key, which the database cannot open, so a view over `events` can no
-- longer show it. The projector builds a table of the same name and columns at start
-- (adapters/store/src/projections/audit.rs), with that data open, and erasure cleans it.
DROP VIEW audit_events;
