import { pino } from 'pino';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import type { UserId } from '../../engine/ids.js';
import { createMetrics } from '../../platform/metrics.js';
import { createAdmissionWorker } from './admission.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);
const log = pino({ level: 'silent' });

// its own file: the worker admits for every event of the namespace, and this test counts every observation
describe('admission worker: the wait metric', () => {
  it('observes each admitted person\'s wait, from taking the place to the admission (floodgate_waiting_room_wait_seconds)', async ({ engine, clock }) => {
    clock.set(T0 - 60_000);
    const ev = await engine.createEvent({
      ...gaEvent(100), salesOpenAt: new Date(T0).toISOString(), maxTicketsPerUser: 1,
      queue: { enabled: true, opensAt: new Date(T0 - 120_000).toISOString(), admissionRatePerSecond: 50, passTtlSeconds: 600 },
    });
    await engine.waitingRoom.join(ev.id, 'early' as UserId); // drawn lane, 80 s before the admission below
    clock.set(T0 + 10_000);
    await engine.waitingRoom.join(ev.id, 'late' as UserId); // arrival lane, 10 s before it
    await engine.waitingRoom.join(ev.id, 'early' as UserId); // joining again does not restart the clock
    const metrics = createMetrics('workers');
    const a = createAdmissionWorker({ engine, log, metrics, tickMs: 100 });
    clock.set(T0 + 20_000);
    expect(await a.tick()).toBe(2);
    clock.advance(1000);
    expect(await a.tick()).toBe(0); // nobody left: nothing more observed
    const text = await metrics.registry.getSingleMetricAsString('floodgate_waiting_room_wait_seconds');
    expect(text).toMatch(/^floodgate_waiting_room_wait_seconds_count\{[^}]*\} 2$/m);
    expect(text).toMatch(/^floodgate_waiting_room_wait_seconds_sum\{[^}]*\} 90$/m);
    expect(text).toMatch(/^floodgate_waiting_room_wait_seconds_bucket\{le="15"[^}]*\} 1$/m);
    await a.stop();
  });
});
