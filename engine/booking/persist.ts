import { withTx, type Pool, type PoolClient } from '../../platform/pg.js';
import type { OutboxEntry, OutboxType } from '../outbox/outbox.js';
import { insertBooking, insertBookings, moveMany, type BookingMove, type NewBooking } from './bookings-repo.js';
import type { BookingState } from './states.js';

export type ApplyResult = {
  applied: number;
  /** The entries applied now (not replays), in order: what metrics count. */
  fresh: OutboxEntry[];
  duplicates: number;
  /** Holds Postgres refused (it would have oversold): recorded FAILED; the caller releases them in Redis. */
  refused: OutboxEntry[];
  /** Entries that found their booking in an unexpected state (already moved, or never recorded). */
  anomalies: { entry: OutboxEntry; problem: string }[];
  /**
   * Poison entries: Postgres refused them on their data (an unknown seat, a value out of range...), so they would fail
   * on every retry and stall every later entry of their event. Each is set aside (its marker is kept, so it is never
   * applied again); a poison hold is recorded FAILED with the reason and handed back for release in Redis.
   */
  quarantined: { entry: OutboxEntry; reason: string; recorded: boolean }[];
};

/** Postgres errors meaning "this would oversell": tier CHECK, live-seat unique index. */
const REFUSALS = new Set(['23514', '23505']);

/**
 * SQLSTATE classes of errors in the data itself, which a retry cannot fix: data exceptions (22), integrity violations
 * (23: an unknown seat is 23503), a PL/pgSQL raise (P0) and our triggers' refusals (FG). Everything else (connection
 * lost, deadlock and serialization failures, timeouts, lock_timeout, an error in our own SQL) is an infrastructure or
 * code error: the batch is retried and nothing is quarantined.
 */
const DATA_ERROR_CLASSES = new Set(['22', '23', 'P0', 'FG']);
export function isDataError(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown } | null;
  return typeof e?.code === 'string' && typeof e.severity === 'string' && e.code.length === 5 && DATA_ERROR_CLASSES.has(e.code.slice(0, 2));
}

/** What a quarantined booking records as its failure reason: the SQLSTATE and the constraint (or message). */
const quarantineReason = (err: unknown) => {
  const e = err as { code?: string; constraint?: string; message?: string };
  return `quarantined: postgres refused the entry (${e.code ?? '?'} ${e.constraint ?? e.message ?? ''})`.slice(0, 300);
};

/**
 * The marker of an applied entry: each kind of domain event happens at most once per booking, except a payment's start
 * and decline, which happen once per attempt.
 */
export const markerOf = (e: OutboxEntry) =>
  e.type === 'PaymentStarted' || e.type === 'PaymentDeclined' ? `${e.bookingId}:${e.type}:a${e.attempt ?? 0}` : `${e.bookingId}:${e.type}`;

const toNewBooking = (e: OutboxEntry): NewBooking => ({
  bookingId: e.bookingId, eventId: e.eventId, tierId: e.tierId, userId: e.userId, ticketCount: e.count, seats: e.seats,
  expiresAtMs: e.expiresAtMs ?? e.atMs, createdAtMs: e.atMs, idempotencyKey: e.idemKey, idempotencyFp: e.idemFp,
});

/** Holds, recorded in one statement; if Postgres refuses any, each is retried alone so only the refused fail. */
async function applyCreated(tx: PoolClient, entries: OutboxEntry[], out: ApplyResult): Promise<void> {
  await tx.query('SAVEPOINT created');
  try {
    const recorded = await insertBookings(tx, entries.map(toNewBooking), 'RESERVED');
    await tx.query('RELEASE SAVEPOINT created');
    for (const e of entries) if (!recorded.has(e.bookingId)) out.anomalies.push({ entry: e, problem: 'booking id already recorded' });
    return;
  } catch (err) {
    if (!isRefusal(err)) throw err;
    await tx.query('ROLLBACK TO SAVEPOINT created');
  }
  for (const e of entries) {
    await tx.query('SAVEPOINT one');
    try {
      if (!(await insertBooking(tx, toNewBooking(e), 'RESERVED'))) out.anomalies.push({ entry: e, problem: 'booking id already recorded' });
      await tx.query('RELEASE SAVEPOINT one');
    } catch (err) {
      if (!isRefusal(err)) throw err;
      await tx.query('ROLLBACK TO SAVEPOINT one');
      await insertBooking(tx, toNewBooking(e), 'FAILED', 'inventory-conflict');
      out.refused.push(e);
    }
  }
}

/**
 * The guarded move each domain event makes (a BookingConfirmed walks RESERVED/PAYMENT_FAILED -> PAYMENT_PENDING first
 * when no PaymentStarted did; a late payment's re-take confirms an EXPIRED booking), and the columns it sets. `done`:
 * states meaning the move was already made (by a replay, or by a later entry's effect seen first); anything else is an
 * anomaly.
 */
type Step = { from: BookingState[]; to: BookingState; move: (e: OutboxEntry) => BookingMove };
const SOLD_OR_LATER: BookingState[] = ['CONFIRMED', 'TICKETS_DELIVERED', 'REFUND_REQUESTED', 'REFUND_DENIED', 'REFUNDED'];
const MOVES: Record<Exclude<OutboxType, 'BookingCreated' | 'BookingFailed'>, { steps: Step[]; done: BookingState[] }> = {
  BookingCancelled: {
    steps: [{ from: ['RESERVED', 'PAYMENT_FAILED'], to: 'CANCELLED', move: (e) => ({ id: e.bookingId, cause: e.reason ?? 'cancelled' }) }],
    done: ['CANCELLED'],
  },
  ReservationExpired: {
    steps: [{ from: ['RESERVED', 'PAYMENT_PENDING', 'PAYMENT_FAILED'], to: 'EXPIRED', move: (e) => ({ id: e.bookingId, cause: 'hold expired' }) }],
    done: ['EXPIRED', 'CANCELLED', ...SOLD_OR_LATER],
  },
  BookingConfirmed: {
    steps: [
      { from: ['RESERVED', 'PAYMENT_FAILED'], to: 'PAYMENT_PENDING', move: (e) => ({ id: e.bookingId, cause: 'payment' }) },
      { from: ['PAYMENT_PENDING', 'EXPIRED'], to: 'CONFIRMED', move: (e) => ({ id: e.bookingId, cause: `payment ${e.paymentRef ?? ''}`.trim() }) },
    ],
    done: SOLD_OR_LATER,
  },
  BookingRefunded: {
    steps: [{ from: ['REFUND_REQUESTED'], to: 'REFUNDED', move: (e) => ({ id: e.bookingId, cause: e.reason ?? 'refunded' }) }],
    done: ['REFUNDED'],
  },
  PaymentStarted: {
    steps: [{
      from: ['RESERVED', 'PAYMENT_FAILED'],
      to: 'PAYMENT_PENDING',
      move: (e) => ({
        id: e.bookingId, cause: `payment started (attempt ${e.attempt ?? '?'})`, paymentAttempts: e.attempt, failureReason: null,
        holderName: e.holderName, holderEmail: e.holderEmail, holderPhone: e.holderPhone,
      }),
    }],
    done: ['PAYMENT_PENDING', 'EXPIRED', 'CANCELLED', ...SOLD_OR_LATER],
  },
  PaymentDeclined: {
    steps: [{
      from: ['PAYMENT_PENDING'],
      to: 'PAYMENT_FAILED',
      move: (e) => ({ id: e.bookingId, cause: e.reason ?? 'payment declined', failureReason: e.reason ?? 'payment declined' }),
    }],
    done: ['PAYMENT_FAILED', 'CANCELLED', 'EXPIRED', ...SOLD_OR_LATER],
  },
};

/** Each step of a run of one type is one statement for the whole run, every booking with its own cause and columns. */
async function applyMoves(tx: PoolClient, type: keyof typeof MOVES, entries: OutboxEntry[], out: ApplyResult): Promise<void> {
  const { steps, done } = MOVES[type];
  let moved = new Set<string>();
  for (const step of steps) moved = await moveMany(tx, entries.map(step.move), step.from, step.to);
  const rest = entries.filter((e) => !moved.has(e.bookingId));
  if (rest.length === 0) return;
  const { rows } = await tx.query<{ id: string; state: BookingState }>('SELECT id, state FROM bookings WHERE id = ANY($1::text[])', [
    rest.map((e) => e.bookingId),
  ]);
  const state = new Map(rows.map((r) => [r.id, r.state]));
  for (const e of rest) {
    const s = state.get(e.bookingId);
    if (s && done.includes(s)) continue;
    out.anomalies.push({ entry: e, problem: s ? `booking is ${s}` : 'booking never recorded' });
  }
}

const isRefusal = (err: unknown) => REFUSALS.has((err as { code?: string }).code ?? '');

/**
 * Sets a poison entry aside. A hold is recorded FAILED with the reason, without its seats (they are what Postgres
 * may have refused), so it holds nothing in Postgres and the caller releases it in Redis. Any other entry leaves its
 * booking as it is: the entry, logged in full by the caller, is for an operator (docs/runbook.md).
 */
async function quarantine(tx: PoolClient, e: OutboxEntry, err: unknown, out: ApplyResult): Promise<void> {
  const reason = quarantineReason(err);
  let recorded = false;
  if (e.type === 'BookingCreated') {
    await tx.query('SAVEPOINT quarantine');
    try {
      recorded = await insertBooking(tx, { ...toNewBooking(e), seats: [] }, 'FAILED', reason);
      await tx.query('RELEASE SAVEPOINT quarantine');
    } catch (again) {
      if (!isDataError(again)) throw again;
      await tx.query('ROLLBACK TO SAVEPOINT quarantine'); // not even the FAILED row fits: the log keeps the entry
    }
  }
  out.quarantined.push({ entry: e, reason, recorded });
}

/** Consecutive entries of one type are applied together, in stream order. */
async function applyRun(tx: PoolClient, type: OutboxType, run: OutboxEntry[], out: ApplyResult): Promise<void> {
  switch (type) {
    case 'BookingCreated':
      return applyCreated(tx, run, out);
    case 'BookingFailed':
      // Compensation for a refused hold: the booking was recorded FAILED when Postgres refused it.
      return;
    case 'BookingCancelled':
    case 'ReservationExpired':
    case 'BookingConfirmed':
    case 'BookingRefunded':
    case 'PaymentStarted':
    case 'PaymentDeclined':
      return applyMoves(tx, type, run, out);
  }
}

/** Releases in Redis the holds Postgres refused (would oversell) and the poison holds it quarantined. */
export type OnRelease = (refused: OutboxEntry[], quarantined: OutboxEntry[]) => Promise<void>;

/**
 * Applies a batch of outbox entries to Postgres in one transaction, in stream order. Each entry is applied
 * at most once (a processed_events marker per booking and event type, per attempt for a payment's start and decline),
 * so a replayed batch changes nothing.
 * Each run of consecutive entries of one type is one statement per step, and each tier's counters are updated once for
 * the whole batch, before the commit (the inventory trigger defers them, migration 0009): the batch's end state is
 * what Redis reached after the same entries, so it fits the tiers whenever Redis and Postgres agree.
 * Throws on infrastructure errors: nothing is committed and the caller retries the same batch.
 * When the batch's counters do not fit a tier (Postgres refuses an oversell), the batch is applied again with counters
 * moved statement by statement, so the refused hold is found: recorded FAILED and handed to onRefused.
 * When the batch fails on its data, the batch is applied again one entry at a time, each in a savepoint: the
 * entries that fail on their data are quarantined (see ApplyResult.quarantined) and the others apply, so one poison
 * entry never stalls its event's outbox.
 */
export async function applyOutbox(
  pool: Pool,
  entries: OutboxEntry[],
  /** Called before the commit with the holds Postgres refused and the poison holds it quarantined, to release them
   *  in Redis: if it throws, nothing commits and the batch is retried, so the release happens at least once. */
  onRefused: OnRelease = async () => {},
): Promise<ApplyResult> {
  try {
    return await applyBatch(pool, entries, onRefused, 'batch');
  } catch (err) {
    if (err instanceof CountersRefused) {
      try {
        return await applyBatch(pool, entries, onRefused, 'statement');
      } catch (again) {
        if (!isDataError(again)) throw again;
      }
    } else if (!isDataError(err)) throw err;
    return applyBatch(pool, entries, onRefused, 'entry');
  }
}

/** The batch's counters, moved at its end, do not fit a tier: the batch is applied again statement by statement. */
class CountersRefused extends Error {
  constructor(readonly refusal: unknown) {
    super(`the batch's tier counters were refused: ${(refusal as Error).message}`);
  }
}

/**
 * How a batch moves tier counters: once per tier at the end ('batch'); per statement, so the refused hold is found
 * ('statement'); or one entry at a time in savepoints, quarantining the entries that fail on their data ('entry').
 */
type Mode = 'batch' | 'statement' | 'entry';

async function applyBatch(pool: Pool, entries: OutboxEntry[], onRefused: OnRelease, mode: Mode): Promise<ApplyResult> {
  const out: ApplyResult = { applied: 0, fresh: [], duplicates: 0, refused: [], anomalies: [], quarantined: [] };
  if (entries.length === 0) return out;
  const oneByOne = mode === 'entry';
  return withTx(pool, async (tx) => {
    // No tier lock up front: the tier rows are locked only when the counters move (in tier id order), at the end of
    // the batch. Two processes never drain one event at once (the outbox lease), and every other transaction that moves
    // a booking moves its own rows only (the persist worker is the only writer of counters and states).
    if (mode === 'batch') await tx.query("SELECT set_config('floodgate.defer_counters', 'on', true)");
    const { rows } = await tx.query<{ key: string }>(
      'INSERT INTO processed_events (key) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING key',
      [entries.map(markerOf)],
    );
    const fresh = new Set(rows.map((r) => r.key));
    let run: OutboxEntry[] = [];
    for (const e of entries) {
      if (!fresh.delete(markerOf(e))) {
        out.duplicates++;
        continue;
      }
      if (oneByOne) {
        await tx.query('SAVEPOINT entry');
        try {
          await applyRun(tx, e.type, [e], out);
          await tx.query('RELEASE SAVEPOINT entry');
        } catch (err) {
          if (!isDataError(err)) throw err;
          await tx.query('ROLLBACK TO SAVEPOINT entry');
          await quarantine(tx, e, err, out);
          continue;
        }
      } else if (run.length > 0 && run[0]!.type !== e.type) {
        await applyRun(tx, run[0]!.type, run, out);
        run = [];
      }
      if (!oneByOne) run.push(e);
      out.fresh.push(e);
      out.applied++;
    }
    if (run.length > 0) await applyRun(tx, run[0]!.type, run, out);
    if (mode === 'batch') {
      try {
        await tx.query('SELECT apply_tier_deltas()');
      } catch (err) {
        if (!isRefusal(err)) throw err;
        throw new CountersRefused(err);
      }
    }
    const poisonHolds = out.quarantined.filter((q) => q.entry.type === 'BookingCreated').map((q) => q.entry);
    if (out.refused.length > 0 || poisonHolds.length > 0) await onRefused(out.refused, poisonHolds);
    return out;
  });
}
