import { z } from 'zod';

const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const int = (def: number, min = 1) => z.coerce.number().int().min(min).default(def);
const DEV_JWT_SECRET = 'floodgate-dev-secret-change-me-in-production';
const DEV_ADMISSION_SECRET = 'floodgate-dev-admission-secret-change-me';

/** Every setting, from the environment. Defaults make `npm start` work on a developer machine. */
const Env = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    HOST: z.string().default('127.0.0.1'),
    PORT: int(3000, 0),
    REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
    /** Comma-separated host:port seeds; when set, Floodgate talks to a Redis Cluster instead of REDIS_URL. */
    REDIS_CLUSTER_NODES: z.string().default(''),
    DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/floodgate'),
    PG_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a plain lower-case schema name').default('public'),
    PG_POOL_MAX: int(10),
    JWT_SECRET: z.string().min(16, 'at least 16 characters').default(DEV_JWT_SECRET),
    /** HMAC key of waiting-room admission passes. */
    ADMISSION_SECRET: z.string().min(16, 'at least 16 characters').default(DEV_ADMISSION_SECRET),
    /** How often the admission worker admits people (ms). */
    ADMISSION_TICK_MS: int(100),
    KEY_NAMESPACE: z.string().regex(/^[a-z0-9_]+$/, 'lower-case letters, digits, _ (no braces or colons)').default('fg'),
    HOLD_TTL_MS: int(15 * 60_000),
    IDEMPOTENCY_TTL_MS: int(24 * 3600_000),
    MAX_TICKETS_PER_USER: int(8),
    MAX_TICKETS_PER_BOOKING: int(10),
    BODY_LIMIT_BYTES: int(16 * 1024),
    REDIS_COMMAND_TIMEOUT_MS: int(1000),
    REQUEST_TIMEOUT_MS: int(5000),
    WORKERS: z.string().default('persist,sweeper,admission'),
    SWEEP_INTERVAL_MS: int(2000),
    PERSIST_BATCH_SIZE: int(500),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DEMO_EVENT: bool.default(true),
    /** Where `npm start` keeps the Redis and Postgres it starts itself (when none answers). */
    DATA_DIR: z.string().default('.data'),
  })
  .superRefine((e, ctx) => {
    if (e.NODE_ENV === 'production' && e.JWT_SECRET === DEV_JWT_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'must be set in production' });
    }
    if (e.NODE_ENV === 'production' && e.ADMISSION_SECRET === DEV_ADMISSION_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['ADMISSION_SECRET'], message: 'must be set in production' });
    }
  });

export type Config = Readonly<z.infer<typeof Env>>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment once; lists every problem at once. The only reader of process.env. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const r = Env.safeParse(env);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return Object.freeze(r.data);
}
