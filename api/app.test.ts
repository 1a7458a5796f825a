import { describe, expect, it } from '../test/fixtures.js';
import { startApi } from '../test/http.js';

describe('service endpoints', () => {
  it('/health, /ready, /metrics (on the metrics port only), /openapi.json, /docs and an unknown route', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    expect((await api.call('GET', '/health')).json).toEqual({ status: 'ok' });
    expect((await api.call('GET', '/ready')).json).toEqual({ status: 'ready', redis: 'up', postgres: 'up' });
    // /metrics is on the metrics port only (METRICS_PORT), never on the public one
    expect((await api.call('GET', '/metrics')).status).toBe(404);
    const metrics = await fetch(api.metricsUrl);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^floodgate_http_request_duration_seconds_count\{service="api",method="GET",route="\/ready",status="200"\} 1$/m);
    const spec = await api.call('GET', '/openapi.json');
    expect(spec.json.openapi).toBe('3.1.0');
    expect(Object.keys(spec.json.paths)).toEqual(
      expect.arrayContaining(['/api/events', '/api/events/{eventId}', '/api/events/{eventId}/seats', '/api/admin/events', '/api/bookings', '/api/bookings/{bookingId}']),
    );
    expect(spec.json.components.schemas.Problem).toBeDefined();
    const docs = await api.call('GET', '/docs');
    expect(docs.status).toBe(200);
    expect(docs.text).toContain('/openapi.json');
    const missing = await api.call('GET', '/nowhere');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/problem+json');
    expect(missing.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('/ready reports degraded (503) when Postgres cannot answer', async ({ engine, onTestFinished }) => {
    const { createPool } = await import('../platform/pg.js');
    const dead = createPool({ url: 'postgres://postgres@127.0.0.1:1/none' });
    const api = await startApi({ ...engine, probes: { ...engine.probes, postgres: () => dead.query('SELECT 1') } });
    onTestFinished(async () => {
      await api.close();
      await dead.end();
    });
    const res = await api.call('GET', '/ready');
    expect(res.status).toBe(503);
    expect(res.json).toEqual({ status: 'degraded', redis: 'up', postgres: 'down' });
    expect(res.headers.get('retry-after')).toBe('2');
  });
});
