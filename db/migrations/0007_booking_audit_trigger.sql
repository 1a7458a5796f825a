-- Up Migration
-- Every change of a booking's state leaves exactly one audit row, whoever makes it: the application or a raw UPDATE
-- from psql. The rows are written here, not by application SQL. The application names the cause of a move in the
-- transaction-local setting `floodgate.cause`, in the very statement that moves the booking (bookings-repo.ts); a move
-- without it is recorded with the cause 'sql by <role>'.
-- Statement-level triggers over transition tables: the persist worker records bookings in batches of hundreds, and this
-- keeps the audit one set-based INSERT per statement (as the application's own audit INSERT was), not a call per row.
CREATE FUNCTION booking_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- a booking starts PENDING; one recorded straight as RESERVED or FAILED shows both steps, at its creation time
  INSERT INTO booking_transitions (booking_id, from_state, to_state, cause, at)
  SELECT id, NULL, 'PENDING', 'hold', created_at FROM new_rows
  UNION ALL
  SELECT id, 'PENDING', state, COALESCE(NULLIF(current_setting('floodgate.cause', true), ''), 'sql by ' || session_user), created_at
    FROM new_rows WHERE state <> 'PENDING';
  RETURN NULL;
END $$;

CREATE FUNCTION booking_audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO booking_transitions (booking_id, from_state, to_state, cause)
  SELECT n.id, o.state, n.state, COALESCE(NULLIF(current_setting('floodgate.cause', true), ''), 'sql by ' || session_user)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
   WHERE n.state IS DISTINCT FROM o.state
   ORDER BY n.id;
  RETURN NULL;
END $$;

-- AFTER: the rows exist (the audit rows' foreign key) and the inventory trigger (BEFORE, per row) has accepted each move.
-- (Transition tables rule out `UPDATE OF state`: updates of other columns find no changed state and insert nothing.)
CREATE TRIGGER bookings_audit_insert AFTER INSERT ON bookings
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION booking_audit_insert();
CREATE TRIGGER bookings_audit_update AFTER UPDATE ON bookings
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION booking_audit_update();

-- Down Migration
DROP TRIGGER bookings_audit_update ON bookings;
DROP TRIGGER bookings_audit_insert ON bookings;
DROP FUNCTION booking_audit_update();
DROP FUNCTION booking_audit_insert();
