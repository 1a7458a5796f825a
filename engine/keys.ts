import type { BookingId, EventId, Namespace, UserId } from './ids.js';

/**
 * Every Redis key Floodgate uses. All keys of one event share the hash tag {evt:<id>}, so each script runs
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
    wrLease: `${p}:wr:lease`,
    hold: (b: BookingId) => `${p}:hold:${b}`,
    /** The first reply for one buyer's Idempotency-Key (keys are per buyer, so they cannot collide). */
    idem: (u: UserId, key: string) => `${p}:idem:${u}:${key}`,
    /** Placeholder passed when a request has no Idempotency-Key (the script never touches it). */
    noIdem: `${p}:idem:-`,
    /** Pattern matching every key of this event (for SCAN in tests and tools). */
    pattern: `${p}:*`,
  } as const;
}
export type EventKeys = ReturnType<typeof eventKeys>;

/** Keys that are not per event (each on its own slot). */
export function globalKeys(ns: Namespace) {
  return {
    /** SET of armed event ids: the sweeper's and persist worker's work list. */
    events: `${ns}:events`,
    /** SET of events whose waiting room is enabled: the admission worker's work list. */
    queues: `${ns}:queues`,
    /** ZSET of one user's or one client IP's open status streams (streamId -> lease expiry), shared by every API process. */
    streams: (kind: 'user' | 'ip', who: string) => `${ns}:streams:${kind}:${who}`,
  } as const;
}
