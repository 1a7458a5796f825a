import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrate } from '../../db/migrate.js';
import { asNamespace, type Namespace } from '../../engine/ids.js';
import { loadCommands } from '../../lua/commands.js';
import { createPool, type Pool } from '../../platform/pg.js';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../env.js';

/** Where simulations run: real Redis and Postgres, in a key namespace and schema of their own. */
export type World = { ns: Namespace; redis: Redis; pg: Pool };

/**
 * Opens a world for the CLI (`npm run sim`). The vitest file uses the file-scoped fixtures of test/fixtures.ts instead;
 * this does the same without importing vitest, which cannot be loaded outside its runner. Several seeds share one
 * world: each run creates its own events and checks only those.
 */
export async function openWorld(): Promise<World & { close(): Promise<void> }> {
  const ns = asNamespace(`t_sim_${randomBytes(4).toString('hex')}`);
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  await loadCommands(redis);
  await migrate({ databaseUrl: TEST_DATABASE_URL, schema: ns });
  const pool = createPool({ url: TEST_DATABASE_URL, schema: ns, max: 10 });
  return {
    ns,
    redis,
    pg: pool,
    async close() {
      await pool.end();
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${ns} CASCADE`);
      } finally {
        await c.end();
      }
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${ns}:*`, 'COUNT', 1000);
        if (keys.length) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}
