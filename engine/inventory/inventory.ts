import { ArmEventReply, assertNever } from '../../lua/codes.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import type { EventId } from '../ids.js';
import { eventKeys, globalKeys } from '../keys.js';

export type TierState = { cap: number; free: number; held: number; sold: number };
export type ArmSpec = {
  maxPerUser: number;
  opensAtMs: number;
  admission: boolean;
  tiers: { id: string; kind: 'ga' | 'seated'; cap: number; free: number; held: number; sold: number }[];
  sections: { id: string; tier: string; rows: number; perRow: number; map: string }[];
  buyers: [string, number][];
};

/** The sellable state of an event as Postgres (the system of record) has it. */
export async function specFromPostgres(d: EngineDeps, eventId: EventId): Promise<ArmSpec> {
  const ev = await d.pg.query<{ max_tickets_per_user: number; sales_open_at: Date }>(
    'SELECT max_tickets_per_user, sales_open_at FROM events WHERE id = $1',
    [eventId],
  );
  if (!ev.rows[0]) throw new DomainError('EVENT_NOT_FOUND', `event ${eventId} does not exist`);
  const [tiers, sections, taken, buyers] = await Promise.all([
    d.pg.query<{ id: string; seated: boolean; capacity: number; reserved: number; sold: number }>(
      'SELECT id, seated, capacity, reserved, sold FROM tiers WHERE event_id = $1 ORDER BY position',
      [eventId],
    ),
    d.pg.query<{ id: string; tier_id: string; rows: number; seats_per_row: number }>(
      'SELECT id, tier_id, rows, seats_per_row FROM sections WHERE event_id = $1 ORDER BY position',
      [eventId],
    ),
    d.pg.query<{ section_id: string; row_no: number; seat_no: number; holds: 'held' | 'sold' }>(
      `SELECT s.section_id, s.row_no, s.seat_no, st.holds
         FROM booking_seats bs JOIN bookings b ON b.id = bs.booking_id JOIN booking_states st ON st.state = b.state
         JOIN seats s ON s.event_id = bs.event_id AND s.seat_id = bs.seat_id
        WHERE bs.event_id = $1 AND bs.live`,
      [eventId],
    ),
    d.pg.query<{ user_id: string; n: string }>(
      `SELECT b.user_id, sum(b.ticket_count) AS n FROM bookings b JOIN booking_states st ON st.state = b.state
        WHERE b.event_id = $1 AND st.holds <> 'none' GROUP BY b.user_id`,
      [eventId],
    ),
  ]);
  const maps = new Map<string, { tier: string; rows: number; perRow: number; chars: string[] }>();
  for (const s of sections.rows) {
    maps.set(s.id, { tier: s.tier_id, rows: s.rows, perRow: s.seats_per_row, chars: Array<string>(s.rows * s.seats_per_row).fill('.') });
  }
  for (const t of taken.rows) {
    const m = maps.get(t.section_id)!;
    m.chars[(t.row_no - 1) * m.perRow + t.seat_no - 1] = t.holds === 'held' ? 'h' : 's';
  }
  return {
    maxPerUser: ev.rows[0].max_tickets_per_user,
    opensAtMs: ev.rows[0].sales_open_at.getTime(),
    admission: false,
    tiers: tiers.rows.map((t) => ({
      id: t.id,
      kind: t.seated ? 'seated' : 'ga',
      cap: t.capacity,
      free: t.capacity - t.reserved - t.sold,
      held: t.reserved,
      sold: t.sold,
    })),
    sections: [...maps].map(([id, m]) => ({ id, tier: m.tier, rows: m.rows, perRow: m.perRow, map: m.chars.join('') })),
    buyers: buyers.rows.map((b) => [b.user_id, Number(b.n)]),
  };
}

/** Tier counters of one event as Redis has them, by tier id. */
export async function readTierStates(d: Pick<EngineDeps, 'redis' | 'ns'>, eventId: EventId): Promise<Record<string, TierState>> {
  const inv = await d.redis.hgetall(eventKeys(d.ns, eventId).inv);
  const out: Record<string, TierState> = {};
  for (const [field, v] of Object.entries(inv)) {
    const [name, tier] = field.split(':') as [string, string];
    if (name !== 'cap' && name !== 'free' && name !== 'held' && name !== 'sold') continue;
    (out[tier] ??= { cap: 0, free: 0, held: 0, sold: 0 })[name] = Number(v);
  }
  return out;
}

export function createInventory(d: EngineDeps) {
  const run = (eventId: EventId, spec: ArmSpec, mode: 'arm' | 'rebuild') => {
    const k = eventKeys(d.ns, eventId);
    return d.redis.armEvent(k.meta, k.inv, k.sec, k.smap, k.buyers, eventId, JSON.stringify(spec), mode);
  };
  return {
    /** Loads a new event's inventory from Postgres into Redis; arming an armed event changes nothing. */
    async arm(eventId: EventId): Promise<'armed' | 'already-armed'> {
      const [code] = await run(eventId, await specFromPostgres(d, eventId), 'arm');
      await d.redis.sadd(globalKeys(d.ns).events, eventId);
      switch (code) {
        case ArmEventReply.ARMED:
          return 'armed';
        case ArmEventReply.ALREADY_ARMED:
          return 'already-armed';
        default:
          return assertNever(code, 'armEvent');
      }
    },

    /** Tier counters as Redis has them. */
    redisState: (eventId: EventId) => readTierStates(d, eventId),

    /** Tier counters as Postgres has them (reserved = held). */
    async postgresState(eventId: EventId): Promise<Record<string, TierState>> {
      const { rows } = await d.pg.query<{ id: string; capacity: number; reserved: number; sold: number }>(
        'SELECT id, capacity, reserved, sold FROM tiers WHERE event_id = $1',
        [eventId],
      );
      return Object.fromEntries(
        rows.map((t) => [t.id, { cap: t.capacity, free: t.capacity - t.reserved - t.sold, held: t.reserved, sold: t.sold }]),
      );
    },

    /** Armed events (the workers' list of what to drain and sweep). */
    async armedEvents(): Promise<EventId[]> {
      return (await d.redis.smembers(globalKeys(d.ns).events)) as EventId[];
    },
  };
}
export type Inventory = ReturnType<typeof createInventory>;
