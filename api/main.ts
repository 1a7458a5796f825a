import { serve } from '@hono/node-server';
import { Queue } from 'bullmq';
import { SWEEPER_QUEUE } from '../integrations/queues.js';
import { boot, runMain } from '../wiring/boot.js';
import { createMetrics } from '../platform/metrics.js';
import { serveMetrics } from '../platform/metrics-server.js';
import { createApp } from './app.js';
import { createMailer } from '../integrations/providers.js';

runMain(async () => {
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
    checks: { redis: () => rt.redis.ping(), postgres: () => rt.pg.query('SELECT 1') },
    queues: [...Object.values(rt.jobs.queues), sweeperQueue],
  });
  const server = serve({ fetch: app.fetch, hostname: config.HOST, port: config.PORT }, (info) => {
    log.info({ port: info.port, host: config.HOST }, 'api listening');
  });
  // Prometheus scrapes METRICS_PORT; the public port has no /metrics
  if (config.METRICS_PORT) {
    const metricsServer = await serveMetrics(metrics, config.HOST, config.METRICS_PORT);
    log.info({ port: config.METRICS_PORT, host: config.HOST }, 'metrics listening');
    shutdown.add('metrics server', () => new Promise<void>((r) => metricsServer.close(() => r())));
  }
  // SIGTERM: stop accepting, let in-flight requests finish, then close Redis and Postgres.
  shutdown.add('http', () => new Promise<void>((resolve) => server.close(() => resolve())));
  shutdown.listen();
});
