import type { Logger } from 'pino';
import type { Pool } from '../platform/pg.js';
import type { RedisClient } from '../platform/redis.js';
import type { Clock } from './clock.js';
import type { EngineConfig } from './config.js';
import type { Namespace } from './ids.js';
import type { JobSink } from './jobs.js';
import type { PaymentProvider } from './payments/provider.js';

export type EngineDeps = {
  ns: Namespace;
  redis: RedisClient;
  pg: Pool;
  clock: Clock;
  config: EngineConfig;
  log?: Logger;
  /** Payments (simulated or Stripe): needed by the payment and refund flows. */
  provider?: PaymentProvider;
  /** Background jobs (BullMQ in api/ and workers/); none given = nothing is queued. */
  jobs?: JobSink;
};
