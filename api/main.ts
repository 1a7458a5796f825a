import { serve } from '@hono/node-server';
import { Queue } from 'bullmq';
import { SWEEPER_QUEUE } from '../integrations/queues.js';
import { boot, runMain } from '../wiring/boot.js';
import { defaultProcesses, isClusterWorker, runPrimary, shareMetricsWithPrimary } from '../platform/cluster.js';
import { loadConfig } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { createMetrics } from '../platform/metrics.js';
import { serveMetrics } from '../platform/metrics-server.js';
import { createApp } from './app.js';
import { createMailer } from '../integrations/providers.js';

runMain(async () => {
  const config = loadConfig();
  const processes = config.API_PROCESSES ?? defaultProcesses();
  // API_PROCESSES > 1: this process is the cluster primary (forks the API processes, serves their summed /metrics on
  // METRICS_PORT, restarts one that dies, drains them all on SIGTERM); each forked process runs serveApi().
  if (processes > 1 && !isClusterWorker()) {
    const log = createLogger('api', config.LOG_LEVEL);
    return runPrimary({ service: 'api', processes, log, metrics: config.METRICS_PORT ? { host: config.HOST, port: config.METRICS_PORT } : undefined }, (_p, port) =>
      log.info({ port, host: config.HOST, processes }, 'api listening'),
    );
  }
  await serveApi();
});

/** One API process: the app on PORT (shared by every process of a cluster), drained on SIGTERM. */
async function serveApi(): Promise<void> {
  const rt = await boot('api', 'api');
  const { config, log, shutdown } = rt;
  const sweeperQueue = new Queue(SWEEPER_QUEUE, { connection: rt.bull, prefix: rt.bullPrefix });
  shutdown.add('sweeper queue', () => sweeperQueue.close());
  const metrics = createMetrics('api');
  const app = createApp({
    engine: rt.engine,
    log,
    metrics,
    config: {
      jwtSecret: config.JWT_SECRET,
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
      stripeWebhookSecrets: config.PAYMENTS_PROVIDER === 'stripe' ? config.STRIPE_WEBHOOK_SECRET!.split(',').map((s) => s.trim()) : [],
      twilio: config.SMS_PROVIDER === 'twilio' && config.TWILIO_STATUS_CALLBACK_URL ? { authToken: config.TWILIO_AUTH_TOKEN!, statusCallbackUrl: config.TWILIO_STATUS_CALLBACK_URL } : undefined,
      web: { publicBaseUrl: config.PUBLIC_BASE_URL.replace(/\/+$/, ''), mailFrom: config.MAIL_FROM },
      streams: { perUser: config.STREAM_MAX_PER_USER, perIp: config.STREAM_MAX_PER_IP },
      rateLimit: { perUser: config.RATE_LIMIT_PER_USER, perIp: config.RATE_LIMIT_PER_IP, windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS, trustProxyHops: config.TRUST_PROXY_HOPS },
    },
    mailer: createMailer(config),
    checks: rt.engine.probes,
    queues: [...Object.values(rt.jobs.queues), sweeperQueue],
  });
  const worker = isClusterWorker();
  const server = serve({ fetch: app.fetch, hostname: config.HOST, port: config.PORT }, (info) => {
    // a cluster's primary says 'api listening' once all of its processes do
    if (!worker) log.info({ port: info.port, host: config.HOST }, 'api listening');
  });
  // Prometheus scrapes METRICS_PORT; the public port has no /metrics. In a cluster the primary serves it, summing
  // what each process answers.
  if (worker) {
    shareMetricsWithPrimary(metrics.registry);
  } else if (config.METRICS_PORT) {
    const metricsServer = await serveMetrics(metrics, config.HOST, config.METRICS_PORT);
    log.info({ port: config.METRICS_PORT, host: config.HOST }, 'metrics listening');
    shutdown.add('metrics server', () => new Promise<void>((r) => metricsServer.close(() => r())));
  }
  // SIGTERM: stop accepting, let in-flight requests finish, then close Redis and Postgres.
  shutdown.add('http', () => new Promise<void>((resolve) => server.close(() => resolve())));
  shutdown.listen();
}
