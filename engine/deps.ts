import type { Logger } from 'pino';
import type { Pool } from '../platform/pg.js';
import type { RedisClient } from '../platform/redis.js';
import type { Clock } from './clock.js';
import type { EngineConfig } from './config.js';
import type { Namespace } from './ids.js';

export type EngineDeps = {
  ns: Namespace;
  redis: RedisClient;
  pg: Pool;
  clock: Clock;
  config: EngineConfig;
  log?: Logger;
};
