import { describe, expect, it } from 'vitest';
import { gaEvent } from '../events.js';
import { waitFor } from '../wait.js';
import {
  cleanups, isCleanUnavailable, loadFigures, missingInPostgres, onSaleNow, oversoldInPostgres, recordFigures, redisHolds, startLoad, startOwnRedis,
  startStack, waitDrained,
} from './harness.js';

/**
 * F1: Redis is killed with SIGKILL in the middle of an on-sale and started again from its AOF (appendfsync everysec).
 * Every 201 must reach Postgres; while Redis is away the API answers 503 problem+json with Retry-After at once; the
 * counters after the restart still add up (a Lua script is all or nothing), and no hold exists that nobody was told of.
 */
describe('F1 fault: Redis kill -9 mid-load, restart from the AOF', () => {
  it('loses no acknowledged booking, answers 503 + Retry-After while down, never leaves a half-made hold', async ({ onTestFinished }) => {
    const own = cleanups(onTestFinished);
    const redis = own(await startOwnRedis(), (r) => r.stop());
    const s = own(await startStack({ redisUrl: redis.url, commandTimeoutMs: 300 }), (x) => x.close());
    const ev = await s.engine.createEvent(gaEvent(5_000, onSaleNow()));
    const load = startLoad({ urls: [s.api.url], eventId: ev.id, clients: 16, body: (c) => ({ ticketCount: 1 + (c % 2) }) });
    try {
      await waitFor('100 bookings before the crash', () => load.acked().size >= 100, 30_000);
      await redis.kill9();
      const killedAt = Date.now();
      // down for a second and a half of load: every buyer meets the outage, several times
      await waitFor('the API answering 503 while Redis is down', () => load.count((a) => a.at > killedAt + 1_500 && a.status === 503) >= 10, 15_000);
      await redis.start();
      const restartedAt = Date.now();
      const before = load.acked().size;
      await waitFor('bookings again after the restart', () => load.count((a) => a.at > restartedAt && a.status === 201) >= 50, 30_000);
      const downMs = restartedAt - killedAt;
      await load.stop();

      const during = load.answers.filter((a) => a.at > killedAt && a.at < restartedAt && a.status !== 201);
      const bad = load.answers.filter((a) => ![201, 503].includes(a.status));
      expect(bad.map((a) => `${a.status} ${a.code ?? a.error ?? ''}`)).toEqual([]);
      expect(during.filter((a) => !isCleanUnavailable(a))).toEqual([]);
      // refused connections answer at once (no waiting on a dead server)
      expect(Math.max(...load.answers.filter((a) => a.status === 503).map((a) => a.ms))).toBeLessThan(1_000);

      await waitDrained(s.workerEngine, [ev.id]);
      const acked = [...load.acked().keys()];
      const missing = await missingInPostgres(s.pg, acked);
      expect(missing).toEqual([]);
      // every hold Redis kept was acknowledged to its buyer (a 503'd attempt that did run was replayed on retry)
      const ghosts = (await redisHolds(redis.admin, s.ns, ev.id)).filter((id) => !load.acked().has(id));
      expect(ghosts).toEqual([]);
      const report = await s.check([ev.id]);
      expect(report.violations).toEqual([]);
      const oversold = await oversoldInPostgres(s.pg, [ev.id]);
      expect(oversold).toBe(0);
      await recordFigures('F1-redis-kill9', {
        ...loadFigures(load, acked.length - missing.length, report, oversold),
        ackedBeforeRestart: before, redisDownMs: downMs, ghostHolds: ghosts.length,
      });
    } finally {
      await load.stop();
    }
  });
});
