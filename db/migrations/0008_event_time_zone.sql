-- Up Migration
-- The event's own time zone (IANA name, e.g. Europe/Paris), in which e-mails state when it starts: starts_at is a
-- timestamptz, which keeps the instant but not the offset the organiser wrote. Events created before this say UTC.
ALTER TABLE events ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (time_zone ~ '^[A-Za-z0-9_+/-]{1,64}$');

-- Down Migration
ALTER TABLE events DROP COLUMN time_zone;
