import {
  assertNever,
  ConfirmHoldReply,
  ExpireHoldReply,
  HoldBestReply,
  HoldGeneralReply,
  HoldSeatsReply,
  ReleaseHoldReply,
  type ReplyOf,
} from '../../lua/codes.js';
import { scriptNow } from '../clock.js';
import type { EngineDeps } from '../deps.js';
import { DomainError, UnavailableError } from '../errors.js';
import type { BookingId, EventId, TierId, UserId } from '../ids.js';
import { eventKeys } from '../keys.js';
import { rateLimitedError, type RateLimitCheck } from '../rate-limits.js';
import { decodeHold, type HoldRecord } from './hold-record.js';

export type HoldMode =
  | { kind: 'ga' }
  | { kind: 'seats'; seatIds: string[] }
  | { kind: 'best'; section?: string | undefined; adjacent: boolean };

export type HoldRequest = {
  eventId: EventId;
  bookingId: BookingId;
  userId: UserId;
  tierId?: TierId | undefined;
  ticketCount: number;
  mode: HoldMode;
  /** Idempotency-Key and the fingerprint of the request body it was sent with. */
  idempotency?: { key: string; fingerprint: string } | undefined;
  /** The admission pass (its waiting-room member id), required on events with the waiting room on. */
  pass?: string | undefined;
  /** Rate limits counted by the hold script itself (first, before any other check); `counted` is set when it runs. */
  rateLimit?: RateLimitCheck | undefined;
};

export type Hold = {
  bookingId: BookingId;
  eventId: EventId;
  tierId: TierId;
  ticketCount: number;
  seats: string[];
  expiresAtMs: number;
  createdAtMs: number;
  replayed: boolean;
};

export type Released = { tierId: TierId; ticketCount: number; seats: string[] };

const seatList = (csv: string | undefined) => (csv ? csv.split(',') : []);

/** A reply of any of the three hold scripts (they share holdCommon's codes, which have the same values in each table). */
type HoldScriptReply = ReplyOf<typeof HoldGeneralReply> | ReplyOf<typeof HoldSeatsReply> | ReplyOf<typeof HoldBestReply>;

/** Maps a hold script's reply to a Hold or a DomainError (exhaustive over the three scripts' reply tables). */
function holdResult(r: HoldRequest, reply: HoldScriptReply): Hold {
  const [code, a] = reply;
  switch (code) {
    case HoldGeneralReply.HELD:
    case HoldGeneralReply.REPLAYED: {
      const [, bookingId, tierId, count, seats, expiresAt, createdAt] = reply;
      return {
        bookingId: bookingId as BookingId,
        eventId: r.eventId,
        tierId: tierId as TierId,
        ticketCount: Number(count),
        seats: seatList(seats),
        expiresAtMs: Number(expiresAt),
        createdAtMs: Number(createdAt),
        replayed: code === HoldGeneralReply.REPLAYED,
      };
    }
    case HoldGeneralReply.NOT_ARMED:
      throw new DomainError('EVENT_CLOSED', 'this event is not on sale');
    case HoldGeneralReply.SALES_NOT_OPEN:
      throw new DomainError('SALES_NOT_OPEN', 'sales for this event have not opened yet', {
        salesOpenAt: new Date(Number(a)).toISOString(),
      });
    case HoldGeneralReply.UNKNOWN_TIER:
      throw new DomainError('TIER_NOT_FOUND', 'this event has no such tier', { field: 'tierId' });
    case HoldGeneralReply.TIER_KIND:
      throw new DomainError('TIER_KIND_MISMATCH', 'seat preferences do not match the tier (general admission vs assigned seating)', {
        field: 'seatPreferences',
      });
    case HoldGeneralReply.INSUFFICIENT:
      throw new DomainError('INSUFFICIENT_INVENTORY', `only ${a} ticket(s) available`, { available: Number(a) });
    case HoldBestReply.NO_ADJACENT:
      throw new DomainError('NO_ADJACENT_SEATS', `${a} seat(s) available, but not ${r.ticketCount} together`, {
        available: Number(a),
      });
    case HoldSeatsReply.SEAT_TAKEN:
      throw new DomainError('SEAT_UNAVAILABLE', `seat ${a} is not available`, { seatId: a });
    case HoldSeatsReply.UNKNOWN_SEAT:
      throw new DomainError('UNKNOWN_SEAT', `seat ${a} does not exist at this event`, {
        field: `seatPreferences.seatIds.${r.mode.kind === 'seats' ? r.mode.seatIds.indexOf(a!) : 0}`,
      });
    case HoldBestReply.UNKNOWN_SECTION:
      throw new DomainError('UNKNOWN_SECTION', 'this event has no such section', { field: 'seatPreferences.section' });
    case HoldSeatsReply.SEAT_TIER_MISMATCH:
      throw new DomainError('SEAT_TIER_MISMATCH', `${a} is not in the requested tier (one booking is one tier)`, {
        field: 'seatPreferences',
      });
    case HoldGeneralReply.TICKET_LIMIT:
      throw new DomainError('TICKET_LIMIT', `you can hold at most ${a} more ticket(s) for this event`, { allowed: Number(a) });
    case HoldGeneralReply.NOT_ADMITTED:
      throw new DomainError('ADMISSION_REQUIRED', 'this event admits buyers through its waiting room: a live admission pass is required', {
        field: 'X-Admission-Token',
      });
    case HoldGeneralReply.PASS_IN_USE:
      throw new DomainError('ADMISSION_REQUIRED', 'this admission pass already has a live hold or a booking (one pass, one live hold)', {
        field: 'X-Admission-Token',
      });
    case HoldGeneralReply.PASS_LIMIT:
      throw new DomainError('PASS_TICKET_LIMIT', `your admission pass is for at most ${a} ticket(s): only that many were left when you were admitted`, {
        passTickets: Number(a),
      });
    case HoldGeneralReply.IDEMPOTENCY_MISMATCH:
      throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request', {
        field: 'Idempotency-Key',
      });
    case HoldGeneralReply.RATE_LIMITED:
      throw rateLimitedError(Number(a));
    default:
      return assertNever(code, 'hold');
  }
}

/** Redis's clock in ms (the one the scripts use in production). */
export async function redisNow(redis: EngineDeps['redis']): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

export function createHolds(d: EngineDeps) {
  const { redis, ns, config } = d;
  const releaseKeys = (eventId: EventId, bookingId: BookingId) => {
    const k = eventKeys(ns, eventId);
    return [k.inv, k.sec, k.smap, k.hold(bookingId), k.expiry, k.buyers, k.outbox, k.wrUsed] as const;
  };
  /** After a hold script found the event disarmed: a rebuild disarmed it less than a minute ago and has not finished
   *  (engine/inventory/rebuild.ts), or has finished since the script ran (armed again). A marker older than that is a
   *  rebuild that died: the event is closed until an operator rebuilds it. */
  const rebuildingNow = async (meta: string) => {
    const [armed, since] = await redis.hmget(meta, 'armed', 'rebuilding');
    return armed === '1' || (Number(since) > 0 && d.clock.now() - Number(since) < 60_000);
  };

  return {
    /** One atomic script call: checks sale, stock or seats, the buyer cap and idempotency, then holds. */
    async hold(r: HoldRequest): Promise<Hold> {
      const k = eventKeys(ns, r.eventId);
      const idem = r.idempotency ? k.idem(r.userId, r.idempotency.key) : k.noIdem;
      const fp = r.idempotency?.fingerprint ?? '';
      const now = scriptNow(d.clock);
      const tier = r.tierId ?? '';
      const pass = r.pass ?? '';
      const idemKey = r.idempotency?.key ?? '';
      const rl = r.rateLimit;
      const rlUser = rl && rl.limits.perUser > 0 ? k.holdRate('u', r.userId) : k.noHoldRate;
      const rlIp = rl && rl.limits.perIp > 0 ? k.holdRate('ip', rl.ip) : k.noHoldRate;
      const limits = rl ? rl.limits.arg : '';
      if (rl) rl.counted = true;
      let reply: HoldScriptReply;
      switch (r.mode.kind) {
        case 'ga':
          reply = await redis.holdGeneral(k.meta, k.inv, k.hold(r.bookingId), k.expiry, k.buyers, idem, k.outbox, k.wrPasses, k.wrUsed,
            rlUser, rlIp, r.eventId, r.bookingId, r.userId, tier, r.ticketCount, now, config.holdTtlMs, fp, config.idempotencyTtlMs, pass,
            idemKey, limits);
          break;
        case 'seats':
          reply = await redis.holdSeats(k.meta, k.inv, k.sec, k.smap, k.hold(r.bookingId), k.expiry, k.buyers, idem, k.outbox,
            k.wrPasses, k.wrUsed, rlUser, rlIp, r.eventId, r.bookingId, r.userId, tier, now, config.holdTtlMs, fp,
            config.idempotencyTtlMs, pass, idemKey, limits, ...r.mode.seatIds);
          break;
        case 'best':
          reply = await redis.holdBest(k.meta, k.inv, k.sec, k.smap, k.hold(r.bookingId), k.expiry, k.buyers, idem, k.outbox,
            k.wrPasses, k.wrUsed, rlUser, rlIp, r.eventId, r.bookingId, r.userId, tier, r.ticketCount, now, config.holdTtlMs, fp,
            config.idempotencyTtlMs, r.mode.section ?? '', r.mode.adjacent ? '1' : '0', pass, idemKey, limits);
          break;
      }
      if (reply[0] === HoldGeneralReply.NOT_ARMED && (await rebuildingNow(k.meta))) {
        throw new UnavailableError('redis', new Error(`event ${r.eventId} is being rebuilt from Postgres`));
      }
      return holdResult(r, reply);
    },

    /** Buyer cancel (userId set: own live hold only) or system compensation (userId null). */
    async release(
      eventId: EventId,
      bookingId: BookingId,
      by: { userId: UserId } | { system: 'BookingFailed' | 'BookingCancelled'; reason: string; states?: string[] },
    ): Promise<Released> {
      const user = 'userId' in by ? by.userId : '';
      const type = 'userId' in by ? 'BookingCancelled' : by.system;
      const reason = 'userId' in by ? 'cancelled by buyer' : by.reason;
      const states = 'userId' in by ? 'held' : (by.states ?? ['held']).join(',');
      const [code, a, b, c] = await redis.releaseHold(...releaseKeys(eventId, bookingId), eventId, bookingId, user,
        scriptNow(d.clock), type, reason, states);
      switch (code) {
        case ReleaseHoldReply.RELEASED:
          return { tierId: a as TierId, ticketCount: Number(b), seats: seatList(c) };
        case ReleaseHoldReply.HOLD_NOT_FOUND:
        case ReleaseHoldReply.NOT_OWNER:
          throw new DomainError('BOOKING_NOT_FOUND', 'no live hold for this booking');
        case ReleaseHoldReply.NOT_RELEASABLE:
          throw new DomainError('BOOKING_NOT_CANCELLABLE', `the booking cannot be cancelled now (hold is ${a})`);
        case ReleaseHoldReply.HOLD_EXPIRED:
          throw new DomainError('HOLD_EXPIRED', 'the reservation has expired');
        default:
          return assertNever(code, 'releaseHold');
      }
    },

    /** Expires one hold if it is due at `now` (re-checked inside the script). */
    async expire(eventId: EventId, bookingId: BookingId): Promise<'expired' | 'not-due' | 'gone'> {
      const [code] = await redis.expireHold(...releaseKeys(eventId, bookingId), eventId, bookingId, scriptNow(d.clock));
      switch (code) {
        case ExpireHoldReply.EXPIRED:
          return 'expired';
        case ExpireHoldReply.NOT_DUE:
          return 'not-due';
        case ExpireHoldReply.HOLD_NOT_FOUND:
        case ExpireHoldReply.NOT_RELEASABLE:
          return 'gone';
        default:
          return assertNever(code, 'expireHold');
      }
    },

    /** Reads the due holds of one event, then expires each in its own script call (read outside, decide inside). */
    async sweep(eventId: EventId, limit = 500): Promise<number> {
      // candidates by the scripts' clock (Redis's own in production); each expiry is re-checked inside its script
      const now = scriptNow(d.clock) === '' ? await redisNow(redis) : d.clock.now();
      const due = (await redis.zrangebyscore(eventKeys(ns, eventId).expiry, '-inf', now, 'LIMIT', 0, limit)) as BookingId[];
      let expired = 0;
      for (const bookingId of due) if ((await this.expire(eventId, bookingId)) === 'expired') expired++;
      return expired;
    },

    /** held -> sold, once the payment succeeded. */
    async confirm(eventId: EventId, bookingId: BookingId, paymentRef = ''): Promise<'confirmed' | 'already-confirmed'> {
      const k = eventKeys(ns, eventId);
      const [code] = await redis.confirmHold(k.inv, k.sec, k.smap, k.hold(bookingId), k.expiry, k.outbox, eventId,
        bookingId, scriptNow(d.clock), paymentRef);
      switch (code) {
        case ConfirmHoldReply.CONFIRMED:
          return 'confirmed';
        case ConfirmHoldReply.ALREADY_CONFIRMED:
          return 'already-confirmed';
        case ConfirmHoldReply.HOLD_NOT_FOUND:
          throw new DomainError('BOOKING_NOT_FOUND', 'no hold for this booking');
        case ConfirmHoldReply.HOLD_EXPIRED:
          throw new DomainError('HOLD_EXPIRED', 'the reservation has expired');
        default:
          return assertNever(code, 'confirmHold');
      }
    },

    /** The live hold of a booking, straight from Redis (before the persist worker has recorded it). */
    async get(eventId: EventId, bookingId: BookingId): Promise<HoldRecord | null> {
      return decodeHold(eventId, bookingId, await redis.hgetall(eventKeys(ns, eventId).hold(bookingId)));
    },
  };
}
export type Holds = ReturnType<typeof createHolds>;
