/**
 * A benchmark server process. BENCH_MODE=hello serves a bare Hono "hello" route (the framework ceiling);
 * BENCH_MODE=floodgate serves the real API (createApp) wired to Redis and Postgres from the environment.
 * Same layout for both: one Node process, @hono/node-server. Prints "listening <port>" when ready (floodgate mode:
 * "listening <port> metrics <metrics port>").
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createApp } from '../api/app.js';
import { boot, runMain } from '../wiring/boot.js';
import { createMetrics } from '../platform/metrics.js';
import { serveMetrics } from '../platform/metrics-server.js';

runMain(async () => {
  const mode = process.argv[2] ?? 'floodgate';
  let fetch: (req: Request) => Response | Promise<Response>;
  let close = async () => {};
  let metricsPort: number | undefined;
  if (mode === 'hello') {
    const app = new Hono().post('/hello', (c) => c.json({ hello: 'world' }, 201)).get('/hello', (c) => c.json({ hello: 'world' }));
    fetch = app.fetch;
  } else if (mode === 'floodgate') {
    const rt = await boot('api', 'api');
    const metrics = createMetrics('api');
    // as api/main.ts: /metrics on a port of its own
    const metricsServer = await serveMetrics(metrics, '127.0.0.1', 0);
    metricsPort = (metricsServer.address() as { port: number }).port;
    rt.shutdown.add('metrics server', () => new Promise<void>((r) => metricsServer.close(() => r())));
    const app = createApp({
      engine: rt.engine,
      log: rt.log,
      metrics,
      config: {
        jwtSecret: rt.config.JWT_SECRET,
        bodyLimitBytes: rt.config.BODY_LIMIT_BYTES,
        requestTimeoutMs: rt.config.REQUEST_TIMEOUT_MS,
        rateLimit: { perUser: rt.config.RATE_LIMIT_PER_USER, perIp: rt.config.RATE_LIMIT_PER_IP, windowSeconds: rt.config.RATE_LIMIT_WINDOW_SECONDS, trustProxyHops: 0 },
      },
      checks: { redis: () => rt.redis.ping(), postgres: () => rt.pg.query('SELECT 1') },
    });
    fetch = app.fetch;
    close = () => rt.shutdown.run();
  } else {
    throw new Error(`unknown bench server mode ${mode}`);
  }
  const server = serve({ fetch, hostname: '127.0.0.1', port: 0 }, (info) =>
    console.log(`listening ${info.port}${metricsPort ? ` metrics ${metricsPort}` : ''}`),
  );
  process.once('SIGTERM', () => server.close(() => void close().then(() => process.exit(0))));
});
