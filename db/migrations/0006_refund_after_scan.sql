-- Up Migration
-- A denied refund puts the booking back where it was: CONFIRMED, or TICKETS_DELIVERED when its tickets had been sent.
INSERT INTO booking_state_transitions (from_state, to_state) VALUES ('REFUND_DENIED', 'TICKETS_DELIVERED');

-- The refund confirmation e-mail: one delivery claim per booking, as for the tickets, so a job that runs twice sends once.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check CHECK (channel IN ('email', 'sms', 'refund-email'));

-- Down Migration
DELETE FROM deliveries WHERE channel = 'refund-email';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check CHECK (channel IN ('email', 'sms'));
DELETE FROM booking_state_transitions WHERE from_state = 'REFUND_DENIED' AND to_state = 'TICKETS_DELIVERED';
