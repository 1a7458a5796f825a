import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';

/** What the metrics port serves: a prom-client registry (Metrics has one), or the cluster primary's summed view. */
export type MetricsSource = { registry: { metrics(): Promise<string>; contentType: string } };

/**
 * /metrics (Prometheus) and /health of one process, on its own METRICS_PORT: never on the API's public port, so
 * the outside world cannot read it through the load balancer. The API and the workers both use it; with
 * API_PROCESSES > 1 the API's cluster primary serves it, with every API process's metrics summed (platform/cluster.ts).
 */
export function metricsApp(metrics: MetricsSource) {
  return new Hono()
    .get('/health', (c) => c.json({ status: 'ok' }))
    .get('/metrics', async (c) => {
      let body: string;
      try {
        body = await metrics.registry.metrics();
      } catch (err) {
        // the cluster primary: a process did not answer in time (Prometheus records a failed scrape)
        return c.text(`metrics unavailable: ${(err as Error).message}\n`, 503);
      }
      return c.body(body, 200, { 'content-type': metrics.registry.contentType });
    });
}

/** Serves metricsApp on host:port; resolves once it listens (port 0: a free one, see `address()`). */
export function serveMetrics(metrics: MetricsSource, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: metricsApp(metrics).fetch, hostname, port }, () => resolve(server));
    server.once('error', reject);
  });
}
