import { createHash, createHmac, randomBytes } from 'node:crypto';
import { scriptNow } from '../clock.js';
import {
  AdmitNextReply,
  assertNever,
  ConfigureQueueReply,
  JoinQueueReply,
  LeaveQueueReply,
  QueueStatusReply,
} from '../../lua/codes.js';
import type { EngineDeps } from '../deps.js';
import { withTx } from '../../platform/pg.js';
import { DomainError } from '../errors.js';
import type { EventId, UserId } from '../ids.js';
import { eventKeys, globalKeys } from '../keys.js';
import { signAdmission } from './admission-token.js';

/** An event's waiting-room settings as the admin sets them. */
export type QueueSettings = {
  enabled: boolean;
  /** When people may start joining (ISO). Arrivals before the sale opens are drawn into a fair random order. */
  opensAt: string;
  /** Admission ceiling, people per second. */
  admissionRatePerSecond: number;
  /** How long an admission pass lasts. */
  passTtlSeconds: number;
};

/** Settings as stored in Postgres, with the fairness seed (secret until the sale opens) and its published hash. */
export type StoredQueue = QueueSettings & { seed: string; seedHash: string };

export type QueueStatus = {
  queueId: string;
  eventId: EventId;
  status: 'waiting' | 'admitted' | 'sold_out' | 'expired' | 'closed';
  /** 1-based place in line among those still waiting; null before the draw. */
  position: number | null;
  aheadOfYou: number | null;
  estimatedWaitSeconds: number | null;
  estimatedWaitRange: { low: number; high: number | null } | null;
  /** When the pre-opening group is drawn (the sale opens). */
  drawAt: string;
  admissionToken?: string;
  admissionExpiresAt?: string;
  bookingId?: string;
};

export const QUEUE_ID = /^q_([a-z0-9]{12})_([0-9a-f]{16})$/;

/**
 * A person's pseudonymous place id in an event's waiting room (the same every time: one place per person). Keyed
 * with the server's admission secret, so the published fairness record (which lists these ids) cannot be linked to a
 * user by someone who knows the user's id but not the secret; the draw stays checkable, as it is computed from the
 * published id and the seed alone. The "wr-member" label keeps it apart from the admission passes' MACs.
 */
export const memberOf = (secret: string, eventId: EventId, userId: UserId) =>
  createHmac('sha256', secret).update(`wr-member:${eventId}:${userId}`).digest('hex').slice(0, 16);
export const queueIdOf = (eventId: EventId, member: string) => `q_${eventId.slice(3)}_${member}`;
export function parseQueueId(queueId: string): { eventId: EventId; member: string } | null {
  const m = QUEUE_ID.exec(queueId);
  return m ? { eventId: `ev_${m[1]}` as EventId, member: m[2]! } : null;
}

/** The draw key of a pre-opening place, exactly as joinQueue computes it (anyone can recompute it from the seed). */
export const drawScore = (seed: string, member: string) =>
  parseInt(createHash('sha1').update(`${seed}:${member}`).digest('hex').slice(0, 13), 16);

type Sample = { at: number; total: number };
const parseSamples = (raw: string[]): Sample[] =>
  raw
    .filter(Boolean)
    .map((s) => {
      const [at, total] = s.split(':');
      return { at: Number(at), total: Number(total) };
    })
    .sort((a, b) => b.at - a.at);

/** Observed admissions per second over about the last 20 s and the last 2 min (null when not measurable). */
function observedRates(samples: Sample[], now: number, admitted: number): { short: number | null; long: number | null } {
  const rate = (minAgeMs: number) => {
    const ref = samples.find((s) => now - s.at >= minAgeMs);
    return ref && now > ref.at ? (admitted - ref.total) / ((now - ref.at) / 1000) : null;
  };
  return { short: rate(10_000), long: rate(60_000) };
}

export function createWaitingRoom(d: EngineDeps) {
  const keys = (eventId: EventId) => eventKeys(d.ns, eventId);

  async function stored(eventId: EventId): Promise<StoredQueue | null> {
    const { rows } = await d.pg.query<{ queue: StoredQueue | null }>('SELECT queue FROM events WHERE id = $1', [eventId]);
    if (!rows[0]) throw new DomainError('EVENT_NOT_FOUND', `event ${eventId} does not exist`);
    return rows[0].queue;
  }

  /** Writes the settings to Redis (cfg + the event's admission flag) and the admission worker's list. */
  async function apply(eventId: EventId, q: StoredQueue, salesOpenAtMs: number, ticketsPerPass: number) {
    const k = keys(eventId);
    const [code] = await d.redis.configureQueue(k.wrCfg, k.meta, q.enabled ? '1' : '0', Date.parse(q.opensAt), salesOpenAtMs,
      q.admissionRatePerSecond, q.passTtlSeconds * 1000, ticketsPerPass, q.seed, q.seedHash);
    switch (code) {
      case ConfigureQueueReply.CONFIGURED:
        break;
      case ConfigureQueueReply.NOT_ARMED:
        throw new DomainError('EVENT_CLOSED', 'this event is not on sale');
      default:
        assertNever(code, 'configureQueue');
    }
    if (q.enabled) await d.redis.sadd(globalKeys(d.ns).queues, eventId);
    else await d.redis.srem(globalKeys(d.ns).queues, eventId);
  }

  return {
    /**
     * Sets (or changes) an event's waiting room. The fairness seed is drawn the first time and kept; its SHA-256 is
     * published at once. `salesOpenAt` and `maxTicketsPerUser` are the event's own settings (changed here too).
     */
    async configure(eventId: EventId, s: QueueSettings & { salesOpenAt?: string | undefined; maxTicketsPerUser?: number | undefined }) {
      const prev = await stored(eventId);
      const seed = prev?.seed ?? randomBytes(32).toString('hex');
      const q: StoredQueue = {
        enabled: s.enabled, opensAt: new Date(s.opensAt).toISOString(), admissionRatePerSecond: s.admissionRatePerSecond,
        passTtlSeconds: s.passTtlSeconds, seed, seedHash: createHash('sha256').update(seed).digest('hex'),
      };
      // Postgres commits only once Redis has taken the settings: a refusal (closed event, bad value) changes nothing
      await withTx(d.pg, async (tx) => {
        const { rows } = await tx.query<{ sales_open_at: Date; max_tickets_per_user: number }>(
          `UPDATE events SET queue = $2, sales_open_at = COALESCE($3::timestamptz, sales_open_at),
                  max_tickets_per_user = COALESCE($4::int, max_tickets_per_user)
            WHERE id = $1 RETURNING sales_open_at, max_tickets_per_user`,
          [eventId, q, s.salesOpenAt ?? null, s.maxTicketsPerUser ?? null],
        );
        const ev = rows[0]!;
        if (ev.sales_open_at.getTime() < Date.parse(q.opensAt)) {
          throw new DomainError('QUEUE_OPENS_AFTER_SALES', `the waiting room must open by the sales opening (${ev.sales_open_at.toISOString()}); send an earlier opensAt or a later salesOpenAt`, { field: 'opensAt' });
        }
        await apply(eventId, q, ev.sales_open_at.getTime(), ev.max_tickets_per_user);
        await d.redis.hset(keys(eventId).meta, 'maxPerUser', ev.max_tickets_per_user);
      });
      return this.settings(eventId);
    },

    /** Re-applies stored settings to Redis (after arming or a rebuild). */
    async restore(eventId: EventId) {
      const q = await stored(eventId);
      if (!q) return;
      const { rows } = await d.pg.query<{ sales_open_at: Date; max_tickets_per_user: number }>(
        'SELECT sales_open_at, max_tickets_per_user FROM events WHERE id = $1',
        [eventId],
      );
      await apply(eventId, q, rows[0]!.sales_open_at.getTime(), rows[0]!.max_tickets_per_user);
    },

    /** Public settings (never the seed before the sale opens). */
    async settings(eventId: EventId) {
      const q = await stored(eventId);
      if (!q) return null;
      const { seed: _seed, ...pub } = q;
      return pub;
    },

    /** Takes (or finds again) the caller's one place in the event's waiting room. */
    async join(eventId: EventId, userId: UserId): Promise<{ created: boolean; status: QueueStatus }> {
      const k = keys(eventId);
      const member = memberOf(d.config.admissionSecret, eventId, userId);
      const [code, a] = await d.redis.joinQueue(k.wrCfg, k.wrPre, k.wrLine, k.wrPasses, k.wrDone, k.wrJoined, member, scriptNow(d.clock));
      switch (code) {
        case JoinQueueReply.JOINED:
        case JoinQueueReply.ALREADY_IN:
          return { created: code === JoinQueueReply.JOINED, status: await this.status(queueIdOf(eventId, member), userId) };
        case JoinQueueReply.FINISHED:
          if (a === 'left') throw new DomainError('QUEUE_LEFT', 'you left this waiting room; your place is gone');
          return { created: false, status: await this.status(queueIdOf(eventId, member), userId) };
        case JoinQueueReply.NOT_ENABLED:
          throw new DomainError('QUEUE_CLOSED', 'this event has no waiting room: book directly');
        case JoinQueueReply.CLOSED:
          throw new DomainError('QUEUE_CLOSED', 'the waiting room is closed');
        case JoinQueueReply.NOT_OPEN_YET:
          throw new DomainError('QUEUE_CLOSED', `the waiting room opens at ${new Date(Number(a)).toISOString()}`, {
            opensAt: new Date(Number(a)).toISOString(),
          });
        default:
          return assertNever(code, 'joinQueue');
      }
    },

    /** Where the caller stands. Someone else's place (or an unknown id) is QUEUE_NOT_FOUND. */
    async status(queueId: string, userId: UserId): Promise<QueueStatus> {
      const place = parseQueueId(queueId);
      if (!place || place.member !== memberOf(d.config.admissionSecret, place.eventId, userId)) throw new DomainError('QUEUE_NOT_FOUND', 'no such place in a waiting room');
      const { eventId, member } = place;
      const k = keys(eventId);
      const now = d.clock.now();
      const r = await d.redis.queueStatus(k.wrCfg, k.wrPre, k.wrLine, k.wrPasses, k.wrUsed, k.wrDone, k.inv, member, scriptNow(d.clock));
      switch (r[0]) {
        case QueueStatusReply.FOUND:
          break;
        case QueueStatusReply.NOT_IN_QUEUE:
          throw new DomainError('QUEUE_NOT_FOUND', 'no such place in a waiting room');
        default:
          assertNever(r[0], 'queueStatus');
      }
      const [, rawStatus, aheadS, passExpS, salesAtS, freeS, , admittedS, , bookingId, , rateS, ...samples] = r;
      const ahead = Number(aheadS);
      const salesAt = Number(salesAtS);
      const free = Number(freeS);
      let status = rawStatus as QueueStatus['status'];
      if (status === 'waiting' && free === 0) status = 'sold_out'; // nothing left to hold right now
      const out: QueueStatus = {
        queueId, eventId, status, position: null, aheadOfYou: null, estimatedWaitSeconds: null, estimatedWaitRange: null,
        drawAt: new Date(salesAt).toISOString(),
      };
      if (status === 'admitted') {
        const exp = Number(passExpS);
        out.admissionToken = signAdmission(d.config.admissionSecret, { eventId, userId, member, expiresAtMs: exp });
        out.admissionExpiresAt = new Date(exp).toISOString();
        out.position = 0;
        out.aheadOfYou = 0;
        if (bookingId) out.bookingId = bookingId;
        return out;
      }
      if (status !== 'waiting' && status !== 'sold_out') return out;
      const ceiling = Number(rateS);
      if (ahead < 0) {
        // before the draw: no place yet; the wait starts at the opening
        const untilDraw = Math.max(0, Math.ceil((salesAt - now) / 1000));
        out.estimatedWaitSeconds = untilDraw;
        out.estimatedWaitRange = { low: untilDraw, high: null };
        return out;
      }
      out.aheadOfYou = ahead;
      out.position = ahead + 1;
      if (status === 'sold_out') return out;
      const { short, long } = observedRates(parseSamples(samples), now, Number(admittedS));
      const rates = [short, long].filter((x): x is number => x !== null && x > 0);
      const best = rates.length ? rates[0]! : ceiling;
      const toWait = (rate: number) => Math.ceil((ahead + 1) / rate);
      out.estimatedWaitSeconds = toWait(best);
      out.estimatedWaitRange = {
        low: toWait(Math.max(ceiling, ...rates)),
        // with no admissions observed yet the slowest pace is unknown
        high: rates.length ? toWait(Math.min(...rates) * 0.8) : null,
      };
      return out;
    },

    async leave(queueId: string, userId: UserId): Promise<void> {
      const place = parseQueueId(queueId);
      if (!place || place.member !== memberOf(d.config.admissionSecret, place.eventId, userId)) throw new DomainError('QUEUE_NOT_FOUND', 'no such place in a waiting room');
      const k = keys(place.eventId);
      const [code] = await d.redis.leaveQueue(k.wrPre, k.wrLine, k.wrPasses, k.wrDone, place.member);
      switch (code) {
        case LeaveQueueReply.LEFT:
          return;
        case LeaveQueueReply.NOT_IN_QUEUE:
          throw new DomainError('QUEUE_NOT_FOUND', 'no such place in a waiting room');
        default:
          assertNever(code, 'leaveQueue');
      }
    },

    /**
     * One admission step for one event: at most maxAdmit people, never more than the stock can serve. `waitsMs` has
     * each admitted person's wait, from taking the place to this admission.
     */
    async admit(eventId: EventId, maxAdmit: number) {
      const k = keys(eventId);
      const r = await d.redis.admitNext(k.wrCfg, k.wrPre, k.wrLine, k.wrPasses, k.wrUsed, k.wrDone, k.inv, k.wrJoined, scriptNow(d.clock), maxAdmit);
      switch (r[0]) {
        case AdmitNextReply.TICKED:
          break;
        case AdmitNextReply.IDLE:
          return null;
        default:
          assertNever(r[0], 'admitNext');
      }
      const [, admitted, expired, free, held, outstanding, waiting, ...waitsMs] = r.map(Number) as number[];
      return { admitted: admitted!, expired: expired!, free: free!, held: held!, outstanding: outstanding!, waiting: waiting!, waitsMs };
    },

    /** The admission ceiling of an event (people per second), or 0 when its waiting room is off. */
    async rate(eventId: EventId): Promise<number> {
      const [enabled, rate] = await d.redis.hmget(keys(eventId).wrCfg, 'enabled', 'rate');
      return enabled === '1' ? Number(rate) : 0;
    },

    /** Events with a waiting room on: the admission worker's list. */
    async events(): Promise<EventId[]> {
      return (await d.redis.smembers(globalKeys(d.ns).queues)) as EventId[];
    },

    /**
     * What anyone needs to check the draw: the seed's published SHA-256, the seed itself once the sale has opened,
     * and the pre-opening places in drawn order (a page at a time) with their draw scores.
     */
    async fairness(eventId: EventId, page: { offset: number; limit: number }) {
      const q = await stored(eventId);
      if (!q) throw new DomainError('QUEUE_NOT_FOUND', 'this event has no waiting room');
      const k = keys(eventId);
      const salesAt = Number((await d.redis.hget(k.wrCfg, 'salesAt')) ?? 0);
      const revealed = d.clock.now() >= salesAt;
      const [count, order] = await Promise.all([
        d.redis.zcard(k.wrPre),
        revealed ? d.redis.zrange(k.wrPre, String(page.offset), String(page.offset + page.limit - 1), 'WITHSCORES') : Promise.resolve([] as string[]),
      ]);
      const places: { queueId: string; drawScore: number }[] = [];
      for (let i = 0; i < order.length; i += 2) places.push({ queueId: queueIdOf(eventId, order[i]!), drawScore: Number(order[i + 1]) });
      return {
        eventId,
        seedHash: q.seedHash,
        seed: revealed ? q.seed : null,
        drawAt: new Date(salesAt).toISOString(),
        algorithm:
          'Places taken before the sale opens are ordered by drawScore = the first 13 hex digits of sha1(seed + ":" + member), ' +
          'read as an integer, ties by member (the last 16 hex digits of the queueId); the seed is revealed when the sale opens and ' +
          'sha256(seed) must equal seedHash, published before. Places taken after the opening follow in arrival order.',
        preOpening: { count, offset: page.offset, places },
      };
    },
  };
}
export type WaitingRoom = ReturnType<typeof createWaitingRoom>;
