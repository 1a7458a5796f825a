import { assertNever, JoinWaitlistReply, OfferWaitlistReply } from '../../lua/codes.js';
import { scriptNow } from '../clock.js';
import type { EngineDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import { newBookingId, type BookingId, type EventId, type TierId, type UserId } from '../ids.js';
import { eventKeys, globalKeys } from '../keys.js';
import { decodeHold } from '../holds/hold-record.js';

/** How long a waitlist offer (a hold) lasts unless configured (WAITLIST_OFFER_TTL_MS). */
export const DEFAULT_WAITLIST_OFFER_TTL_MS = 5 * 60_000;

export type WaitlistPlace = { tierId: TierId; position: number; ticketCount: number; joined: boolean };
export type WaitlistOffer = { eventId: EventId; bookingId: BookingId; userId: UserId; tierId: TierId; ticketCount: number; expiresAtMs: number; email: string };
/** How an offer ended: paid for (taken), or its hold gone without a sale (ran out, or the buyer cancelled it). */
export type OfferEnd = { bookingId: BookingId; outcome: 'taken' | 'expired' };

const parseOffer = (eventId: EventId, bookingId: string, v: string): WaitlistOffer | null => {
  const m = /^([^|]+)\|([^|]+)\|(\d+)\|(\d+)\|(.*)$/s.exec(v);
  if (!m) return null;
  return { eventId, bookingId: bookingId as BookingId, userId: m[1] as UserId, tierId: m[2] as TierId, ticketCount: Number(m[3]), expiresAtMs: Number(m[4]), email: m[5]! };
};

/**
 * Waitlists of sold-out general-admission tiers (Redis only, on the event's slot; lua/joinWaitlist, lua/offerWaitlist).
 * While a tier's line is not empty its free tickets are not on general sale: `offer` turns them into holds for the
 * buyers in line, in order, each lasting `offerTtlMs`; an offer that is not paid expires like any hold (the sweeper)
 * and its tickets go to the next in line, and back to general sale once the line is empty.
 */
export function createWaitlist(d: EngineDeps) {
  const { redis, ns } = d;
  const offerTtlMs = d.config.waitlistOfferTtlMs ?? DEFAULT_WAITLIST_OFFER_TTL_MS;
  const g = globalKeys(ns);
  return {
    offerTtlMs,
    /** Puts the buyer on the tier's waitlist (again: the same place and count). */
    async join(eventId: EventId, tierId: TierId, userId: UserId, email: string, ticketCount: number): Promise<WaitlistPlace> {
      const k = eventKeys(ns, eventId);
      const [code, a, b] = await redis.joinWaitlist(k.meta, k.inv, k.buyers, k.wlLine(tierId), k.wlWant(tierId), userId, tierId, ticketCount, email);
      // after the script (settle forgets an event only when a second look still finds no line); a retry adds it again
      if (code === JoinWaitlistReply.JOINED || code === JoinWaitlistReply.ALREADY_IN) await redis.sadd(g.waitlists, eventId);
      switch (code) {
        case JoinWaitlistReply.JOINED:
          return { tierId, position: Number(a), ticketCount, joined: true };
        case JoinWaitlistReply.ALREADY_IN:
          return { tierId, position: Number(a), ticketCount: Number(b), joined: false };
        case JoinWaitlistReply.NOT_ARMED:
          throw new DomainError('EVENT_CLOSED', 'this event is not on sale');
        case JoinWaitlistReply.UNKNOWN_TIER:
          throw new DomainError('TIER_NOT_FOUND', 'this event has no such tier', { field: 'tierId' });
        case JoinWaitlistReply.TIER_KIND:
          throw new DomainError('WAITLIST_NOT_AVAILABLE', 'waitlists are for general-admission tiers only', { field: 'tierId' });
        case JoinWaitlistReply.TICKET_LIMIT:
          throw new DomainError('TICKET_LIMIT', `you can have at most ${a} more ticket(s) for this event`, { allowed: Number(a), field: 'ticketCount' });
        case JoinWaitlistReply.NOT_SOLD_OUT:
          throw new DomainError('NOT_SOLD_OUT', `${a} ticket(s) of this tier are on sale: hold them instead`, { available: Number(a) });
        default:
          return assertNever(code, 'joinWaitlist');
      }
    },

    /** The buyer's place on one tier's waitlist (1 = next), or null when not on it. */
    async place(eventId: EventId, tierId: TierId, userId: UserId): Promise<WaitlistPlace | null> {
      const k = eventKeys(ns, eventId);
      const [rank, want] = await Promise.all([redis.zrank(k.wlLine(tierId), userId), redis.hget(k.wlWant(tierId), userId)]);
      if (rank === null) return null;
      return { tierId, position: rank + 1, ticketCount: Number(/^(\d+)\|/.exec(want ?? '')?.[1] ?? 0), joined: false };
    },

    /** How many buyers wait on each tier that has a waitlist (tiers with none are left out). */
    async waiting(eventId: EventId, tierIds: TierId[]): Promise<Map<TierId, number>> {
      const k = eventKeys(ns, eventId);
      const counts = await Promise.all(tierIds.map((t) => redis.zcard(k.wlLine(t))));
      return new Map(tierIds.flatMap((t, i) => (counts[i]! > 0 ? [[t, counts[i]!] as const] : [])));
    },

    /** Events that have (or had) a waitlist: the worker's work list. */
    events: async () => (await redis.smembers(g.waitlists)) as EventId[],

    /**
     * Offers the tier's free tickets to its line, one buyer per script call, until there is nothing free or no one
     * waits. Returns the offers made (each a hold of its buyer, already in the outbox).
     */
    async offer(eventId: EventId, tierId: TierId): Promise<WaitlistOffer[]> {
      const k = eventKeys(ns, eventId);
      const made: WaitlistOffer[] = [];
      for (;;) {
        const bookingId = newBookingId(eventId);
        const reply = await redis.offerWaitlist(k.meta, k.inv, k.wlLine(tierId), k.wlWant(tierId), k.wlOffers, k.hold(bookingId), k.expiry,
          k.buyers, k.outbox, eventId, bookingId, tierId, scriptNow(d.clock), offerTtlMs);
        const [code] = reply;
        switch (code) {
          case OfferWaitlistReply.OFFERED: {
            const [, , userId, count, expiresAt, email] = reply;
            made.push({ eventId, bookingId, userId: userId as UserId, tierId, ticketCount: Number(count), expiresAtMs: Number(expiresAt), email: email! });
            continue;
          }
          case OfferWaitlistReply.SKIPPED:
            continue;
          case OfferWaitlistReply.LINE_EMPTY:
          case OfferWaitlistReply.NOT_ARMED:
          case OfferWaitlistReply.NOTHING_FREE:
            return made;
          default:
            return assertNever(code, 'offerWaitlist');
        }
      }
    },

    /** The tiers of an event whose line is open (meta wl:<tierId>). */
    async openTiers(eventId: EventId): Promise<TierId[]> {
      const fields = await redis.hkeys(eventKeys(ns, eventId).meta);
      return fields.filter((f) => f.startsWith('wl:')).map((f) => f.slice(3) as TierId);
    },

    /** The open offers of an event, with whether their e-mail was sent. */
    async openOffers(eventId: EventId): Promise<Array<WaitlistOffer & { mailed: boolean }>> {
      const all = await redis.hgetall(eventKeys(ns, eventId).wlOffers);
      return Object.entries(all).flatMap(([f, v]) => {
        if (f.startsWith('m:')) return [];
        const o = parseOffer(eventId, f, v);
        return o ? [{ ...o, mailed: all[`m:${f}`] === '1' }] : [];
      });
    },

    /** Notes that an offer's e-mail went out (an offer ended meanwhile leaves a mark that `settle` removes). */
    async markMailed(o: WaitlistOffer): Promise<void> {
      await redis.hset(eventKeys(ns, o.eventId).wlOffers, `m:${o.bookingId}`, '1');
    },

    /**
     * Closes the offers that ended: sold (taken), or their hold gone without a sale (expired or cancelled). Each is
     * closed by one HDEL, so two workers never count one twice. Forgets the event once it has no line and no offer.
     */
    async settle(eventId: EventId): Promise<OfferEnd[]> {
      const k = eventKeys(ns, eventId);
      const all = await redis.hgetall(k.wlOffers);
      const ended: OfferEnd[] = [];
      for (const [f, v] of Object.entries(all)) {
        if (f.startsWith('m:')) {
          if (all[f.slice(2)] === undefined) await redis.hdel(k.wlOffers, f); // a mark left by an offer that ended
          continue;
        }
        const bookingId = f as BookingId;
        const hold = decodeHold(eventId, bookingId, await redis.hgetall(k.hold(bookingId)));
        const outcome = hold === null ? 'expired' : hold.state === 'sold' ? 'taken' : null;
        if (outcome === null || v === undefined) continue;
        if ((await redis.hdel(k.wlOffers, f)) === 1) ended.push({ bookingId, outcome });
        await redis.hdel(k.wlOffers, `m:${f}`);
      }
      // forget an event with no line and no offer; a join that ran meanwhile (it adds the event after its script) is
      // seen by the second look, and the event is added back
      const idle = async () => (await redis.hlen(k.wlOffers)) === 0 && (await this.openTiers(eventId)).length === 0;
      if (await idle()) {
        await redis.srem(g.waitlists, eventId);
        if (!(await idle())) await redis.sadd(g.waitlists, eventId);
      }
      return ended;
    },
  };
}
export type Waitlist = ReturnType<typeof createWaitlist>;
