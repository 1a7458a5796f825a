import type { BookingId, EventId, Namespace, TierId, UserId } from './ids.js';

/**
 * Every Redis key Floodgate uses, and the only place that builds them (the Lua scripts get theirs through KEYS and
 * never read data out of a key name). All keys of one event share the hash tag {evt:<id>}, so each script runs
 * on one Redis Cluster slot; `ns` and ids never contain braces (checked in ids.ts), so the tag is the
 * first braces of every key.
 */
export function eventKeys(ns: Namespace, id: EventId) {
  const p = `${ns}:{evt:${id}}`;
  return {
    meta: `${p}:meta`,
    inv: `${p}:inv`,
    sec: `${p}:sec`,
    smap: `${p}:smap`,
    expiry: `${p}:expiry`,
    buyers: `${p}:buyers`,
    outbox: `${p}:outbox`,
    persistLease: `${p}:persist-lease`,
    // waiting room
    wrCfg: `${p}:wr:cfg`,
    wrPre: `${p}:wr:pre`,
    wrLine: `${p}:wr:line`,
    wrPasses: `${p}:wr:passes`,
    wrUsed: `${p}:wr:used`,
    wrDone: `${p}:wr:done`,
    wrJoined: `${p}:wr:joined`,
    /** ZSET member -> deadline for an admission pass's first use (its grace period). */
    wrGrace: `${p}:wr:grace`,
    /** HASH member -> when the buyer was first told of the pass. */
    wrSeen: `${p}:wr:seen`,
    /** HASH: the admission worker's count of resolved holds (resolved, returned) and its outbox read position. */
    wrShare: `${p}:wr:share`,
    /** Pub/sub channel (not a key): "this waiting room changed, read your status again" (engine/waiting-room/changes.ts). */
    wrNotify: `${p}:wr:notify`,
    wrLease: `${p}:wr:lease`,
    // waitlist (engine/waitlist/waitlist.ts): a sold-out general-admission tier's buyers, offered returned tickets in order
    /** ZSET userId -> join sequence (meta field wlseq): one tier's waitlist, in order. */
    wlLine: (t: TierId) => `${p}:wl:line:${t}`,
    /** HASH userId -> "<count>|<e-mail>": what each buyer on one tier's waitlist asked for, and where to write. */
    wlWant: (t: TierId) => `${p}:wl:want:${t}`,
    /**
     * HASH bookingId -> "<userId>|<tierId>|<count>|<expiresAtMs>|<e-mail>": the waitlist offers (holds) still open;
     * "m:<bookingId>" -> "1" once its e-mail was sent.
     */
    wlOffers: `${p}:wl:offers`,
    /** One booking's hold HASH (fields: engine/holds/hold-record.ts). */
    hold: (b: BookingId) => `${p}:hold:${b}`,
    /** Pattern matching every hold HASH of this event (SCAN, for a rebuild and tools). */
    holdPattern: `${p}:hold:*`,
    /**
     * The first reply for one buyer's Idempotency-Key (keys are per buyer, so they cannot collide). Record format:
     * engine/idempotency.ts (the hold scripts' record).
     */
    idem: (u: UserId, key: string) => `${p}:idem:${u}:${key}`,
    /** Placeholder passed when a request has no Idempotency-Key (the script never touches it). */
    noIdem: `${p}:idem:-`,
    /**
     * One buyer's ('u') or one client address's ('ip') hold requests for this event in the current window (STRING,
     * PX the window): counted by the hold scripts themselves (lua/includes/rateLimit), so the limit costs no round
     * trip of its own. On the event's slot, which is why the hold limit counts per event.
     */
    holdRate: (who: 'u' | 'ip', id: string) => `${p}:rl:hold:${who}:${id}`,
    /** Placeholder passed for a hold rate limit that is off (the script never touches it). */
    noHoldRate: `${p}:rl:-`,
    /** Pattern matching every key of this event (for SCAN in tests and tools). */
    pattern: `${p}:*`,
  } as const;
}
export type EventKeys = ReturnType<typeof eventKeys>;

/** Keys that are not per event (each on its own slot). */
export function globalKeys(ns: Namespace) {
  return {
    /**
     * One request's Idempotency-Key record for calls that are not one Lua script (payments), per scope and buyer.
     * Record format: engine/idempotency.ts.
     */
    idempotency: (scope: string, userId: UserId, key: string) => `${ns}:idem-${scope}:${userId}:${key}`,
    /** The key prefix of one rate limit: its counters are `rateCounter` below. */
    rateLimit: (group: 'hold' | 'pay' | 'join' | 'status' | 'signin' | 'beacon', who: 'u' | 'ip') => `${ns}:rl:${group}:${who}`,
    /**
     * One buyer's ('u') or client address's ('ip') requests of one route group in the current window (STRING, PX the
     * window; lua/rateLimit-1.lua). A hold request is counted here only when it was refused before its hold script
     * ran (the script counts the others on the event's slot: eventKeys.holdRate).
     */
    rateCounter: (group: 'hold' | 'pay' | 'join' | 'status' | 'signin' | 'beacon', who: 'u' | 'ip', id: string) => `${ns}:rl:${group}:${who}:${id}`,
    /** BullMQ's key prefix: every queue's keys start with it (then `:<queue name>:…`, queue names carry their own hash tag). */
    bullPrefix: `${ns}:bull`,
    /** SET of armed event ids: the sweeper's and persist worker's work list. */
    events: `${ns}:events`,
    /** SET of events with a waitlist (or an open waitlist offer): the waitlist worker's work list. */
    waitlists: `${ns}:waitlists`,
    /** SET of events whose waiting room is enabled: the admission worker's work list. */
    queues: `${ns}:queues`,
    /** ZSET of one user's or one client IP's open status streams (streamId -> lease expiry), shared by every API process. */
    streams: (kind: 'user' | 'ip', who: string) => `${ns}:streams:${kind}:${who}`,
    /** STRING JSON: one e-mail sign-in link, by the SHA-256 (hex) of its token (engine/sign-in.ts); taken with GETDEL. */
    signInLink: (tokenHash: string) => `${ns}:signin:${tokenHash}`,
  } as const;
}

/**
 * The simulated payment provider's keys (its layout is documented with the provider). The provider takes them as an
 * option, so this module stays the only one that builds a key.
 */
export function simulatedPaymentKeys(ns: Namespace) {
  return {
    /** HASH one payment. */
    payment: (ref: string) => `${ns}:simpay:${ref}`,
    /** STRING JSON: the first result for one authorize idempotency key (capture, cancel, refund: in the payment HASH). */
    idem: (key: string) => `${ns}:simpay-key:${key}`,
    /** Pattern matching every payment HASH (SCAN). */
    paymentPattern: `${ns}:simpay:*`,
  } as const;
}
export type SimulatedPaymentKeys = ReturnType<typeof simulatedPaymentKeys>;
