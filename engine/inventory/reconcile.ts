import { withTx } from '../../platform/pg.js';
import type { EngineDeps } from '../deps.js';
import type { EventId } from '../ids.js';
import { eventKeys } from '../keys.js';
import { markerOf, type ApplyResult } from '../booking/persist.js';
import { parseEntry, type OutboxEntry } from '../outbox/outbox.js';

type Holds = 'none' | 'held' | 'sold';
type Counters = { free: number; held: number; sold: number };
export type Difference = { tier?: string; seat?: string; field: string; redis: number | string; expected: number | string };
export type Reconciliation = { eventId: EventId; mismatch: number; differences: Difference[]; pendingEntries: number };

/** How each domain event moves a booking between none / held / sold (only from the class it expects); null: no move. */
const EFFECT: Record<OutboxEntry['type'], { from: Holds[]; to: Holds } | null> = {
  BookingCreated: { from: ['none'], to: 'held' },
  BookingCancelled: { from: ['held'], to: 'none' },
  BookingFailed: { from: ['held'], to: 'none' },
  ReservationExpired: { from: ['held'], to: 'none' },
  BookingConfirmed: { from: ['held', 'none'], to: 'sold' },
  BookingRefunded: { from: ['sold'], to: 'none' },
  // a payment's start and decline move a booking between held states only (PAYMENT_PENDING <-> PAYMENT_FAILED)
  PaymentStarted: null,
  PaymentDeclined: null,
};
const SEAT_CHAR: Record<Holds, string> = { none: '.', held: 'h', sold: 's' };

/**
 * Compares an event's Redis inventory with what Postgres (the system of record) says it must be. Redis is read in one
 * atomic step (counters, seat maps and the outbox entries not yet applied); Postgres in one snapshot, including which
 * of those entries it has applied meanwhile, so entries in flight are counted exactly once. The mismatch is the number
 * of tickets and seats on which they disagree (0 when exact).
 */
export async function reconcileEvent(d: EngineDeps, eventId: EventId): Promise<Reconciliation> {
  const k = eventKeys(d.ns, eventId);
  const res = await d.redis.multi().hgetall(k.inv).hgetall(k.smap).xrange(k.outbox, '-', '+').exec();
  if (!res || res.some(([err]) => err)) throw new Error('reconcile: reading Redis failed');
  const inv = res[0]![1] as Record<string, string>;
  const smap = res[1]![1] as Record<string, string>;
  const entries = (res[2]![1] as [string, string[]][]).map(([id, f]) => parseEntry(id, f));

  const pg = await withTx(d.pg, async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const tiers = await tx.query<{ id: string; capacity: number; reserved: number; sold: number }>(
      'SELECT id, capacity, reserved, sold FROM tiers WHERE event_id = $1',
      [eventId],
    );
    const sections = await tx.query<{ id: string; rows: number; seats_per_row: number }>('SELECT id, rows, seats_per_row FROM sections WHERE event_id = $1', [eventId]);
    const seats = await tx.query<{ section_id: string; row_no: number; seat_no: number; holds: Holds }>(
      `SELECT s.section_id, s.row_no, s.seat_no, st.holds FROM booking_seats bs JOIN bookings b ON b.id = bs.booking_id
         JOIN booking_states st ON st.state = b.state JOIN seats s ON s.event_id = bs.event_id AND s.seat_id = bs.seat_id
        WHERE bs.event_id = $1 AND bs.live`,
      [eventId],
    );
    const processed = await tx.query<{ key: string }>('SELECT key FROM processed_events WHERE key = ANY($1::text[])', [entries.map(markerOf)]);
    const ids = [...new Set(entries.map((e) => e.bookingId))];
    const classes = await tx.query<{ id: string; holds: Holds }>(
      'SELECT b.id, st.holds FROM bookings b JOIN booking_states st ON st.state = b.state WHERE b.id = ANY($1::text[])',
      [ids],
    );
    return { tiers: tiers.rows, sections: sections.rows, seats: seats.rows, processed: new Set(processed.rows.map((r) => r.key)), classes: classes.rows };
  });

  // expected = Postgres + the entries it has not applied yet, in stream order
  const expected = new Map<string, Counters & { cap: number }>(
    pg.tiers.map((t) => [t.id, { cap: t.capacity, free: t.capacity - t.reserved - t.sold, held: t.reserved, sold: t.sold }]),
  );
  const maps = new Map(pg.sections.map((s) => [s.id, { per: s.seats_per_row, chars: Array<string>(s.rows * s.seats_per_row).fill('.') }]));
  for (const s of pg.seats) maps.get(s.section_id)!.chars[(s.row_no - 1) * maps.get(s.section_id)!.per + s.seat_no - 1] = SEAT_CHAR[s.holds];
  const cls = new Map(pg.classes.map((c) => [c.id, c.holds]));
  const pending = entries.filter((e) => !pg.processed.has(markerOf(e)));
  for (const e of pending) {
    const now = cls.get(e.bookingId) ?? 'none';
    const eff = EFFECT[e.type];
    if (!eff || !eff.from.includes(now)) continue;
    cls.set(e.bookingId, eff.to);
    const t = expected.get(e.tierId);
    if (!t) continue;
    t[now === 'none' ? 'free' : now] -= e.count;
    t[eff.to === 'none' ? 'free' : eff.to] += e.count;
    for (const seat of e.seats) {
      const [section, row, num] = seat.split('-');
      const m = maps.get(section!);
      if (m) m.chars[(Number(row) - 1) * m.per + Number(num) - 1] = SEAT_CHAR[eff.to];
    }
  }

  const differences: Difference[] = [];
  let mismatch = 0;
  for (const [tier, want] of expected) {
    for (const field of ['cap', 'free', 'held', 'sold'] as const) {
      const got = Number(inv[`${field}:${tier}`] ?? NaN);
      if (got !== want[field]) {
        differences.push({ tier, field, redis: Number.isNaN(got) ? 'missing' : got, expected: want[field] });
        mismatch += Number.isNaN(got) ? want[field] || 1 : Math.abs(got - want[field]);
      }
    }
  }
  for (const [section, m] of maps) {
    const got = smap[section] ?? '';
    for (let i = 0; i < m.chars.length; i++) {
      if (got[i] !== m.chars[i]) {
        differences.push({ seat: `${section}-${Math.floor(i / m.per) + 1}-${(i % m.per) + 1}`, field: 'seat', redis: got[i] ?? 'missing', expected: m.chars[i]! });
        mismatch++;
      }
    }
  }
  return { eventId, mismatch, differences: differences.slice(0, 100), pendingEntries: pending.length };
}
export type { ApplyResult };
