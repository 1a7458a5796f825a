import { pino } from 'pino';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { waitFor } from '../../test/wait.js';
import type { UserId } from '../../engine/ids.js';
import { createMetrics } from '../../platform/metrics.js';
import { createAdmissionWorker } from './admission.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const log = pino({ level: 'silent' });

describe('admission worker', () => {
  it('admits at the configured ceiling, and two workers together still admit at the ceiling', async ({ engine, clock }) => {
    clock.set(T0);
    const ev = await engine.createEvent({
      ...gaEvent(10_000), salesOpenAt: new Date(T0).toISOString(), maxTicketsPerUser: 1,
      queue: { enabled: true, opensAt: new Date(T0 - 1000).toISOString(), admissionRatePerSecond: 20, passTtlSeconds: 600 },
    });
    await Promise.all(Array.from({ length: 200 }, (_, i) => engine.waitingRoom.join(ev.id, `w${i}` as UserId)));
    const metrics = createMetrics('workers');
    const a = createAdmissionWorker({ engine, log, metrics, tickMs: 100 });
    const b = createAdmissionWorker({ engine, log, tickMs: 100 });
    let admitted = 0;
    for (let t = 0; t < 50; t++) {
      clock.advance(100);
      admitted += (await a.tick()) + (await b.tick());
    }
    // 5 s at 20/s: 100 (+ the first tick's allowance), never more, however many workers run
    expect(admitted).toBeGreaterThanOrEqual(98);
    expect(admitted).toBeLessThanOrEqual(102);
    expect(await metrics.registry.getSingleMetricAsString('floodgate_waiting_room_waiting')).toMatch(new RegExp(`\\} ${200 - admitted}$`, 'm'));
    await a.stop();
    await b.stop();
  });

  it('runs on its own loop and stops cleanly', async ({ engine, clock, onTestFinished }) => {
    clock.set(T0);
    const ev = await engine.createEvent({
      ...gaEvent(100), salesOpenAt: new Date(T0).toISOString(), maxTicketsPerUser: 1,
      queue: { enabled: true, opensAt: new Date(T0 - 1000).toISOString(), admissionRatePerSecond: 1000, passTtlSeconds: 600 },
    });
    await engine.waitingRoom.join(ev.id, 'looped' as UserId);
    const w = createAdmissionWorker({ engine, log, tickMs: 20 });
    w.start();
    onTestFinished(() => w.stop());
    await waitFor('the person admitted', async () => {
      clock.advance(50);
      const q = (await engine.waitingRoom.join(ev.id, 'looped' as UserId)).status;
      return q.status === 'admitted';
    });
  });
});
