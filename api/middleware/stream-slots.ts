import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import type { AppDeps, AppEnv, StreamCapConfig } from '../env.js';
import { problem } from '../problem.js';

const DEFAULT_LEASE_MS = 30_000;

/**
 * Caps on open Server-Sent-Events status streams per user and per client IP. Each open stream holds one slot in
 * Redis per cap (streamSlot.lua: a ZSET of leases), so the caps hold across every API process; a slot is a lease the
 * stream renews while it runs and drops when it ends, so a crashed process frees its slots after `leaseMs`.
 */
export function createStreamSlots(deps: AppDeps, cfg: StreamCapConfig | undefined) {
  const { streamSlots } = deps.engine;
  const leaseMs = cfg?.leaseMs ?? DEFAULT_LEASE_MS;
  const caps = [
    { kind: 'user' as const, max: cfg?.perUser ?? 0 },
    { kind: 'ip' as const, max: cfg?.perIp ?? 0 },
  ].filter((c) => c.max > 0);

  return {
    leaseMs,
    /**
     * Takes one slot per cap for a new stream. Refused: the slots already taken are given back, and the answer
     * names the cap that was full.
     */
    async open(userId: string, ip: string): Promise<{ ok: true; renew(): Promise<void>; close(): Promise<void> } | { ok: false; cap: 'user' | 'ip' }> {
      const streamId = randomBytes(9).toString('base64url');
      const held: { kind: 'user' | 'ip'; who: string; max: number }[] = [];
      const release = () => Promise.all(held.map((h) => streamSlots.drop(h.kind, h.who, streamId, h.max, leaseMs))).then(() => undefined);
      for (const c of caps) {
        const who = c.kind === 'user' ? userId : ip;
        if (!(await streamSlots.take(c.kind, who, streamId, c.max, leaseMs))) {
          await release();
          return { ok: false, cap: c.kind };
        }
        held.push({ kind: c.kind, who, max: c.max });
      }
      return {
        ok: true,
        renew: () => Promise.all(held.map((h) => streamSlots.take(h.kind, h.who, streamId, h.max, leaseMs))).then(() => undefined),
        close: release,
      };
    },
  };
}
export type StreamSlots = ReturnType<typeof createStreamSlots>;

/** 429 for a stream over its cap; Retry-After is one lease, the longest a slot of a vanished stream can stay taken. */
export const tooManyStreams = (c: Context<AppEnv>, cap: 'user' | 'ip', leaseMs: number) => {
  const retryAfter = Math.max(1, Math.ceil(leaseMs / 1000));
  return problem(
    c,
    429,
    {
      type: '/problems/too-many-streams',
      title: 'Too many open status streams',
      detail: `this ${cap === 'user' ? 'account' : 'address'} has as many status streams open as allowed; close one (or poll GET /api/queue/{queueId}) and retry in ${retryAfter} s`,
    },
    { 'retry-after': String(retryAfter) },
  );
};
