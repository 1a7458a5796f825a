/**
 * A benchmark server process; its argument picks what it serves. `hello`: a bare Hono "hello" route (the framework
 * ceiling). `floodgate`: the real API (createApp) wired to Redis and Postgres from the environment. `pg-lock`: the same
 * API with bookings taken by the seed's SELECT ... FOR UPDATE design (bench/lib/pg-lock.ts, the baseline; Floodgate's
 * own code does not know it).
 * Same layout for all: one Node process, @hono/node-server. Prints "listening <port>" when ready (floodgate and pg-lock:
 * "listening <port> metrics <metrics port>").
 * A second argument N > 1 (`bench/server.ts floodgate 2`, from `npm run bench -- booking --api-processes 2`) runs the
 * mode as api/main.ts does with API_PROCESSES=N: a cluster primary (platform/cluster.ts) forks N processes sharing
 * the port and serves their summed metrics; the line then ends with "pids <primary>,<process>,...".
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createApp } from '../api/app.js';
import { boot, runMain } from '../wiring/boot.js';
import { systemClock } from '../engine/clock.js';
import { createMetrics } from '../platform/metrics.js';
import { serveMetrics } from '../platform/metrics-server.js';
import { isClusterWorker, runPrimary, shareMetricsWithPrimary } from '../platform/cluster.js';
import { loadConfig } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { withPgLockBookings } from './lib/pg-lock.js';

runMain(async () => {
  const mode = process.argv[2] ?? 'floodgate';
  const processes = Number(process.argv[3] ?? '1');
  if (!Number.isInteger(processes) || processes < 1) throw new Error(`bench server: processes must be a whole number from 1, got ${process.argv[3]}`);
  if (processes > 1 && !isClusterWorker()) {
    const log = createLogger('api', loadConfig().LOG_LEVEL);
    const metrics = mode === 'hello' ? undefined : { host: '127.0.0.1', port: 0 };
    return runPrimary({ service: 'api', processes, log, metrics }, (p, port) =>
      console.log(`listening ${port}${p.metricsPort ? ` metrics ${p.metricsPort}` : ''} pids ${[process.pid, ...p.pids()].join(',')}`),
    );
  }
  const worker = isClusterWorker();
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
    // as api/main.ts: /metrics on a port of its own (in a cluster: the primary's, summing every process's)
    if (worker) {
      shareMetricsWithPrimary(metrics.registry);
    } else {
      const metricsServer = await serveMetrics(metrics, '127.0.0.1', 0);
      metricsPort = (metricsServer.address() as { port: number }).port;
      rt.shutdown.add('metrics server', () => new Promise<void>((r) => metricsServer.close(() => r())));
    }
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
  // port 0: a free port; the processes of a cluster all get the same one (the primary prints it)
  const server = serve({ fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
    if (!worker) console.log(`listening ${info.port}${metricsPort ? ` metrics ${metricsPort}` : ''}`);
  });
  process.once('SIGTERM', () => server.close(() => void close().then(() => process.exit(0))));
});
