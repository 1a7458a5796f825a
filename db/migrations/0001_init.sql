-- Up Migration
-- Floodgate's system of record. Redis decides fast; Postgres refuses an oversell on its own:
--   * GA and seated stock: tiers.reserved + tiers.sold <= capacity (CHECK), kept by a trigger on bookings;
--   * assigned seats: at most one live booking per seat (partial unique index on booking_seats);
--   * the booking state machine: only transitions listed in booking_state_transitions (trigger).

CREATE TABLE events (
  id                   text PRIMARY KEY CHECK (id ~ '^ev_[a-z0-9]{12}$'),
  name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  category             text NOT NULL CHECK (length(category) BETWEEN 1 AND 50),
  venue                text NOT NULL CHECK (length(venue) BETWEEN 1 AND 200),
  starts_at            timestamptz NOT NULL,
  sales_open_at        timestamptz NOT NULL,
  max_tickets_per_user integer NOT NULL CHECK (max_tickets_per_user BETWEEN 1 AND 100),
  status               text NOT NULL DEFAULT 'on_sale' CHECK (status IN ('on_sale', 'closed')),
  created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_category_starts_at ON events (category, starts_at);

CREATE TABLE tiers (
  id        text PRIMARY KEY CHECK (id ~ '^tr_[a-z0-9]{10}$'),
  event_id  text NOT NULL REFERENCES events (id),
  name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  price     integer NOT NULL CHECK (price >= 0),
  currency  text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  capacity  integer NOT NULL CHECK (capacity > 0),
  seated    boolean NOT NULL,
  position  integer NOT NULL,
  reserved  integer NOT NULL DEFAULT 0,
  sold      integer NOT NULL DEFAULT 0,
  CONSTRAINT tiers_no_oversell CHECK (reserved >= 0 AND sold >= 0 AND reserved + sold <= capacity),
  UNIQUE (event_id, id)
);

CREATE TABLE sections (
  event_id      text NOT NULL,
  id            text NOT NULL CHECK (id ~ '^[A-Za-z0-9]{1,16}$'),
  tier_id       text NOT NULL,
  rows          integer NOT NULL CHECK (rows BETWEEN 1 AND 1000),
  seats_per_row integer NOT NULL CHECK (seats_per_row BETWEEN 1 AND 1000),
  position      integer NOT NULL,
  PRIMARY KEY (event_id, id),
  FOREIGN KEY (event_id, tier_id) REFERENCES tiers (event_id, id)
);

CREATE TABLE seats (
  event_id   text NOT NULL,
  seat_id    text NOT NULL,
  section_id text NOT NULL,
  row_no     integer NOT NULL,
  seat_no    integer NOT NULL,
  tier_id    text NOT NULL,
  PRIMARY KEY (event_id, seat_id),
  FOREIGN KEY (event_id, section_id) REFERENCES sections (event_id, id)
);

-- The state machine as data. `holds` says what a booking in that state does to inventory.
CREATE TABLE booking_states (
  state text PRIMARY KEY,
  holds text NOT NULL CHECK (holds IN ('none', 'held', 'sold'))
);
INSERT INTO booking_states (state, holds) VALUES
  ('PENDING', 'none'), ('RESERVED', 'held'), ('PAYMENT_PENDING', 'held'), ('PAYMENT_FAILED', 'held'),
  ('CONFIRMED', 'sold'), ('TICKETS_DELIVERED', 'sold'), ('REFUND_REQUESTED', 'sold'), ('REFUND_DENIED', 'sold'),
  ('REFUNDED', 'none'), ('CANCELLED', 'none'), ('EXPIRED', 'none'), ('FAILED', 'none');

CREATE TABLE booking_state_transitions (
  from_state text NOT NULL REFERENCES booking_states (state),
  to_state   text NOT NULL REFERENCES booking_states (state),
  PRIMARY KEY (from_state, to_state)
);
INSERT INTO booking_state_transitions (from_state, to_state) VALUES
  ('PENDING', 'RESERVED'), ('PENDING', 'FAILED'),
  ('RESERVED', 'PAYMENT_PENDING'), ('RESERVED', 'EXPIRED'), ('RESERVED', 'CANCELLED'),
  ('PAYMENT_PENDING', 'CONFIRMED'), ('PAYMENT_PENDING', 'PAYMENT_FAILED'), ('PAYMENT_PENDING', 'EXPIRED'),
  ('PAYMENT_FAILED', 'PAYMENT_PENDING'), ('PAYMENT_FAILED', 'CANCELLED'), ('PAYMENT_FAILED', 'EXPIRED'),
  ('CONFIRMED', 'TICKETS_DELIVERED'), ('CONFIRMED', 'REFUND_REQUESTED'),
  ('TICKETS_DELIVERED', 'REFUND_REQUESTED'),
  ('REFUND_REQUESTED', 'REFUNDED'), ('REFUND_REQUESTED', 'REFUND_DENIED'),
  ('REFUND_DENIED', 'CONFIRMED');

CREATE TABLE bookings (
  id             text PRIMARY KEY CHECK (id ~ '^bk_[a-z0-9]{12}_[a-z0-9]{16}$'),
  event_id       text NOT NULL REFERENCES events (id),
  tier_id        text NOT NULL,
  user_id        text NOT NULL,
  ticket_count   integer NOT NULL CHECK (ticket_count > 0),
  amount         bigint NOT NULL CHECK (amount >= 0),
  currency       text NOT NULL,
  state          text NOT NULL REFERENCES booking_states (state),
  expires_at     timestamptz,
  failure_reason text,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (event_id, tier_id) REFERENCES tiers (event_id, id)
);
CREATE INDEX bookings_user ON bookings (user_id, created_at DESC);
CREATE INDEX bookings_event_state ON bookings (event_id, state);

CREATE TABLE booking_seats (
  booking_id text NOT NULL REFERENCES bookings (id),
  event_id   text NOT NULL,
  seat_id    text NOT NULL,
  live       boolean NOT NULL,
  PRIMARY KEY (booking_id, seat_id),
  FOREIGN KEY (event_id, seat_id) REFERENCES seats (event_id, seat_id)
);
-- No seat in two live bookings, whatever Redis said.
CREATE UNIQUE INDEX booking_seats_one_live ON booking_seats (event_id, seat_id) WHERE live;

CREATE TABLE booking_transitions (
  id         bigserial PRIMARY KEY,
  booking_id text NOT NULL REFERENCES bookings (id),
  from_state text REFERENCES booking_states (state),
  to_state   text NOT NULL REFERENCES booking_states (state),
  cause      text NOT NULL,
  at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX booking_transitions_booking ON booking_transitions (booking_id, id);

-- Markers of outbox entries already applied (e.g. 'BookingCreated:bk_…'), so a replay changes nothing.
CREATE TABLE processed_events (
  key          text PRIMARY KEY,
  processed_at timestamptz NOT NULL DEFAULT now()
);

-- Inventory follows the booking state: one function moves a tier's counters and a booking's seats between
-- none / held / sold. The CHECK on tiers and the unique index on booking_seats refuse an oversell.
CREATE FUNCTION booking_inventory() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_holds text := 'none';
  new_holds text;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.state = OLD.state THEN RETURN NEW; END IF;
    IF NOT EXISTS (SELECT 1 FROM booking_state_transitions WHERE from_state = OLD.state AND to_state = NEW.state) THEN
      RAISE EXCEPTION 'illegal booking transition % -> %', OLD.state, NEW.state USING ERRCODE = 'FG001';
    END IF;
    SELECT holds INTO old_holds FROM booking_states WHERE state = OLD.state;
  ELSIF NEW.state NOT IN ('PENDING', 'RESERVED', 'FAILED') THEN
    RAISE EXCEPTION 'a booking starts as PENDING, RESERVED or FAILED, not %', NEW.state USING ERRCODE = 'FG001';
  END IF;
  SELECT holds INTO new_holds FROM booking_states WHERE state = NEW.state;
  IF old_holds <> new_holds THEN
    UPDATE tiers SET
      reserved = reserved - CASE WHEN old_holds = 'held' THEN NEW.ticket_count ELSE 0 END
                          + CASE WHEN new_holds = 'held' THEN NEW.ticket_count ELSE 0 END,
      sold     = sold     - CASE WHEN old_holds = 'sold' THEN NEW.ticket_count ELSE 0 END
                          + CASE WHEN new_holds = 'sold' THEN NEW.ticket_count ELSE 0 END
    WHERE id = NEW.tier_id;
    IF TG_OP = 'UPDATE' AND (old_holds = 'none') <> (new_holds = 'none') THEN
      UPDATE booking_seats SET live = (new_holds <> 'none') WHERE booking_id = NEW.id;
    END IF;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER bookings_inventory BEFORE INSERT OR UPDATE OF state ON bookings
  FOR EACH ROW EXECUTE FUNCTION booking_inventory();

-- Down Migration
DROP TABLE processed_events, booking_transitions, booking_seats, bookings, booking_state_transitions,
  booking_states, seats, sections, tiers, events;
DROP FUNCTION booking_inventory();
