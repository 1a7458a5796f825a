-- Up Migration
-- An event's waiting-room settings: {enabled, opensAt, admissionRatePerSecond, passTtlSeconds, seed, seedHash}.
-- The seed stays here (the system of record) so a rebuilt Redis draws the same order; the API reveals it only
-- once the sale has opened.
ALTER TABLE events ADD COLUMN queue jsonb;

-- Down Migration
ALTER TABLE events DROP COLUMN queue;
