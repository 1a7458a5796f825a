-- Up Migration
-- The SMS of each booking, apart from its state: TICKETS_DELIVERED means the e-mail went out; whether the SMS did is
-- recorded here. One row per booking (one SMS per booking). `status` is the transport's last word: Twilio's message
-- status (accepted, queued, sending, sent, delivered, undelivered, failed, ...: from the send's answer, then from its
-- status callbacks) or `rejected` when it refused the message outright (an invalid number: error 21211 and kin) or
-- `failed` when Floodgate gave up retrying. `error_code` is Twilio's (21211, 30003, ...), `error_message` its words.
CREATE TABLE sms_messages (
  booking_id    text PRIMARY KEY REFERENCES bookings (id),
  provider      text NOT NULL,
  message_sid   text UNIQUE,
  status        text NOT NULL CHECK (status ~ '^[a-z_-]{1,32}$'),
  error_code    text,
  error_message text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE sms_messages;
