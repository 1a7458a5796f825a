import { withTx } from '../../platform/pg.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import { newEventId, newTierId, type EventId, type TierId } from '../ids.js';
import { eventKeys } from '../keys.js';
import { readTierStates } from '../inventory/inventory.js';

export type SectionInput = { id: string; rows: number; seatsPerRow: number };
export type TierInput = {
  name: string;
  price: number;
  currency: string;
  capacity: number;
  seating?: { sections: SectionInput[] } | undefined;
};
export type EventInput = {
  name: string;
  category: string;
  venue: string;
  startsAt: string;
  salesOpenAt?: string | undefined;
  maxTicketsPerUser?: number | undefined;
  /** IANA time zone of the venue (e.g. `Europe/Paris`), in which messages state the start time; UTC when not given. */
  timeZone?: string | undefined;
  tiers: TierInput[];
};

export type Section = { id: string; rows: number; seatsPerRow: number };
export type Tier = {
  id: TierId;
  name: string;
  price: number;
  currency: string;
  capacity: number;
  seated: boolean;
  sections: Section[];
};
export type PublicQueue = { enabled: boolean; opensAt: string; admissionRatePerSecond: number; passTtlSeconds: number; seedHash: string };
export type EventRecord = {
  id: EventId;
  name: string;
  category: string;
  venue: string;
  startsAt: string;
  salesOpenAt: string;
  maxTicketsPerUser: number;
  /** IANA time zone of the venue (`UTC` for events created without one). */
  timeZone: string;
  status: 'on_sale' | 'closed';
  /** The waiting room, if the event has one (the fairness seed is never part of this). */
  queue: PublicQueue | null;
  tiers: Tier[];
};
export type TierCounts = { capacity: number; available: number; held: number; sold: number };
export type EventWithAvailability = Omit<EventRecord, 'tiers'> & { tiers: (Tier & TierCounts)[] };

/** A time zone name this runtime knows (IANA, e.g. `Europe/Paris`, or `UTC`). */
export function isTimeZone(tz: string): boolean {
  if (!/^[A-Za-z0-9_+/-]{1,64}$/.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Semantic checks the schema cannot express; they are bugs if they fail here (the API checks first). */
export function checkEventInput(input: EventInput): string | null {
  if (input.timeZone !== undefined && !isTimeZone(input.timeZone)) return 'timeZone: not a known IANA time zone (e.g. Europe/Paris)';
  const sectionIds = new Set<string>();
  for (const [i, t] of input.tiers.entries()) {
    if (!t.seating) continue;
    let seats = 0;
    for (const s of t.seating.sections) {
      if (sectionIds.has(s.id)) return `tiers.${i}.seating: section ${s.id} appears twice`;
      sectionIds.add(s.id);
      seats += s.rows * s.seatsPerRow;
    }
    if (seats !== t.capacity) return `tiers.${i}.capacity: must equal the seats of its sections (${seats})`;
  }
  return null;
}

type EventRow = {
  id: string;
  name: string;
  category: string;
  venue: string;
  starts_at: Date;
  sales_open_at: Date;
  max_tickets_per_user: number;
  time_zone: string;
  status: 'on_sale' | 'closed';
  queue: (PublicQueue & { seed?: string }) | null;
  tiers: { id: string; name: string; price: number; currency: string; capacity: number; seated: boolean; sections: Section[] | null }[];
};

const SELECT_EVENTS = `
  SELECT e.id, e.name, e.category, e.venue, e.starts_at, e.sales_open_at, e.max_tickets_per_user, e.time_zone, e.status, e.queue,
         (SELECT json_agg(json_build_object('id', t.id, 'name', t.name, 'price', t.price, 'currency', t.currency,
                   'capacity', t.capacity, 'seated', t.seated,
                   'sections', (SELECT json_agg(json_build_object('id', s.id, 'rows', s.rows, 'seatsPerRow', s.seats_per_row)
                                                ORDER BY s.position) FROM sections s WHERE s.event_id = e.id AND s.tier_id = t.id))
                   ORDER BY t.position) FROM tiers t WHERE t.event_id = e.id) AS tiers
    FROM events e`;

const toEvent = (r: EventRow): EventRecord => ({
  id: r.id as EventId,
  name: r.name,
  category: r.category,
  venue: r.venue,
  startsAt: r.starts_at.toISOString(),
  salesOpenAt: r.sales_open_at.toISOString(),
  maxTicketsPerUser: r.max_tickets_per_user,
  timeZone: r.time_zone,
  status: r.status,
  queue: r.queue
    ? { enabled: r.queue.enabled, opensAt: r.queue.opensAt, admissionRatePerSecond: r.queue.admissionRatePerSecond, passTtlSeconds: r.queue.passTtlSeconds, seedHash: r.queue.seedHash }
    : null,
  tiers: r.tiers.map((t) => ({ ...t, id: t.id as TierId, sections: t.sections ?? [] })),
});

export function createCatalog(d: EngineDeps) {
  /**
   * Per-process catalog cache: one load at a time per event (a thousand requests arriving when an entry goes stale
   * must not become a thousand queries). While a reload is pending or has failed (Postgres away), everyone is served
   * the last good record; a failed reload is tried again a second later.
   */
  type Entry = { at: number; value: Promise<EventRecord | null>; last: EventRecord | null; pending: boolean };
  const cache = new Map<string, Entry>();

  async function load(id: EventId): Promise<EventRecord | null> {
    const { rows } = await d.pg.query<EventRow>(`${SELECT_EVENTS} WHERE e.id = $1`, [id]);
    return rows[0] ? toEvent(rows[0]) : null;
  }

  const withCounts = async (e: EventRecord): Promise<EventWithAvailability> => {
    const c = await readTierStates(d, e.id);
    return {
      ...e,
      tiers: e.tiers.map((t) => {
        const s = c[t.id];
        return { ...t, capacity: t.capacity, available: s?.free ?? 0, held: s?.held ?? 0, sold: s?.sold ?? 0 };
      }),
    };
  };

  return {
    /** Creates the event, its tiers, sections and seats in one transaction. Arming is the inventory's job. */
    async create(input: EventInput): Promise<EventRecord> {
      const problem = checkEventInput(input);
      if (problem) throw new Error(`invalid event input: ${problem}`);
      const id = newEventId();
      await withTx(d.pg, async (tx) => {
        await tx.query(
          `INSERT INTO events (id, name, category, venue, starts_at, sales_open_at, max_tickets_per_user, time_zone)
           VALUES ($1, $2, $3, $4, $5, COALESCE($6::timestamptz, now()), $7, $8)`,
          [id, input.name, input.category, input.venue, input.startsAt, input.salesOpenAt ?? null,
            input.maxTicketsPerUser ?? d.config.defaultMaxTicketsPerUser, input.timeZone ?? 'UTC'],
        );
        let sectionPos = 0;
        for (const [pos, t] of input.tiers.entries()) {
          const tierId = newTierId();
          await tx.query(
            `INSERT INTO tiers (id, event_id, name, price, currency, capacity, seated, position) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
            [tierId, id, t.name, t.price, t.currency, t.capacity, Boolean(t.seating), pos],
          );
          for (const s of t.seating?.sections ?? []) {
            await tx.query(
              `INSERT INTO sections (event_id, id, tier_id, rows, seats_per_row, position) VALUES ($1,$2,$3,$4,$5,$6)`,
              [id, s.id, tierId, s.rows, s.seatsPerRow, sectionPos++],
            );
          }
        }
        await tx.query(
          `INSERT INTO seats (event_id, seat_id, section_id, row_no, seat_no, tier_id)
           SELECT s.event_id, s.id || '-' || r || '-' || n, s.id, r, n, s.tier_id
             FROM sections s, generate_series(1, s.rows) r, generate_series(1, s.seats_per_row) n
            WHERE s.event_id = $1`,
          [id],
        );
      });
      const created = (await load(id))!;
      cache.set(id, { at: Date.now(), value: Promise.resolve(created), last: created, pending: false });
      return created;
    },

    /** The event's record, cached per process for catalogCacheMs (unknown ids for a second). */
    async cached(id: EventId): Promise<EventRecord | null> {
      const now = Date.now();
      const hit = cache.get(id);
      if (hit && (now - hit.at < d.config.catalogCacheMs || hit.pending)) {
        return hit.pending && hit.last ? hit.last : hit.value;
      }
      const entry: Entry = { at: now, value: load(id), last: hit?.last ?? null, pending: true };
      if (cache.size > 10_000) cache.clear();
      cache.set(id, entry);
      entry.value.then(
        (v) => {
          entry.pending = false;
          entry.last = v;
          if (v === null) entry.at = now - d.config.catalogCacheMs + 1000; // forget unknown ids after a second
        },
        () => {
          entry.pending = false;
          if (entry.last) {
            entry.value = Promise.resolve(entry.last);
            entry.at = Date.now() - d.config.catalogCacheMs + 1000; // serve the last record, try again in a second
          } else if (cache.get(id) === entry) {
            cache.delete(id); // a failed first load is not cached
          }
        },
      );
      return entry.last ?? entry.value;
    },

    async require(id: EventId): Promise<EventRecord> {
      const e = await this.cached(id);
      if (!e) throw new DomainError('EVENT_NOT_FOUND', `event ${id} does not exist`);
      return e;
    },

    /** Details with live availability per tier (the record from the cache: served while Postgres is away too). */
    async get(id: EventId): Promise<EventWithAvailability> {
      const e = await this.cached(id);
      if (!e) throw new DomainError('EVENT_NOT_FOUND', `event ${id} does not exist`);
      return withCounts(e);
    },

    async list(filter: { category?: string | undefined; status?: 'on_sale' | 'closed' | undefined; limit?: number }) {
      const { rows } = await d.pg.query<EventRow>(
        `${SELECT_EVENTS} WHERE ($1::text IS NULL OR e.category = $1) AND ($2::text IS NULL OR e.status = $2)
         ORDER BY e.starts_at, e.id LIMIT $3`,
        [filter.category ?? null, filter.status ?? null, filter.limit ?? 100],
      );
      return Promise.all(rows.map((r) => withCounts(toEvent(r))));
    },

    /** Free seats of each section as a seat map: one character per seat, row-major, "." free, "x" taken. */
    async seatMaps(id: EventId) {
      const e = await this.require(id);
      const maps = await d.redis.hgetall(eventKeys(d.ns, id).smap);
      return e.tiers.flatMap((t) =>
        t.sections.map((s) => {
          const map = (maps[s.id] ?? '').replace(/[hs]/g, 'x');
          return { id: s.id, tierId: t.id, rows: s.rows, seatsPerRow: s.seatsPerRow, available: map.split('.').length - 1, seatMap: map };
        }),
      );
    },

    /** Drops the cached record (after a settings change). */
    forget(id: EventId) {
      cache.delete(id);
    },
  };
}
export type Catalog = ReturnType<typeof createCatalog>;
