import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { z } from 'zod';
import type { BookingId } from '../engine/ids.js';
import type { JobSink, SettleFollowUp } from '../engine/jobs.js';

const BookingIdSchema = z.string().regex(/^bk_[a-z0-9]{12}_[a-z0-9]{16}$/);

/**
 * Every BullMQ queue: name ({...} gives each its own Redis Cluster slot), job data schema, job id (asking twice makes
 * one job while it exists; ids avoid ':'), options. Job data holds ids only: no personal data, no secrets.
 */
export const QUEUES = {
  payment: {
    name: '{payment}',
    data: z.object({ bookingId: BookingIdSchema, attempt: z.number().int().positive() }),
    /** A rebuild follow-up is one job per call: `nonce` (default the time) tells them apart. */
    jobId: (d: { bookingId: string; attempt: number }, followUp?: SettleFollowUp, nonce: number = Date.now()) =>
      `settle-${d.bookingId}-a${d.attempt}${followUp === 'capture' ? '-capture' : followUp === 'rebuild' ? `-rebuild-${nonce}` : ''}`,
    opts: { attempts: 30, backoff: { type: 'exponential', delay: 2_000 }, removeOnComplete: 1000, removeOnFail: 5000 } satisfies JobsOptions,
  },
  notify: {
    name: '{notify}',
    data: z.object({ bookingId: BookingIdSchema, channel: z.enum(['email', 'sms']) }),
    jobId: (d: { bookingId: string; channel: string }) => `${d.channel}-${d.bookingId}`,
    opts: { attempts: 10, backoff: { type: 'exponential', delay: 1_000 }, removeOnComplete: 1000, removeOnFail: 5000 } satisfies JobsOptions,
  },
  refund: {
    name: '{refund}',
    data: z.object({ bookingId: BookingIdSchema }),
    jobId: (d: { bookingId: string }) => `refund-${d.bookingId}`,
    opts: { attempts: 30, backoff: { type: 'exponential', delay: 2_000 }, removeOnComplete: 1000, removeOnFail: 5000 } satisfies JobsOptions,
  },
} as const;
export type QueueName = keyof typeof QUEUES;

/** The sweeper's BullMQ queue (a job scheduler: workers/sweeper/sweeper.ts); the API shows it on /admin/queues. */
export const SWEEPER_QUEUE = '{sweeper}';

/** The engine's JobSink on BullMQ queues (used by the API and the workers alike). */
export function createJobSink(connection: ConnectionOptions, prefix: string, o: { sms: boolean }): JobSink & { queues: Record<QueueName, Queue>; close(): Promise<void> } {
  const queues = {
    payment: new Queue(QUEUES.payment.name, { connection, prefix }),
    notify: new Queue(QUEUES.notify.name, { connection, prefix }),
    refund: new Queue(QUEUES.refund.name, { connection, prefix }),
  };
  return {
    queues,
    async settlePayment(bookingId: BookingId, attempt: number, delayMs: number, followUp?: SettleFollowUp) {
      const data = { bookingId, attempt };
      // a follow-up has an id of its own: under the attempt's id BullMQ would keep the first job (due after the payment
      // window) and drop this one, so a capture the provider did not answer would wait minutes instead of seconds
      await queues.payment.add('settle', data, { ...QUEUES.payment.opts, jobId: QUEUES.payment.jobId(data, followUp), delay: delayMs });
    },
    async deliverTickets(bookingId: BookingId) {
      for (const channel of o.sms ? (['email', 'sms'] as const) : (['email'] as const)) {
        const data = { bookingId, channel };
        await queues.notify.add(channel, data, { ...QUEUES.notify.opts, jobId: QUEUES.notify.jobId(data) });
      }
    },
    async refund(bookingId: BookingId) {
      const data = { bookingId };
      await queues.refund.add('refund', data, { ...QUEUES.refund.opts, jobId: QUEUES.refund.jobId(data) });
    },
    async close() {
      await Promise.all(Object.values(queues).map((q) => q.close()));
    },
  };
}
