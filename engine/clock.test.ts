import { describe, expect, it } from '../test/fixtures.js';
import { createGaEvent } from '../test/events.js';
import { redisNow } from './holds/holds.js';
import type { UserId } from './ids.js';
import { createEngine } from './index.js';

describe('one clock: the scripts use Redis’s own time in production', () => {
  it('a process whose clock is two hours ahead neither prolongs a hold nor expires another process’s holds early', async ({ deps, redis }) => {
    const skewed = createEngine({ ...deps, clock: { now: () => Date.now() + 2 * 3600_000, script: () => '' } });
    const honest = createEngine({ ...deps, clock: { now: () => Date.now(), script: () => '' } });
    const ev = await createGaEvent(honest, 5, { salesOpenAt: new Date(Date.now() - 60_000).toISOString() });
    const before = await redisNow(redis);
    const h1 = await skewed.bookings.create({ userId: 'skewed' as UserId, eventId: ev.id, ticketCount: 1 });
    const h2 = await honest.bookings.create({ userId: 'honest' as UserId, eventId: ev.id, ticketCount: 1 });
    const after = await redisNow(redis);
    const ttl = deps.config.holdTtlMs;
    for (const h of [h1, h2]) {
      const exp = Date.parse(h.reservation.expiresAt);
      expect(exp).toBeGreaterThanOrEqual(before + ttl);
      expect(exp).toBeLessThanOrEqual(after + ttl);
    }
    // the skewed process sweeping finds nothing due: expiry is decided by Redis's clock
    expect(await skewed.holds.sweep(ev.id)).toBe(0);
    expect((await honest.inventory.redisState(ev.id))[ev.tiers[0]!.id]!.held).toBe(2);
  });
});
