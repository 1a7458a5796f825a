-- Up Migration
-- 'cancelling': a late payment whose seats are gone is marked so before its authorization is cancelled at the provider
-- (write-ahead). A retry that finds it finishes the cancellation; it never re-takes seats for money being given back.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
  CHECK (status IN ('pending', 'authorized', 'captured', 'declined', 'failed', 'cancelling', 'cancelled', 'refunded'));

-- Down Migration
UPDATE payments SET status = 'authorized' WHERE status = 'cancelling';
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
  CHECK (status IN ('pending', 'authorized', 'captured', 'declined', 'failed', 'cancelled', 'refunded'));
