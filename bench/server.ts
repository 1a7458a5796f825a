/**
 * A benchmark server process. BENCH_MODE=hello serves a bare Hono "hello" route (the framework ceiling);
 * BENCH_MODE=floodgate serves the real API (createApp) wired to Redis and Postgres from the environment.
 * Same layout for both: one Node process, @hono/node-server. Prints "listening <port>" when ready.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createApp } from '../api/app.js';
import { boot, runMain } from '../platform/boot.js';
import { createMetrics } from '../platform/metrics.js';

runMain(async () => {
  const mode = process.argv[2] ?? 'floodgate';
  let fetch: (req: Request) => Response | Promise<Response>;
  let close = async () => {};
  if (mode === 'hello') {
    const app = new Hono().post('/hello', (c) => c.json({ hello: 'world' }, 201)).get('/hello', (c) => c.json({ hello: 'world' }));
    fetch = app.fetch;
  } else if (mode === 'floodgate') {
    const rt = await boot('api', 'api');
    const app = createApp({
      engine: rt.engine,
      log: rt.log,
      metrics: createMetrics('api'),
      config: {
        jwtSecret: rt.config.JWT_SECRET,
        bodyLimitBytes: rt.config.BODY_LIMIT_BYTES,
        requestTimeoutMs: rt.config.REQUEST_TIMEOUT_MS,
        rateLimit: { perUser: rt.config.RATE_LIMIT_PER_USER, perIp: rt.config.RATE_LIMIT_PER_IP, windowSeconds: rt.config.RATE_LIMIT_WINDOW_SECONDS, trustProxy: false },
      },
      checks: { redis: () => rt.redis.ping(), postgres: () => rt.pg.query('SELECT 1') },
    });
    fetch = app.fetch;
    close = () => rt.shutdown.run();
  } else {
    throw new Error(`unknown bench server mode ${mode}`);
  }
  const server = serve({ fetch, hostname: '127.0.0.1', port: 0 }, (info) => console.log(`listening ${info.port}`));
  process.once('SIGTERM', () => server.close(() => void close().then(() => process.exit(0))));
});
