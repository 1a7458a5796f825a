-- Up Migration
-- Postgres follows the outbox (issue 12): the persist worker is the only writer of tier counters and booking states.
--
-- 1. A payment records its attempt before the persist worker has recorded the booking (the booking reaches Postgres in
--    outbox order, the payment does not wait for it): payments no longer reference bookings.
ALTER TABLE payments DROP CONSTRAINT payments_booking_id_fkey;

-- 2. Inventory follows the booking state per statement, not per row. A batch of N moves on one tier was N updates of
--    that tier's row (one per booking, by a BEFORE ROW trigger); now the moves of one statement are summed per tier
--    and each tier is updated once. The persist worker goes further: it sets `floodgate.defer_counters` for its batch,
--    the statements only add their deltas to the transaction-local `floodgate.tier_deltas`, and
--    apply_tier_deltas() updates each tier once for the whole batch before the commit (a refusal there makes the
--    worker apply the batch again statement by statement, to find the refused holds).
--    Unchanged: the tier CHECK (tiers_no_oversell) and the live-seat unique index still refuse an oversell, for
--    every writer; illegal moves are refused (FG001); a booking starts PENDING, RESERVED or FAILED.
DROP TRIGGER bookings_inventory ON bookings;
DROP FUNCTION booking_inventory();

-- Updates tiers by `deltas` ({tierId: [reservedDelta, soldDelta]}), one row update per tier, in tier id order (a fixed
-- lock order), or, while `floodgate.defer_counters` is 'on', adds them to the transaction's `floodgate.tier_deltas`.
CREATE FUNCTION move_tier_counters(deltas jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  acc jsonb;
BEGIN
  IF deltas IS NULL OR deltas = '{}'::jsonb THEN RETURN; END IF;
  IF current_setting('floodgate.defer_counters', true) = 'on' THEN
    acc := COALESCE(NULLIF(current_setting('floodgate.tier_deltas', true), ''), '{}')::jsonb;
    SELECT COALESCE(jsonb_object_agg(tier_id, jsonb_build_array(r, s)), '{}'::jsonb) INTO acc
      FROM (SELECT tier_id, sum(r) AS r, sum(s) AS s
              FROM (SELECT key AS tier_id, (value->>0)::int AS r, (value->>1)::int AS s FROM jsonb_each(acc)
                    UNION ALL
                    SELECT key, (value->>0)::int, (value->>1)::int FROM jsonb_each(deltas)) x
             GROUP BY tier_id) y
     WHERE r <> 0 OR s <> 0;
    PERFORM set_config('floodgate.tier_deltas', acc::text, true);
    RETURN;
  END IF;
  PERFORM 1 FROM tiers WHERE id IN (SELECT key FROM jsonb_each(deltas)) ORDER BY id FOR NO KEY UPDATE;
  UPDATE tiers t SET reserved = t.reserved + (d.value->>0)::int, sold = t.sold + (d.value->>1)::int
    FROM jsonb_each(deltas) d
   WHERE t.id = d.key AND ((d.value->>0)::int <> 0 OR (d.value->>1)::int <> 0);
END $$;

-- Applies the deltas deferred so far in this transaction (see move_tier_counters) and stops deferring.
CREATE FUNCTION apply_tier_deltas() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  acc jsonb := COALESCE(NULLIF(current_setting('floodgate.tier_deltas', true), ''), '{}')::jsonb;
BEGIN
  PERFORM set_config('floodgate.defer_counters', 'off', true);
  PERFORM set_config('floodgate.tier_deltas', '', true);
  PERFORM move_tier_counters(acc);
END $$;

CREATE FUNCTION booking_inventory_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad text;
BEGIN
  SELECT state INTO bad FROM new_rows WHERE state NOT IN ('PENDING', 'RESERVED', 'FAILED') LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'a booking starts as PENDING, RESERVED or FAILED, not %', bad USING ERRCODE = 'FG001';
  END IF;
  PERFORM move_tier_counters((
    SELECT jsonb_object_agg(tier_id, jsonb_build_array(r, s))
      FROM (SELECT n.tier_id, sum(CASE WHEN st.holds = 'held' THEN n.ticket_count ELSE 0 END) AS r,
                   sum(CASE WHEN st.holds = 'sold' THEN n.ticket_count ELSE 0 END) AS s
              FROM new_rows n JOIN booking_states st ON st.state = n.state
             WHERE st.holds <> 'none'
             GROUP BY n.tier_id) x));
  RETURN NULL;
END $$;

CREATE FUNCTION booking_inventory_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  SELECT o.state AS from_state, n.state AS to_state INTO bad
    FROM new_rows n JOIN old_rows o ON o.id = n.id
   WHERE n.state <> o.state
     AND NOT EXISTS (SELECT 1 FROM booking_state_transitions t WHERE t.from_state = o.state AND t.to_state = n.state)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'illegal booking transition % -> %', bad.from_state, bad.to_state USING ERRCODE = 'FG001';
  END IF;
  -- seats follow none <-> held/sold (the unique index on live seats refuses a seat sold twice)
  UPDATE booking_seats bs SET live = (ns.holds <> 'none')
    FROM new_rows n JOIN old_rows o ON o.id = n.id
         JOIN booking_states os ON os.state = o.state JOIN booking_states ns ON ns.state = n.state
   WHERE bs.booking_id = n.id AND (os.holds = 'none') <> (ns.holds = 'none');
  PERFORM move_tier_counters((
    SELECT jsonb_object_agg(tier_id, jsonb_build_array(r, s))
      FROM (SELECT n.tier_id,
                   sum(CASE WHEN ns.holds = 'held' THEN n.ticket_count ELSE 0 END - CASE WHEN os.holds = 'held' THEN o.ticket_count ELSE 0 END) AS r,
                   sum(CASE WHEN ns.holds = 'sold' THEN n.ticket_count ELSE 0 END - CASE WHEN os.holds = 'sold' THEN o.ticket_count ELSE 0 END) AS s
              FROM new_rows n JOIN old_rows o ON o.id = n.id
                   JOIN booking_states os ON os.state = o.state JOIN booking_states ns ON ns.state = n.state
             WHERE os.holds <> ns.holds
             GROUP BY n.tier_id) x));
  RETURN NULL;
END $$;

-- (Transition tables rule out `UPDATE OF state`: an update of other columns finds no changed state and moves nothing.)
CREATE TRIGGER bookings_inventory_insert AFTER INSERT ON bookings
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION booking_inventory_insert();
CREATE TRIGGER bookings_inventory_update AFTER UPDATE ON bookings
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION booking_inventory_update();

-- 3. One statement moves many bookings, each with its own cause (a BookingConfirmed's cause names its payment): the
--    audit takes a booking's cause from the transaction-local JSON object `floodgate.causes` ({bookingId: cause}) when
--    the statement set one, else from `floodgate.cause` as before.
CREATE OR REPLACE FUNCTION booking_audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  causes jsonb := NULLIF(current_setting('floodgate.causes', true), '')::jsonb;
  fallback text := COALESCE(NULLIF(current_setting('floodgate.cause', true), ''), 'sql by ' || session_user);
BEGIN
  INSERT INTO booking_transitions (booking_id, from_state, to_state, cause)
  SELECT n.id, o.state, n.state, COALESCE(causes->>n.id, fallback)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
   WHERE n.state IS DISTINCT FROM o.state
   ORDER BY n.id;
  RETURN NULL;
END $$;

-- Down Migration
CREATE OR REPLACE FUNCTION booking_audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO booking_transitions (booking_id, from_state, to_state, cause)
  SELECT n.id, o.state, n.state, COALESCE(NULLIF(current_setting('floodgate.cause', true), ''), 'sql by ' || session_user)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
   WHERE n.state IS DISTINCT FROM o.state
   ORDER BY n.id;
  RETURN NULL;
END $$;

DROP TRIGGER bookings_inventory_update ON bookings;
DROP TRIGGER bookings_inventory_insert ON bookings;
DROP FUNCTION booking_inventory_update();
DROP FUNCTION booking_inventory_insert();
DROP FUNCTION apply_tier_deltas();
DROP FUNCTION move_tier_counters(jsonb);

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

-- A payment row whose booking was never recorded blocks this: the foreign key cannot come back over it.
ALTER TABLE payments ADD CONSTRAINT payments_booking_id_fkey FOREIGN KEY (booking_id) REFERENCES bookings (id);
