import { assertNever, StreamSlotReply } from '../../lua/codes.js';
import { scriptNow } from '../clock.js';
import type { EngineDeps } from '../deps.js';
import { globalKeys } from '../keys.js';

/** Whose open status streams a cap counts: one user's, or one client IP's. */
export type StreamCapKind = 'user' | 'ip';

/**
 * Slots of open status streams (Server-Sent Events), counted in Redis so a cap holds across every API process
 * (streamSlot.lua: a ZSET of leases per user or IP). A slot is a lease: the stream renews it (take again) while it
 * runs and drops it when it ends; the slot of a stream whose process died lapses after `leaseMs`.
 */
export function createStreamSlots(d: Pick<EngineDeps, 'redis' | 'ns' | 'clock'>) {
  const call = (kind: StreamCapKind, who: string, streamId: string, max: number, leaseMs: number, mode: 'take' | 'drop') =>
    d.redis.streamSlot(globalKeys(d.ns).streams(kind, encodeURIComponent(who)), streamId, scriptNow(d.clock), leaseMs, max, mode);

  return {
    /** Takes (or renews) the slot of `streamId` under the cap of `who`; false when `max` other streams hold slots. */
    async take(kind: StreamCapKind, who: string, streamId: string, max: number, leaseMs: number): Promise<boolean> {
      const [code] = await call(kind, who, streamId, max, leaseMs, 'take');
      switch (code) {
        case StreamSlotReply.HELD:
          return true;
        case StreamSlotReply.BUSY:
          return false;
        default:
          return assertNever(code, 'streamSlot');
      }
    },
    /** Gives the slot of `streamId` back (a slot it does not hold: nothing changes). */
    async drop(kind: StreamCapKind, who: string, streamId: string, max: number, leaseMs: number): Promise<void> {
      await call(kind, who, streamId, max, leaseMs, 'drop');
    },
  };
}
export type StreamSlots = ReturnType<typeof createStreamSlots>;
