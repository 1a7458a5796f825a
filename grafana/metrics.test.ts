import { pino } from 'pino';
import { describe, expect, it } from '../test/fixtures.js';
import { createGaEvent } from '../test/events.js';
import { startApi, token } from '../test/http.js';
import { createMetrics } from '../platform/metrics.js';
import { createPersistWorker } from '../workers/persist/persist.js';
import { createReconcileWorker } from '../workers/reconcile/reconcile.js';
import { createAdmissionWorker } from '../workers/admission/admission.js';
import { EXPORTED_METRICS, alertRules, dashboardQueries, metricFamily, metricNamesIn } from './queries.js';

/** Metric families in a Prometheus text exposition (from its # TYPE lines). */
const families = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => metricFamily(m[1]!)));

describe('every metric a dashboard or an alert uses is exported', () => {
  it('after a real flow (hold, pay, queue, persist, reconcile), /metrics of the API and of the workers have them all', async ({ engine, clock, onTestFinished }) => {
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const workersMetrics = createMetrics('workers');
    const log = pino({ level: 'silent' });
    const ev = await createGaEvent(engine, 10);
    const ann = await token('ann');
    const b = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 2 } });
    const persist = createPersistWorker({ engine, log, metrics: workersMetrics });
    while ((await persist.drainOnce()) > 0); // the hold is recorded before it is paid
    expect((await api.call('POST', '/api/payments', { token: ann, body: { bookingId: b.json.bookingId, paymentMethodId: 'pm_card_visa' } })).status).toBe(200);
    const queued = await engine.createEvent({
      ...(await import('../test/events.js')).gaEvent(10), salesOpenAt: new Date(clock.now()).toISOString(),
      queue: { enabled: true, opensAt: new Date(clock.now() - 1000).toISOString(), admissionRatePerSecond: 10, passTtlSeconds: 60 },
    });
    expect((await api.call('POST', `/api/events/${queued.id}/queue`, { token: ann })).status).toBe(201);
    while ((await persist.drainOnce()) > 0);
    await createReconcileWorker({ engine, log, metrics: workersMetrics }).pass();
    clock.advance(1000);
    await createAdmissionWorker({ engine, log, metrics: workersMetrics }).tick();

    const scraped = await fetch(api.metricsUrl).then(async (r) => ({ status: r.status, text: await r.text() }));
    expect(scraped.status).toBe(200);
    const exported = new Set([...families(scraped.text), ...families(await workersMetrics.registry.metrics())]);
    expect(exported.has('floodgate_bookings_confirmed_total')).toBe(true);
    expect(scraped.text).toMatch(/^floodgate_hold_attempts_total\{[^}]*outcome="held"[^}]*\} 1$/m);
    expect(await workersMetrics.registry.getSingleMetricAsString('floodgate_bookings_confirmed_total')).toMatch(/\} 1$/m);

    const used = new Map<string, string>();
    for (const q of dashboardQueries()) for (const m of metricNamesIn(q.expr)) used.set(m, `${q.dashboard}: ${q.panel}`);
    for (const r of alertRules()) for (const m of metricNamesIn(r.expr)) used.set(m, `alert ${r.alert}`);
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used].filter(([m]) => !exported.has(m)).map(([m, where]) => `${m} (${where})`);
    expect(missing).toEqual([]);
    // and the list the dashboard tests check against is exactly what the application exports
    expect(EXPORTED_METRICS.filter((m) => !exported.has(m))).toEqual([]);
  });
});
