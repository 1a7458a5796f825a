import { describe, expect, it } from 'vitest';
import { gaEvent } from '../events.js';
import { waitFor } from '../wait.js';
import {
  cleanups, isCleanUnavailable, loadFigures, missingInPostgres, onSaleNow, oversoldInPostgres, recordFigures, redisHolds, startLoad, startOwnRedis,
  startStack, waitDrained,
} from './harness.js';

const DEADLINE_MS = 300; // REDIS_COMMAND_TIMEOUT_MS of the API under test
const PAUSE_MS = 3_000;

/**
 * F3: Redis stalls (CLIENT PAUSE ALL: every client's commands wait). The API must answer 503 problem+json with
 * Retry-After within its deadline instead of hanging, and sell again once Redis answers. A command that timed out
 * still runs when the pause ends: its hold is recovered by the buyer's retry with the same Idempotency-Key.
 */
describe('F3 fault: Redis stalled (CLIENT PAUSE ALL)', () => {
  it(`answers 503 within the ${DEADLINE_MS} ms deadline during the stall, and sells again after`, async ({ onTestFinished }) => {
    const own = cleanups(onTestFinished);
    const redis = own(await startOwnRedis(), (r) => r.stop());
    const s = own(await startStack({ redisUrl: redis.url, commandTimeoutMs: DEADLINE_MS }), (x) => x.close());
    const ev = await s.engine.createEvent(gaEvent(5_000, onSaleNow()));
    const load = startLoad({ urls: [s.api.url], eventId: ev.id, clients: 12 });
    try {
      await waitFor('bookings before the stall', () => load.acked().size >= 50, 30_000);
      await redis.assertOurs();
      await redis.admin.client('PAUSE', PAUSE_MS, 'ALL');
      const pausedAt = Date.now();
      const readyStarted = performance.now();
      const ready = await s.api.call('GET', '/ready');
      const readyMs = performance.now() - readyStarted;
      expect(ready.status).toBe(503);
      expect(ready.json).toMatchObject({ status: 'degraded', redis: 'down', postgres: 'up' });
      await waitFor('503s during the stall', () => load.count((a) => a.at > pausedAt && a.status === 503) >= 30, 10_000);
      await waitFor('bookings again after the stall', () => load.count((a) => a.at > pausedAt + PAUSE_MS && a.status === 201) >= 30, 30_000);
      await load.stop();

      const unavailable = load.answers.filter((a) => a.status === 503);
      expect(unavailable.filter((a) => !isCleanUnavailable(a))).toEqual([]);
      // well under a second, never the length of the stall. Under concurrency it is up to twice the command timeout:
      // ioredis auto-pipelining sends a command only after the pipeline in flight has finished (here: timed out), and
      // its own timer starts when it is sent.
      const slowest = Math.max(...unavailable.map((a) => a.ms));
      expect(slowest).toBeLessThan(2 * DEADLINE_MS + 300);
      expect(slowest).toBeLessThan(1_000);
      expect(load.answers.filter((a) => a.status !== 201 && a.status !== 503)).toEqual([]);
      expect((await s.api.call('GET', '/ready')).status).toBe(200);

      await waitDrained(s.workerEngine, [ev.id]);
      const acked = [...load.acked().keys()];
      const missing = await missingInPostgres(s.pg, acked);
      expect(missing).toEqual([]);
      const ghosts = (await redisHolds(redis.admin, s.ns, ev.id)).filter((id) => !load.acked().has(id));
      expect(ghosts).toEqual([]);
      const report = await s.check([ev.id]);
      expect(report.violations).toEqual([]);
      const oversold = await oversoldInPostgres(s.pg, [ev.id]);
      expect(oversold).toBe(0);
      await recordFigures('F3-redis-stall', {
        ...loadFigures(load, acked.length - missing.length, report, oversold),
        deadlineMs: DEADLINE_MS, pauseMs: PAUSE_MS, readyDuringStall: { status: ready.status, ms: Math.round(readyMs), body: ready.json },
        // attempts whose timed-out command ran when the pause ended: the retry got the first reply back
        recoveredByRetry: load.answers.filter((a) => a.replayed).length, ghostHolds: ghosts.length,
      });
    } finally {
      await load.stop();
    }
  });
});
