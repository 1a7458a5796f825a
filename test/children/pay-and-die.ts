/**
 * A process that pays a booking and is killed with SIGKILL at a chosen step, as a crash would: no cleanup, no finally.
 * DIE_AFTER=authorize: the provider authorized, the seats are not sold yet; confirm: the seats are sold in Redis
 * (confirmHold), the capture not asked for yet; capture: the provider captured, nothing recorded after it. Used by the crash tests; everything it needs comes from the environment.
 */
import { Redis } from 'ioredis';
import { fakeClock } from '../../engine/clock.js';
import type { BookingId, UserId } from '../../engine/ids.js';
import { createEngine } from '../../engine/index.js';
import type { PaymentProvider } from '../../engine/payments/provider.js';
import { createSimulatedProvider } from '../../integrations/payments/simulated.js';
import { createJobSink } from '../../integrations/queues.js';
import { TEST_ENGINE_CONFIG } from '../config.js';
import { env, ns, pg, redis } from './stores.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';

const bull = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
const real = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
const dieAfter = env('DIE_AFTER');
const die = () => process.kill(process.pid, 'SIGKILL');
const provider: PaymentProvider = {
  ...real,
  authorize: async (i) => {
    const r = await real.authorize(i);
    if (dieAfter === 'authorize') die();
    return r;
  },
  capture: async (ref, key) => {
    if (dieAfter === 'confirm') die();
    const r = await real.capture(ref, key);
    if (dieAfter === 'capture') die();
    return r;
  },
};
const clock = fakeClock(Number(env('NOW')));
const engine = createEngine({ ns, redis, pg, clock, provider, config: { ...TEST_ENGINE_CONFIG, paymentWindowMs: 1000 }, jobs: createJobSink(bull, `${ns}:bull`, { sms: false }) });
await engine.payments.pay({ bookingId: env('BOOKING_ID') as BookingId, userId: env('USER_ID') as UserId, paymentMethodId: 'pm_card_visa' });
console.log('not killed');
process.exit(0);
