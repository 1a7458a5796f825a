-- Up Migration
-- The Idempotency-Key a hold was made with, and its request's fingerprint: the record keeps them so a rebuilt Redis
-- still replays the first booking for a retry with the same key.
ALTER TABLE bookings ADD COLUMN idempotency_key text, ADD COLUMN idempotency_fp text;

-- Down Migration
ALTER TABLE bookings DROP COLUMN idempotency_key, DROP COLUMN idempotency_fp;
