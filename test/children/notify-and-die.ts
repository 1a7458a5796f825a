/**
 * The notify worker (workers/processors.ts notifyProcessor on a BullMQ Worker) with the outbox mailer, killed with
 * SIGKILL right after the mailer accepted the message and before the delivery was recorded, as a crash would.
 * Environment: REDIS_URL, DATABASE_URL, SCHEMA, NS, OUTBOX_DIR, LOCK_MS (the job lock, and twice the stalled-check
 * interval: short, so the test's worker finds the job stalled soon).
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { systemClock } from '../../engine/clock.js';
import { createEngine } from '../../engine/index.js';
import type { Mailer } from '../../integrations/mail/mailer.js';
import { createOutboxMailer } from '../../integrations/mail/outbox.js';
import { notifyProcessor } from '../../workers/processors.js';
import { QUEUES } from '../../integrations/queues.js';
import { TEST_ENGINE_CONFIG } from '../config.js';
import { env, ns, pg, redis } from './stores.js';

const engine = createEngine({ ns, redis, pg, clock: systemClock, config: TEST_ENGINE_CONFIG });
const outbox = createOutboxMailer({ dir: env('OUTBOX_DIR') });
const mailer: Mailer = {
  name: 'outbox',
  async send(mail) {
    const r = await outbox.send(mail);
    console.log(`accepted ${r.messageId}`);
    process.kill(process.pid, 'SIGKILL');
    return r;
  },
};
const bull = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
new Worker(QUEUES.notify.name, notifyProcessor({ engine, log: pino({ level: 'silent' }), mailer, mailFrom: 'tickets@floodgate.test' }), {
  connection: bull, prefix: `${ns}:bull`, concurrency: 1, lockDuration: Number(env('LOCK_MS')),
  // the stalled check is rate-limited across workers by a key with this TTL: keep it short so the test's worker checks soon
  stalledInterval: Number(env('LOCK_MS')) / 2,
});
console.log('worker ready');
