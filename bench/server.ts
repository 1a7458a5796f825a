/**
 * A benchmark server process; its argument picks what it serves. `hello`: a bare Hono "hello" route (the framework
 * ceiling). `floodgate`: the real API (createApp) wired to Redis and Postgres from the environment. `pg-lock`: the same
 * API with bookings taken by the seed's SELECT ... FOR UPDATE design (bench/lib/pg-lock.ts, the baseline; Floodgate's
 * own code does not know it).
 * Same layout for all: one Node process, @hono/node-server. Prints "listening <port>" when ready (floodgate and pg-lock:
 * "listening <port> metrics <metrics port>").
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createApp } from '../api/app.js';
import { boot, runMain } from '../wiring/boot.js';
import { systemClock } from '../engine/clock.js';
import { createMetrics } from '../platform/metrics.js';
import { serveMetrics } from '../platform/metrics-server.js';
import { withPgLockBookings } from './lib/pg-lock.js';

runMain(async () => {
  const mode = process.argv[2] ?? 'floodgate';
  let fetch: (req: Request) => Response | Promise<Response>;
  let close = async () => {};
  let metricsPort: number | undefined;
  if (mode === 'hello') {
    const app = new Hono().post('/hello', (c) => c.json({ hello: 'world' }, 201)).get('/hello', (c) => c.json({ hello: 'world' }));
    fetch = app.fetch;
  } else if (mode === 'floodgate' || mode === 'pg-lock') {
    const rt = await boot('api', 'api');
    const engine = mode === 'pg-lock' ? withPgLockBookings(rt.engine, { pg: rt.pg, clock: systemClock, config: { holdTtlMs: rt.config.HOLD_TTL_MS } }) : rt.engine;
    const metrics = createMetrics('api');
    // as api/main.ts: /metrics on a port of its own
    const metricsServer = await serveMetrics(metrics, '127.0.0.1', 0);
    metricsPort = (metricsServer.address() as { port: number }).port;
    rt.shutdown.add('metrics server', () => new Promise<void>((r) => metricsServer.close(() => r())));
    const app = createApp({
      engine,
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
