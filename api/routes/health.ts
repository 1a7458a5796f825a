import { Hono } from 'hono';
import type { AppEnv } from '../env.js';

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

export const health = new Hono<AppEnv>()
  /** Liveness: the process answers. */
  .get('/health', (c) => c.json({ status: 'ok' }))
  /** Readiness: Redis (holds) and Postgres (durable record) both answer; 503 "degraded" otherwise. */
  .get('/ready', async (c) => {
    const { checks } = c.var.deps;
    const [redis, postgres] = await Promise.all(
      [checks.redis, checks.postgres].map((f) =>
        withTimeout(f(), 1000).then(
          () => 'up' as const,
          () => 'down' as const,
        ),
      ),
    );
    const ok = redis === 'up' && postgres === 'up';
    if (!ok) c.header('retry-after', '2');
    return c.json({ status: ok ? 'ready' : 'degraded', redis, postgres }, ok ? 200 : 503);
  });
// /metrics is not here: it is served on METRICS_PORT (platform/metrics-server.ts), never on the public port.
