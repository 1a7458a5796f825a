-- Up Migration
-- Every change of a booking's state leaves exactly one audit row, whoever makes it: the application or a raw UPDATE
-- from psql. The row is written here, not by application SQL. The application names the cause of the move in the
-- transaction-local setting `floodgate.cause`, in the very statement that moves the booking (bookings-repo.ts); a move
-- without it is recorded with the cause 'sql by <role>'.
CREATE FUNCTION booking_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  why text := NULLIF(current_setting('floodgate.cause', true), '');
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- a booking starts PENDING; one recorded straight as RESERVED or FAILED shows both steps, at its creation time
    INSERT INTO booking_transitions (booking_id, from_state, to_state, cause, at) VALUES (NEW.id, NULL, 'PENDING', 'hold', NEW.created_at);
    IF NEW.state <> 'PENDING' THEN
      INSERT INTO booking_transitions (booking_id, from_state, to_state, cause, at)
        VALUES (NEW.id, 'PENDING', NEW.state, COALESCE(why, 'sql by ' || session_user), NEW.created_at);
    END IF;
  ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
    INSERT INTO booking_transitions (booking_id, from_state, to_state, cause)
      VALUES (NEW.id, OLD.state, NEW.state, COALESCE(why, 'sql by ' || session_user));
  END IF;
  RETURN NULL;
END $$;

-- AFTER: the row exists (the audit row's foreign key) and the inventory trigger (BEFORE) has accepted the move
CREATE TRIGGER bookings_audit AFTER INSERT OR UPDATE OF state ON bookings
  FOR EACH ROW EXECUTE FUNCTION booking_audit();

-- Down Migration
DROP TRIGGER bookings_audit ON bookings;
DROP FUNCTION booking_audit();
