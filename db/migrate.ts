import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

export type MigrateOptions = {
  databaseUrl: string;
  /** Postgres schema to migrate (created if missing). Tests use one schema per file. */
  schema?: string;
  log?: (msg: string) => void;
};

/** A per-schema advisory lock id, so migrations of different schemas never wait for each other. */
function lockValue(schema: string): number {
  return createHash('sha256').update(`floodgate:${schema}`).digest().readUInt32BE(0);
}

/** Applies every pending migration under an advisory lock (concurrent callers wait, then find nothing to do). */
export async function migrate({ databaseUrl, schema = 'public', log = () => {} }: MigrateOptions): Promise<string[]> {
  const ran = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    schema,
    createSchema: true,
    singleTransaction: true,
    advisoryLockMode: 'wait',
    lockValue: lockValue(schema),
    log,
    logger: { debug: () => {}, info: log, warn: log, error: log },
  });
  return ran.map((m) => m.name);
}
