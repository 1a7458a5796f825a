/**
 * The persist worker, killed with SIGKILL right after the drain committed a batch to Postgres and before the outbox
 * entries were acknowledged in Redis, as a crash at the worst moment would: no cleanup, no finally. The worker and the
 * drain are the real ones (workers/persist/persist.ts, engine/outbox/drain.ts); only the drain's afterCommit is set.
 * Environment: REDIS_URL, DATABASE_URL, SCHEMA, NS, LEASE_MS.
 */
import { pino } from 'pino';
import { systemClock } from '../../engine/clock.js';
import { createEngine } from '../../engine/index.js';
import { createPersistWorker } from '../../workers/persist/persist.js';
import { TEST_ENGINE_CONFIG } from '../config.js';
import { env, ns, pg, redis } from './stores.js';

const engine = createEngine({ ns, redis, pg, clock: systemClock, config: TEST_ENGINE_CONFIG });
const drain = engine.outbox.drain;
engine.outbox.drain = (eventId, o) =>
  drain(eventId, {
    ...o,
    afterCommit: (r, entries) => {
      console.log(`committed ${r.applied} of ${entries.length}`); // stdout to a pipe is synchronous on Linux: it is out before the kill
      process.kill(process.pid, 'SIGKILL');
    },
  });
const worker = createPersistWorker({ engine, log: pino({ level: 'silent' }), leaseMs: Number(env('LEASE_MS')) });
await worker.drainOnce();
console.log('not killed');
process.exit(0);
