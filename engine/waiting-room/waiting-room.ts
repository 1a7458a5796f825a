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
import { takeLease } from '../lease.js';
import type { EventId, UserId } from '../ids.js';
import { eventKeys, globalKeys } from '../keys.js';
import { signAdmission } from './admission-token.js';
import { createChangeFeed, publishChange, type ChangeFeed } from './changes.js';

/** An event's waiting-room settings as the admin sets them. */
export type QueueSettings = {
  enabled: boolean;
  /** When people may start joining (ISO). Arrivals before the sale opens are drawn into a fair random order. */
  opensAt: string;
  /** Admission ceiling, people per second. */
  admissionRatePerSecond: number;
  /** How long an admission pass lasts. */
  passTtlSeconds: number;
  /**
   * A pass not used (no hold made with it) within this many seconds of its buyer being told (SSE push or a status
   * read) gives its slot to the next person. Default 20.
   */
  passGraceSeconds?: number | undefined;
  /** The same for a pass its buyer has not looked at yet, counted from the admission. Default 90 (beyond the wait page's 60 s poll). */
  passUnseenGraceSeconds?: number | undefined;
};

export const DEFAULT_PASS_GRACE_SECONDS = 20;
export const DEFAULT_PASS_UNSEEN_GRACE_SECONDS = 90;

/**
 * The share of held tickets admission counts as coming back: (returned + 1) / (resolved + 10) over this sale's
 * resolved holds (returned = expired, cancelled or failed; resolved = those plus the confirmed), so it starts at a
 * conservative 10 % and follows what is observed; bounded to [0, 0.9].
 */
export const HELD_SHARE_PRIOR = { returned: 1, resolved: 10 } as const;
export const HELD_SHARE_MAX = 0.9;
export function heldShareOf(returned: number, resolved: number): number {
  const share = (returned + HELD_SHARE_PRIOR.returned) / (resolved + HELD_SHARE_PRIOR.resolved);
  return Math.min(HELD_SHARE_MAX, Math.max(0, share));
}

/** How the stock stands for one person in line: whether anything can still reach them, and how likely. */
export function standing(s: { ahead: number; free: number; held: number; reserved: number; unusedPasses: number; heldSharePermille: number }) {
  const heldReturning = Math.floor((s.held * s.heldSharePermille) / 1000);
  const freeForLine = s.free - s.reserved; // free tickets no pass has been given for
  // every unused pass is expected to take at least one ticket; the rest of the free stock and the held tickets expected
  // back (in the observed share) are what can still reach the line, each person ahead taking at least one
  const reach = Math.max(0, s.free - s.unusedPasses) + heldReturning;
  const soldOut = freeForLine <= 0 && reach <= s.ahead;
  return { soldOut, chance: freeForLine > s.ahead ? ('likely' as const) : ('unlikely' as const), heldReturning, reach, freeForLine };
}

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
  /** Make a hold with the pass by then, or its slot goes to the next person (absent once the pass has a hold). */
  admissionUseBy?: string;
  /** How many tickets the pass allows: the event's per-person limit, or fewer when only that many were left. */
  passTickets?: number;
  /** Only scattered single seats are left: hold them one by one, or as "best available, not together". */
  singleSeatsOnly?: boolean;
  /** Waiting while free stock does not reach your place: tickets now held by people admitted before you, which may come back. */
  ticketsHeldAhead?: number;
  /** Waiting: whether free stock reaches your place ('likely') or only tickets that come back could ('unlikely'). */
  chance?: 'likely' | 'unlikely';
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
  /** What the last admission step of each event saw (a change is published only when it differs). */
  const lastState = new Map<EventId, string>();

  async function stored(eventId: EventId): Promise<StoredQueue | null> {
    const { rows } = await d.pg.query<{ queue: StoredQueue | null }>('SELECT queue FROM events WHERE id = $1', [eventId]);
    if (!rows[0]) throw new DomainError('EVENT_NOT_FOUND', `event ${eventId} does not exist`);
    return rows[0].queue;
  }

  /** Writes the settings to Redis (cfg + the event's admission flag) and the admission worker's list. */
  async function apply(eventId: EventId, q: StoredQueue, salesOpenAtMs: number, ticketsPerPass: number) {
    const k = keys(eventId);
    const [code] = await d.redis.configureQueue(k.wrCfg, k.meta, q.enabled ? '1' : '0', Date.parse(q.opensAt), salesOpenAtMs,
      q.admissionRatePerSecond, q.passTtlSeconds * 1000, ticketsPerPass, q.seed, q.seedHash,
      (q.passGraceSeconds ?? DEFAULT_PASS_GRACE_SECONDS) * 1000, (q.passUnseenGraceSeconds ?? DEFAULT_PASS_UNSEEN_GRACE_SECONDS) * 1000);
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
        passGraceSeconds: s.passGraceSeconds ?? DEFAULT_PASS_GRACE_SECONDS,
        passUnseenGraceSeconds: s.passUnseenGraceSeconds ?? DEFAULT_PASS_UNSEEN_GRACE_SECONDS,
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
      const r = await d.redis.queueStatus(k.wrCfg, k.wrPre, k.wrLine, k.wrPasses, k.wrUsed, k.wrDone, k.inv, k.wrGrace, k.wrSeen, k.meta,
        member, scriptNow(d.clock));
      switch (r[0]) {
        case QueueStatusReply.FOUND:
          break;
        case QueueStatusReply.NOT_IN_QUEUE:
          throw new DomainError('QUEUE_NOT_FOUND', 'no such place in a waiting room');
        default:
          assertNever(r[0], 'queueStatus');
      }
      const [, rawStatus, aheadS, passExpS, salesAtS, freeS, heldS, admittedS, , bookingId, , rateS, passTicketsS, useByS, reservedS,
        shareS, unusedS, tppS, ...samples] = r;
      const ahead = Number(aheadS);
      const salesAt = Number(salesAtS);
      const free = Number(freeS);
      const held = Number(heldS);
      let status = rawStatus as QueueStatus['status'];
      const stand = standing({ ahead: Math.max(0, ahead), free, held, reserved: Number(reservedS), unusedPasses: Number(unusedS), heldSharePermille: Number(shareS) });
      // nothing free and nothing held that could come back far enough to reach this place (see standing())
      if (status === 'waiting' && ahead >= 0 && stand.soldOut) status = 'sold_out';
      const out: QueueStatus = {
        queueId, eventId, status, position: null, aheadOfYou: null, estimatedWaitSeconds: null, estimatedWaitRange: null,
        drawAt: new Date(salesAt).toISOString(),
      };
      if (status === 'admitted') {
        const exp = Number(passExpS);
        out.admissionToken = signAdmission(d.config.admissionSecret, { eventId, userId, member, expiresAtMs: exp });
        out.admissionExpiresAt = new Date(exp).toISOString();
        if (useByS) out.admissionUseBy = new Date(Number(useByS)).toISOString();
        out.passTickets = passTicketsS ? Number(passTicketsS) : Number(tppS);
        out.singleSeatsOnly = !!passTicketsS && (await d.redis.hget(k.wrCfg, 'singles')) === '1';
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
      out.chance = stand.chance;
      if (stand.chance === 'unlikely') out.ticketsHeldAhead = held;
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
      if (stand.chance === 'unlikely') {
        // this place is reached only by tickets that come back: not before the holds ahead resolve. The n-th earliest hold
        // deadline, n = the people ahead beyond the free stock (each takes at least one ticket), is the soonest it can
        // be without cancellations; how late is unknown.
        const n = Math.max(0, ahead - Math.max(0, stand.freeForLine));
        const [, deadline] = await d.redis.zrange(k.expiry, String(n), String(n), 'WITHSCORES');
        const untilHolds = deadline ? Math.max(0, Math.ceil((Number(deadline) - now) / 1000)) : 0;
        out.estimatedWaitSeconds = Math.max(out.estimatedWaitSeconds, untilHolds);
        out.estimatedWaitRange = { low: Math.min(out.estimatedWaitRange.low, out.estimatedWaitSeconds), high: null };
      }
      return out;
    },

    /** Gives the place up; `unusedPass`: the person held a pass they never made a hold with (they found nothing, or gave up). */
    async leave(queueId: string, userId: UserId): Promise<{ unusedPass: boolean }> {
      const place = parseQueueId(queueId);
      if (!place || place.member !== memberOf(d.config.admissionSecret, place.eventId, userId)) throw new DomainError('QUEUE_NOT_FOUND', 'no such place in a waiting room');
      const k = keys(place.eventId);
      // read before leaving, for the metric only (leaveQueue decides atomically)
      const [pass, used] = await Promise.all([d.redis.zscore(k.wrPasses, place.member), d.redis.hexists(k.wrUsed, place.member)]);
      const [code] = await d.redis.leaveQueue(k.wrPre, k.wrLine, k.wrPasses, k.wrDone, place.member);
      switch (code) {
        case LeaveQueueReply.LEFT:
          return { unusedPass: pass !== null && used === 0 };
        case LeaveQueueReply.NOT_IN_QUEUE:
          throw new DomainError('QUEUE_NOT_FOUND', 'no such place in a waiting room');
        default:
          return assertNever(code, 'leaveQueue');
      }
    },

    /**
     * One admission step for one event: at most maxAdmit people, never more than the stock can serve (held tickets
     * counted at `heldSharePermille`; passes for one seat each when `singles`). `waitsMs` has each admitted person's wait,
     * from taking the place to this admission. Publishes a change (engine/waiting-room/changes.ts) when anything a
     * status shows may have moved, so open status streams read again at once.
     */
    async admit(eventId: EventId, maxAdmit: number, o: { heldSharePermille?: number; singles?: boolean; activeCap?: number } = {}) {
      const k = keys(eventId);
      const share = o.heldSharePermille ?? Math.round(heldShareOf(0, 0) * 1000);
      const r = await d.redis.admitNext(k.wrCfg, k.wrPre, k.wrLine, k.wrPasses, k.wrUsed, k.wrDone, k.inv, k.wrJoined, k.wrGrace, k.wrSeen,
        k.meta, scriptNow(d.clock), maxAdmit, share, o.singles ? '1' : '0', Math.max(0, Math.floor(o.activeCap ?? 0)));
      switch (r[0]) {
        case AdmitNextReply.TICKED:
          break;
        case AdmitNextReply.IDLE:
          return null;
        default:
          assertNever(r[0], 'admitNext');
      }
      const [, admitted, expired, free, held, outstanding, waiting, lapsed, reserved, ...waitsMs] = r.map(Number) as number[];
      // tell every open status stream of this event to read again when anything a status shows may have changed
      const state = `${free}:${held}:${reserved}:${outstanding}:${waiting}:${share}`;
      if (admitted! > 0 || expired! > 0 || lastState.get(eventId) !== state) {
        lastState.set(eventId, state);
        await publishChange(d.redis, d.ns, eventId);
      }
      return {
        admitted: admitted!, expired: expired!, lapsed: lapsed!, free: free!, held: held!, outstanding: outstanding!, waiting: waiting!,
        reserved: reserved!, waitsMs,
      };
    },

    /**
     * The share of held tickets that comes back in this sale, measured live from the event's outbox: resolved holds
     * (ReservationExpired, BookingCancelled, BookingFailed = returned; BookingConfirmed = kept) are counted as the
     * stream is read, from where the last call stopped (at most `maxEntries` entries a call). Per mille, see heldShareOf.
     * One caller at a time per event (the admission worker holds the event's lease).
     */
    async measureHeldShare(eventId: EventId, maxEntries = 5000): Promise<{ permille: number; returned: number; resolved: number }> {
      const k = keys(eventId);
      const [pos, returned0, resolved0] = await d.redis.hmget(k.wrShare, 'pos', 'returned', 'resolved');
      let returned = Number(returned0 ?? 0);
      let resolved = Number(resolved0 ?? 0);
      const entries = await d.redis.xrange(k.outbox, pos ? `(${pos}` : '-', '+', 'COUNT', maxEntries);
      if (entries.length) {
        for (const [, fields] of entries) {
          const type = fields[fields.indexOf('type') + 1];
          if (type === 'BookingConfirmed') resolved++;
          else if (type === 'ReservationExpired' || type === 'BookingCancelled' || type === 'BookingFailed') {
            resolved++;
            returned++;
          }
        }
        await d.redis.hset(k.wrShare, 'pos', entries.at(-1)![0], 'returned', returned, 'resolved', resolved);
      }
      return { permille: Math.round(heldShareOf(returned, resolved) * 1000), returned, resolved };
    },

    /**
     * Whether the free stock is only scattered single seats: no general-admission tier has two free tickets and no
     * row of a seated section has two free seats side by side. Read only when few tickets are left (at most
     * `upTo` free), where it decides the size of passes; above that, false.
     */
    async singlesOnly(eventId: EventId, upTo = 100): Promise<boolean> {
      const k = keys(eventId);
      const inv = await d.redis.hgetall(k.inv);
      let free = 0;
      for (const [f, v] of Object.entries(inv)) {
        if (!f.startsWith('free:')) continue;
        free += Number(v);
        if (inv[`kind:${f.slice(5)}`] === 'ga' && Number(v) >= 2) return false;
      }
      if (free < 2 || free > upTo) return free === 1;
      const [sec, smap] = await Promise.all([d.redis.hgetall(k.sec), d.redis.hgetall(k.smap)]);
      for (const [section, layout] of Object.entries(sec)) {
        const per = Number(layout.split(',')[2]);
        const seats = smap[section] ?? '';
        for (let at = 0; at + per <= seats.length; at += per) if (seats.slice(at, at + per).includes('..')) return false;
      }
      return true;
    },

    /** What the pace of admission (pace.ts) reads each tick: tickets sold so far, and tickets per pass. */
    async paceInputs(eventId: EventId): Promise<{ sold: number; ticketsPerPass: number }> {
      const k = keys(eventId);
      const [inv, tpp] = await Promise.all([d.redis.hgetall(k.inv), d.redis.hget(k.wrCfg, 'tpp')]);
      let sold = 0;
      for (const [f, v] of Object.entries(inv)) if (f.startsWith('sold:')) sold += Number(v);
      return { sold, ticketsPerPass: Number(tpp ?? 1) || 1 };
    },

    /** The admission ceiling of an event (people per second), or 0 when its waiting room is off. */
    async rate(eventId: EventId): Promise<number> {
      const [enabled, rate] = await d.redis.hmget(keys(eventId).wrCfg, 'enabled', 'rate');
      return enabled === '1' ? Number(rate) : 0;
    },

    /** Takes (or renews, or with 'drop' gives up) the exclusive right to run one event's admission steps. */
    async lease(eventId: EventId, owner: string, ttlMs: number, mode: 'take' | 'drop' = 'take'): Promise<boolean> {
      return takeLease(d.redis, keys(eventId).wrLease, owner, ttlMs, mode);
    },

    /** A feed of this engine's status changes (one Redis subscription, shared by every open status stream). */
    changeFeed: (): ChangeFeed => createChangeFeed(d.redis, d.ns),

    /** The engine's clock (the admission worker's token bucket runs on it). */
    now: () => d.clock.now(),

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
