import { takeLease } from '../lease.js';
import type { EngineDeps } from '../deps.js';
import type { BookingId, EventId, TierId, UserId } from '../ids.js';
import { eventKeys } from '../keys.js';

/** Domain events the scripts append to each event's outbox stream, in the same script as the change. */
export const OUTBOX_TYPES = [
  'BookingCreated',
  'BookingCancelled',
  'BookingFailed',
  'ReservationExpired',
  'BookingConfirmed',
  'BookingRefunded',
  'PaymentStarted',
  'PaymentDeclined',
] as const;
export type OutboxType = (typeof OUTBOX_TYPES)[number];

export type OutboxEntry = {
  /** The stream entry id (ms-seq). */
  id: string;
  type: OutboxType;
  eventId: EventId;
  bookingId: BookingId;
  userId: UserId;
  tierId: TierId;
  count: number;
  seats: string[];
  atMs: number;
  expiresAtMs?: number;
  reason?: string;
  paymentRef?: string;
  /** BookingConfirmed of a payment that landed after the hold expired and re-took its tickets. */
  retaken?: boolean;
  /** BookingCreated: the buyer's Idempotency-Key and the request fingerprint, when the hold was made with one. */
  idemKey?: string;
  idemFp?: string;
  /** PaymentStarted, PaymentDeclined: the payment attempt (1-based). */
  attempt?: number;
  /** PaymentStarted: the holder the buyer gave with the payment (absent = not given). */
  holderName?: string;
  holderEmail?: string;
  holderPhone?: string;
};

const GROUP = 'persist';
/** One consumer name per group: the per-event lease makes one process at a time the reader, so its pending
 *  entries (read but not acknowledged before a crash) are exactly what the next lease holder must redo. */
const CONSUMER = 'lease-holder';

export function parseEntry(id: string, fields: string[]): OutboxEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  if (!OUTBOX_TYPES.includes(f.type as OutboxType)) throw new Error(`outbox entry ${id}: unknown type ${f.type}`);
  const e: OutboxEntry = {
    id,
    type: f.type as OutboxType,
    eventId: f.eventId as EventId,
    bookingId: f.bookingId as BookingId,
    userId: f.userId as UserId,
    tierId: f.tierId as TierId,
    count: Number(f.count),
    seats: f.seats ? f.seats.split(',') : [],
    atMs: Number(f.atMs),
  };
  if (f.expiresAtMs) e.expiresAtMs = Number(f.expiresAtMs);
  if (f.reason) e.reason = f.reason;
  if (f.paymentRef) e.paymentRef = f.paymentRef;
  if (f.retaken === '1') e.retaken = true;
  if (f.idemKey) e.idemKey = f.idemKey;
  if (f.idemFp) e.idemFp = f.idemFp;
  if (f.attempt) e.attempt = Number(f.attempt); if (f.holderName) e.holderName = f.holderName; if (f.holderEmail) e.holderEmail = f.holderEmail; if (f.holderPhone) e.holderPhone = f.holderPhone;
  return e;
}

type StreamReply = [string, [string, string[]][]][] | null;

export function createOutbox(d: EngineDeps) {
  const groupsReady = new Set<string>();

  async function ensureGroup(key: string) {
    if (groupsReady.has(key)) return;
    try {
      await d.redis.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    groupsReady.add(key);
  }

  return {
    /** Takes (or renews) the exclusive right to drain one event's outbox. */
    async lease(eventId: EventId, owner: string, ttlMs: number, mode: 'take' | 'drop' = 'take'): Promise<boolean> {
      return takeLease(d.redis, eventKeys(d.ns, eventId).persistLease, owner, ttlMs, mode);
    },

    /** The next entries to apply: first those read before but never acknowledged, then new ones. */
    async read(eventId: EventId, count: number): Promise<OutboxEntry[]> {
      const key = eventKeys(d.ns, eventId).outbox;
      for (let attempt = 1; ; attempt++) {
        await ensureGroup(key);
        try {
          for (const from of ['0', '>']) {
            const reply = (await d.redis.xreadgroup('GROUP', GROUP, CONSUMER, 'COUNT', count, 'STREAMS', key, from)) as StreamReply;
            const entries = reply?.[0]?.[1] ?? [];
            if (entries.length > 0) return entries.map(([id, fields]) => parseEntry(id, fields ?? []));
          }
          return [];
        } catch (err) {
          // the stream (and its group) vanished, e.g. after a Redis loss: make the group again and read once more
          if (attempt > 1 || !String((err as Error).message).includes('NOGROUP')) throw err;
          groupsReady.delete(key);
        }
      }
    },

    /** Acknowledges applied entries and deletes them from the stream. */
    async ack(eventId: EventId, ids: string[]): Promise<void> {
      if (ids.length === 0) return;
      const key = eventKeys(d.ns, eventId).outbox;
      await d.redis.multi().xack(key, GROUP, ...ids).xdel(key, ...ids).exec();
    },

    /** Entries not yet applied and the age of the oldest (for metrics and tests). */
    async backlog(eventId: EventId): Promise<{ entries: number; oldestAgeMs: number }> {
      const key = eventKeys(d.ns, eventId).outbox;
      const [len, first] = await Promise.all([d.redis.xlen(key), d.redis.xrange(key, '-', '+', 'COUNT', 1)]);
      const oldest = first[0] ? Number(first[0][0].split('-')[0]) : null;
      return { entries: len, oldestAgeMs: oldest === null ? 0 : Math.max(0, Date.now() - oldest) };
    },
  };
}
export type Outbox = ReturnType<typeof createOutbox>;
