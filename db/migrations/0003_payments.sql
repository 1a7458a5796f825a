-- Up Migration
-- Payments, refunds, ticket delivery and gate scans. No card data anywhere: payment methods are tokens (pm_...).

ALTER TABLE bookings ADD COLUMN holder_name text, ADD COLUMN holder_email text, ADD COLUMN holder_phone text,
  ADD COLUMN payment_attempts integer NOT NULL DEFAULT 0;

-- A payment that lands after its reservation expired may re-take the very same seats if they are still free.
INSERT INTO booking_state_transitions (from_state, to_state) VALUES ('EXPIRED', 'CONFIRMED');

CREATE TABLE payments (
  booking_id     text NOT NULL REFERENCES bookings (id),
  attempt        integer NOT NULL CHECK (attempt > 0),
  provider       text NOT NULL,
  payment_method text NOT NULL CHECK (payment_method ~ '^pm_[A-Za-z0-9_]{1,100}$'),
  amount         bigint NOT NULL,
  currency       text NOT NULL,
  status         text NOT NULL CHECK (status IN ('pending', 'authorized', 'captured', 'declined', 'failed', 'cancelled', 'refunded')),
  provider_ref   text,
  decline_code   text,
  note           text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (booking_id, attempt)
);
-- Never two captures for one booking (the money side of "no seat sold twice").
CREATE UNIQUE INDEX payments_one_capture ON payments (booking_id) WHERE status IN ('captured', 'refunded');
CREATE INDEX payments_provider_ref ON payments (provider_ref);

CREATE TABLE refunds (
  booking_id   text PRIMARY KEY REFERENCES bookings (id),
  status       text NOT NULL CHECK (status IN ('requested', 'approved', 'denied', 'refunded')),
  reason       text,
  provider_ref text,
  decided_by   text,
  requested_at timestamptz NOT NULL DEFAULT now(),
  decided_at   timestamptz
);

-- One row per booking and channel: the claim that makes a second run of a delivery job send nothing.
CREATE TABLE deliveries (
  booking_id text NOT NULL REFERENCES bookings (id),
  channel    text NOT NULL CHECK (channel IN ('email', 'sms')),
  status     text NOT NULL CHECK (status IN ('sending', 'sent')),
  message_id text,
  claimed_at timestamptz NOT NULL DEFAULT now(),
  sent_at    timestamptz,
  PRIMARY KEY (booking_id, channel)
);

CREATE TABLE ticket_scans (
  ticket_key text PRIMARY KEY,
  booking_id text NOT NULL REFERENCES bookings (id),
  gate       text,
  scanned_at timestamptz NOT NULL DEFAULT now()
);

-- Stripe webhook events already handled (Stripe delivers at least once, in any order).
CREATE TABLE webhook_events (
  id          text PRIMARY KEY,
  type        text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE webhook_events, ticket_scans, deliveries, refunds, payments;
DELETE FROM booking_state_transitions WHERE from_state = 'EXPIRED' AND to_state = 'CONFIRMED';
ALTER TABLE bookings DROP COLUMN holder_name, DROP COLUMN holder_email, DROP COLUMN holder_phone, DROP COLUMN payment_attempts;
