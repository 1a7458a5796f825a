/**
 * What every child program of the kill -9 tests starts from: its settings from the parent's environment (NS,
 * REDIS_URL, DATABASE_URL, SCHEMA, ...) and the test's Redis (scripts loaded) and Postgres schema.
 */
import { Redis } from 'ioredis';
import { asNamespace } from '../../engine/ids.js';
import { loadCommands } from '../../lua/commands.js';
import { createPool } from '../../platform/pg.js';

/** A setting the parent passed; its absence is the parent's bug. */
export const env = (k: string) => process.env[k] ?? (() => { throw new Error(`${k} missing`); })();
export const ns = asNamespace(env('NS'));
export const redis = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
await loadCommands(redis);
export const pg = createPool({ url: env('DATABASE_URL'), schema: env('SCHEMA') });
