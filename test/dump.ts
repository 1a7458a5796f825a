import type { Redis } from 'ioredis';
import type { Pool } from '../platform/pg.js';
import { snapshotRedis } from './state.js';

/** Every row of every table of the test schema, and every key of the namespace, as one searchable text. */
export async function dumpEverything(pg: Pool, redis: Redis, ns: string): Promise<string> {
  const { rows: tables } = await pg.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
  );
  let out = '';
  for (const { table_name } of tables) {
    const { rows } = await pg.query(`SELECT row_to_json(t)::text AS j FROM "${table_name}" t`);
    out += rows.map((r: { j: string }) => r.j).join('\n');
  }
  out += JSON.stringify(await snapshotRedis(redis, `${ns}:*`));
  return out;
}
