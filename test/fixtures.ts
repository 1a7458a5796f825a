import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { test as base } from 'vitest';
import { migrate } from '../db/migrate.js';
import { fakeClock, type FakeClock } from '../engine/clock.js';
import { asNamespace, type Namespace } from '../engine/ids.js';
import { createEngine, type Engine, type EngineDeps } from '../engine/index.js';
import { loadCommands } from '../lua/commands.js';
import { createPool, type Pool } from '../platform/pg.js';
import { createSimulatedProvider } from '../integrations/payments/simulated.js';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './env.js';
import { TEST_ENGINE_CONFIG } from './config.js';
import { recordingJobs, type RecordingJobs } from './jobs.js';
import { simulatedPaymentKeys } from '../engine/keys.js';

export { TEST_ENGINE_CONFIG } from './config.js';

export const newNamespace = (): Namespace => asNamespace(`t_${randomBytes(5).toString('hex')}`);

/** Deletes every key of a test namespace (never anything else). */
export async function unlinkNamespace(redis: Redis, ns: Namespace): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${ns}:*`, 'COUNT', 1000);
    if (keys.length) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** A migrated Postgres schema of our own; dropped by dropSchema. */
export async function createSchema(schema: string): Promise<Pool> {
  await migrate({ databaseUrl: TEST_DATABASE_URL, schema });
  return createPool({ url: TEST_DATABASE_URL, schema, max: 20 });
}

export async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}

export type Fixtures = { ns: Namespace; redis: Redis; pg: Pool; clock: FakeClock; jobs: RecordingJobs; deps: EngineDeps; engine: Engine };

/**
 * File-scoped fixtures: each test file gets its own Redis key namespace and Postgres schema (so files run in
 * parallel and reruns are clean), a fake clock, and an engine wired to them. Everything is removed at the end.
 * `deps` is what the engine was built from (the engine does not hand it out): a test builds a variant engine with
 * `createEngine({ ...deps, provider })` and reads the config, provider or stores it shares with the engine.
 */
export const it = base.extend<Fixtures>({
  ns: [async ({}, use) => use(newNamespace()), { scope: 'file' }],
  redis: [
    async ({ ns }, use) => {
      const r = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
      await loadCommands(r);
      await use(r);
      await unlinkNamespace(r, ns);
      r.disconnect();
    },
    { scope: 'file' },
  ],
  pg: [
    async ({ ns }, use) => {
      const pool = await createSchema(ns);
      await use(pool);
      await pool.end();
      await dropSchema(ns);
    },
    { scope: 'file' },
  ],
  clock: [async ({}, use) => use(fakeClock()), { scope: 'file' }],
  jobs: [async ({}, use) => use(recordingJobs()), { scope: 'file' }],
  deps: [
    async ({ ns, redis, pg, clock, jobs }, use) =>
      use({
        ns, redis, pg, clock, config: TEST_ENGINE_CONFIG, jobs: jobs.sink,
        provider: createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns), timeoutMs: 300 }),
      }),
    { scope: 'file' },
  ],
  engine: [async ({ deps }, use) => use(createEngine(deps)), { scope: 'file' }],
});
export { describe, expect } from 'vitest';
