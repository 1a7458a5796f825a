import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createEngine } from '../engine/index.js';
import { describe, expect, it } from '../test/fixtures.js';
import { TEST_REDIS_URL } from '../test/env.js';
import { createGaEvent, gaEvent } from '../test/events.js';
import { waitFor } from '../test/wait.js';
import { createOutboxMailer } from '../integrations/mail/outbox.js';
import { startJobWorkers } from '../workers/processors.js';
import { createJobSink } from '../integrations/queues.js';
import { startApi, token } from '../test/http.js';
import { createMetrics } from '../platform/metrics.js';
import { createPersistWorker } from '../workers/persist/persist.js';
import { createReconcileWorker } from '../workers/reconcile/reconcile.js';
import { createAdmissionWorker } from '../workers/admission/admission.js';
import { EXPORTED_METRICS, alertRules, dashboardQueries, metricFamily, metricNamesIn } from './queries.js';

/** Metric families in a Prometheus text exposition (from its # TYPE lines). */
const families = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => metricFamily(m[1]!)));

/**
 * What a scrape would store: family -> its samples (name with labels, value). A histogram counts as sampled only
 * with at least one observation (_count > 0): an empty one gives every quantile panel "no data".
 */
function samples(text: string): Map<string, { series: string; value: number }[]> {
  const out = new Map<string, { series: string; value: number }[]>();
  for (const m of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/gm)) {
    const family = metricFamily(m[1]!);
    out.set(family, [...(out.get(family) ?? []), { series: m[1]! + (m[2] ?? ''), value: Number(m[3]) }]);
  }
  return out;
}
const sampled = (family: string, s: { series: string; value: number }[] | undefined) =>
  !!s?.length && (!s.some((x) => x.series.startsWith(`${family}_count`)) || s.some((x) => x.series.startsWith(`${family}_count`) && x.value > 0));

describe('every metric a dashboard or an alert uses is exported and has samples', () => {
  it('after a real flow (hold, pay, deliver, cancel, refund, queue, admission, persist, reconcile), /metrics of the API and of the workers have samples of them all', async ({ engine, deps, clock, ns, onTestFinished }) => {
    // the BullMQ stages for real (payment, notify, refund), as the workers process runs them
    const outbox = await mkdtemp(join(tmpdir(), 'fg-metrics-'));
    const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const sink = createJobSink(bull, `${ns}:bull`, { sms: false });
    const e = createEngine({ ...deps, jobs: sink });
    const workersMetrics = createMetrics('workers');
    const log = pino({ level: 'silent' });
    const jobWorkers = startJobWorkers(
      { engine: e, log, metrics: workersMetrics, mailer: createOutboxMailer({ dir: outbox }), mailFrom: 'tickets@floodgate.test' },
      bull, `${ns}:bull`, ['payment', 'notify', 'refund'],
    );
    const api = await startApi(e);
    onTestFinished(async () => {
      await api.close();
      await jobWorkers.stop();
      await sink.close();
      bull.disconnect();
      await rm(outbox, { recursive: true, force: true });
    });
    const ev = await createGaEvent(engine, 10);
    const ann = await token('ann');
    const persist = createPersistWorker({ engine: e, log, metrics: workersMetrics });
    const drainAll = async () => {
      while ((await persist.drainOnce()) > 0);
    };
    // a hold, paid, delivered by e-mail, then refunded
    const b = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 2 } });
    await drainAll(); // the hold is recorded before it is paid
    expect((await api.call('POST', '/api/payments', { token: ann, body: { bookingId: b.json.bookingId, paymentMethodId: 'pm_card_visa' } })).status).toBe(200);
    await drainAll();
    await waitFor('tickets delivered', async () => (await api.call('GET', `/api/bookings/${b.json.bookingId}`, { token: ann })).json.status === 'TICKETS_DELIVERED');
    expect((await api.call('POST', `/api/bookings/${b.json.bookingId}/refund`, { token: ann })).status).toBeLessThan(300);
    // REFUNDED comes from the outbox's BookingRefunded (the persist worker's step, played here by drainAll)
    await waitFor('refunded', async () => (await drainAll(), (await api.call('GET', `/api/bookings/${b.json.bookingId}`, { token: ann })).json.status === 'REFUNDED'));
    // a hold the buyer cancels
    // a page of the web app reports its timings
    expect((await api.call('POST', '/api/client-timings', { body: { page: 'checkout', device: 'mobile', ttfbMs: 80, domReadyMs: 400, loadMs: 900, lcpMs: 600 } })).status).toBe(204);
    const c = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 1 } });
    expect((await api.call('DELETE', `/api/bookings/${c.json.bookingId}`, { token: ann })).status).toBe(200);
    await drainAll();
    // a waiting room: joined, then admitted a second later (the wait is observed)
    const queued = await engine.createEvent({
      ...gaEvent(10), salesOpenAt: new Date(clock.now()).toISOString(),
      queue: { enabled: true, opensAt: new Date(clock.now() - 1000).toISOString(), admissionRatePerSecond: 10, passTtlSeconds: 60 },
    });
    expect((await api.call('POST', `/api/events/${queued.id}/queue`, { token: ann })).status).toBe(201);
    await drainAll();
    await createReconcileWorker({ engine: e, log, metrics: workersMetrics, queues: sink.queues }).pass();
    clock.advance(1000);
    await createAdmissionWorker({ engine: e, log, metrics: workersMetrics, pace: { holdTtlMs: 60_000, budget: 0.5, windowMs: 10_000 } }).tick();

    const scraped = await fetch(api.metricsUrl).then(async (r) => ({ status: r.status, text: await r.text() }));
    expect(scraped.status).toBe(200);
    const workersText = await workersMetrics.registry.metrics();
    const exported = new Set([...families(scraped.text), ...families(workersText)]);
    expect(exported.has('floodgate_bookings_confirmed_total')).toBe(true);
    expect(scraped.text).toMatch(/^floodgate_hold_attempts_total\{[^}]*outcome="held"[^}]*\} 2$/m);
    expect(await workersMetrics.registry.getSingleMetricAsString('floodgate_bookings_confirmed_total')).toMatch(/\} 1$/m);
    expect(workersText).toMatch(/^floodgate_waiting_room_wait_seconds_sum\{[^}]*\} 1$/m);

    const used = new Map<string, string>();
    for (const q of dashboardQueries()) for (const m of metricNamesIn(q.expr)) used.set(m, `${q.dashboard}: ${q.panel}`);
    for (const r of alertRules()) for (const m of metricNamesIn(r.expr)) used.set(m, `alert ${r.alert}`);
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used].filter(([m]) => !exported.has(m)).map(([m, where]) => `${m} (${where})`);
    expect(missing).toEqual([]);
    // a # TYPE line is not data: every one of them has samples (histograms: observations) after the flow
    const all = samples(scraped.text + '\n' + workersText);
    const empty = [...used].filter(([m]) => !sampled(m, all.get(m))).map(([m, where]) => `${m} (${where})`);
    expect(empty).toEqual([]);
    // and the list the dashboard tests check against is exactly what the application exports
    expect(EXPORTED_METRICS.filter((m) => !exported.has(m))).toEqual([]);
  });
});
