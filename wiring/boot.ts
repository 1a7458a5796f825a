import type { Logger } from 'pino';
import { systemClock } from '../engine/clock.js';
import { asNamespace } from '../engine/ids.js';
import { createEngine, type Engine } from '../engine/index.js';
import { globalKeys, simulatedPaymentKeys } from '../engine/keys.js';
import { loadConfig, type Config } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { createPool, type Pool } from '../platform/pg.js';
import { createBullConnection, createRedis, type RedisClient, type RedisRole } from '../platform/redis.js';
import { createPaymentProvider } from '../integrations/providers.js';
import { createJobSink } from '../integrations/queues.js';
import { createShutdown } from '../platform/shutdown.js';
import { createFailoverSignals, watchRedisServer, type FailoverSignals, type RedisServerWatch } from '../platform/failover.js';

export type Runtime = {
  config: Config;
  log: Logger;
  redis: RedisClient;
  pg: Pool;
  engine: Engine;
  /** BullMQ's connection, and the queues the engine enqueues on. */
  bull: RedisClient;
  jobs: ReturnType<typeof createJobSink>;
  bullPrefix: string;
  shutdown: ReturnType<typeof createShutdown>;
  /** Failovers this process notices: its pool found another Postgres primary, or `redis` talks to another server. */
  failovers: FailoverSignals;
  /** The watch on `redis` behind the Redis half of `failovers` (its `check` asks Redis now). */
  redisWatch: RedisServerWatch;
};

/** Config, logger, Redis (scripts loaded), Postgres pool and engine for one process; closed in reverse order. */
export async function boot(service: 'api' | 'workers', role: RedisRole, env?: Record<string, string | undefined>): Promise<Runtime> {
  const config = loadConfig(env);
  const log = createLogger(service, config.LOG_LEVEL);
  const shutdown = createShutdown((msg) => log.info(msg));
  const redisSettings = {
    url: config.REDIS_URL,
    clusterNodes: config.REDIS_CLUSTER_NODES,
    sentinels: config.REDIS_SENTINELS,
    sentinelName: config.REDIS_SENTINEL_NAME,
    waitReplicas: config.REDIS_WAIT_REPLICAS,
    waitTimeoutMs: config.REDIS_WAIT_TIMEOUT_MS,
  };
  const redis = await createRedis({ ...redisSettings, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS }, role);
  shutdown.add('redis', () => redis.quit());
  const failovers = createFailoverSignals();
  const redisWatch = watchRedisServer(redis, failovers);
  await redisWatch.check().catch(() => {}); // the server this process starts on: the baseline, not a failover
  shutdown.add('redis failover watch', async () => redisWatch.stop());
  const pg = createPool({
    url: config.DATABASE_URL, hosts: config.PG_HOSTS, schema: config.PG_SCHEMA, max: config.PG_POOL_MAX, statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
    onPrimaryChange: (from, to) => failovers.emit({ store: 'postgres', from: `${from.host}:${from.port}`, to: `${to.host}:${to.port}`, atMs: Date.now() }),
  });
  shutdown.add('postgres', () => pg.end());
  const bull = createBullConnection(redisSettings);
  shutdown.add('bullmq connection', () => bull.quit());
  const bullPrefix = globalKeys(asNamespace(config.KEY_NAMESPACE)).bullPrefix;
  const jobs = createJobSink(bull, bullPrefix, { sms: config.SMS_PROVIDER !== 'none' });
  shutdown.add('queues', () => jobs.close());
  const engine = createEngine({
    ns: asNamespace(config.KEY_NAMESPACE),
    redis,
    pg,
    clock: systemClock,
    log,
    provider: createPaymentProvider(config, redis, simulatedPaymentKeys(asNamespace(config.KEY_NAMESPACE))),
    jobs,
    config: {
      holdTtlMs: config.HOLD_TTL_MS,
      waitlistOfferTtlMs: config.WAITLIST_OFFER_TTL_MS,
      idempotencyTtlMs: config.IDEMPOTENCY_TTL_MS,
      defaultMaxTicketsPerUser: config.MAX_TICKETS_PER_USER,
      catalogCacheMs: 5_000,
      admissionSecret: config.ADMISSION_SECRET,
      ticketSecret: config.TICKET_SECRET,
      paymentMaxAttempts: config.PAYMENT_MAX_ATTEMPTS,
      paymentWindowMs: config.PAYMENT_WINDOW_MS,
      refundCutoffHours: config.REFUND_CUTOFF_HOURS,
    },
  });
  return { config, log, redis, pg, engine, bull, jobs, bullPrefix, shutdown, failovers, redisWatch };
}

/** Runs main(), printing configuration problems plainly and exiting 1 on a failed start. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const e = err as Error;
    console.error(e.name === 'ConfigError' ? e.message : `failed to start: ${e.stack ?? e.message}`);
    process.exit(1);
  });
}
