import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { Metrics } from './metrics.js';

/**
 * /metrics (Prometheus) and /health of one process, on its own METRICS_PORT: never on the API's public port, so
 * the outside world cannot read it through the load balancer. The API and the workers both use it.
 */
export function metricsApp(metrics: Metrics) {
  return new Hono()
    .get('/health', (c) => c.json({ status: 'ok' }))
    .get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));
}

/** Serves metricsApp on host:port; resolves once it listens (port 0: a free one, see `address()`). */
export function serveMetrics(metrics: Metrics, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: metricsApp(metrics).fetch, hostname, port }, () => resolve(server));
    server.once('error', reject);
  });
}
