/**
 * The notify worker (workers/processors.ts notifyProcessor on a BullMQ Worker) with the Twilio transport pointed at a
 * local double, killed with SIGKILL right after Twilio accepted the SMS and before the send was recorded, as a crash
 * would. The e-mail goes to an outbox folder as usual.
 * Environment: REDIS_URL, DATABASE_URL, SCHEMA, NS, BULL_PREFIX (default <NS>:bull), OUTBOX_DIR, LOCK_MS (the job lock, and twice the stalled-check
 * interval), TWILIO_API_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_STATUS_CALLBACK_URL.
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { systemClock } from '../../engine/clock.js';
import { createEngine } from '../../engine/index.js';
import { createOutboxMailer } from '../../integrations/mail/outbox.js';
import type { SmsSender } from '../../integrations/sms/sender.js';
import { createTwilioSms } from '../../integrations/sms/twilio.js';
import { notifyProcessor } from '../../workers/processors.js';
import { QUEUES } from '../../integrations/queues.js';
import { TEST_ENGINE_CONFIG } from '../config.js';
import { env, ns, pg, redis } from './stores.js';

const engine = createEngine({ ns, redis, pg, clock: systemClock, config: TEST_ENGINE_CONFIG });
const twilio = createTwilioSms({
  accountSid: env('TWILIO_ACCOUNT_SID'), authToken: env('TWILIO_AUTH_TOKEN'), from: '+15005550006',
  apiUrl: env('TWILIO_API_URL'), statusCallbackUrl: env('TWILIO_STATUS_CALLBACK_URL'),
});
const sms: SmsSender = {
  name: 'twilio',
  async send(m) {
    const r = await twilio.send(m);
    console.log(`accepted ${r.messageId}`);
    process.kill(process.pid, 'SIGKILL');
    return r;
  },
};
const bull = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
new Worker(
  QUEUES.notify.name,
  notifyProcessor({ engine, log: pino({ level: 'silent' }), mailer: createOutboxMailer({ dir: env('OUTBOX_DIR') }), sms, mailFrom: 'tickets@floodgate.test' }),
  { connection: bull, prefix: process.env.BULL_PREFIX ?? `${ns}:bull`, concurrency: 1, lockDuration: Number(env('LOCK_MS')), stalledInterval: Number(env('LOCK_MS')) / 2 },
);
console.log('worker ready');
