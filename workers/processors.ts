import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Engine } from '../engine/index.js';
import { formatStartsAt } from '../engine/tickets/ticket-pdf.js';
import type { BookingId } from '../engine/ids.js';
import type { TicketPdfPool } from '../engine/tickets/ticket-pdf-pool.js';
import type { Metrics } from '../platform/metrics.js';
import type { Mailer } from '../integrations/mail/mailer.js';
import type { SmsSender } from '../integrations/sms/sender.js';
import { QUEUES, type QueueName } from '../integrations/queues.js';
import { sendTicketsSms } from './notify/sms-step.js';

export type ProcessorDeps = {
  engine: Engine;
  log: Logger;
  metrics?: Metrics;
  mailer: Mailer;
  sms?: SmsSender | undefined;
  mailFrom: string;
  /** Where buyers reach Floodgate (PUBLIC_BASE_URL): the SMS links to the tickets under it. */
  publicUrl?: string;
  /** Where ticket PDFs are drawn (a `createTicketPdfPool`); default: in this thread. */
  renderPdf?: TicketPdfPool['render'];
};

/** payment: finish (or give up on) an attempt its request left open. Idempotent: every step is keyed or guarded. */
export const paymentProcessor = (d: ProcessorDeps) => async (job: Job) => {
  const { bookingId, attempt } = QUEUES.payment.data.parse(job.data);
  const r = await d.engine.payments.settle(bookingId as BookingId, attempt);
  if (r.outcome === 'succeeded') d.log.info({ jobId: job.id, bookingId, attempt }, 'payment settled');
  return r;
};

/**
 * refund: money back, seats back, booking REFUNDED; then the buyer's e-mail that says so. The e-mail has its own
 * delivery claim ('refund-email'), so a job that runs again (after a crash between the refund and the send, or twice)
 * sends it once.
 */
export const refundProcessor = (d: ProcessorDeps) => async (job: Job) => {
  const { bookingId } = QUEUES.refund.data.parse(job.data);
  const r = await d.engine.refunds.process(bookingId as BookingId);
  if (r === 'refunded') d.metrics?.refunds.inc({ outcome: 'refunded' });
  const mail = await sendRefundMail(d, bookingId as BookingId);
  return { result: r, mail };
};

/** "Hello Anna," — or "Hello," when the buyer gave no name. */
const greeting = (name: string | null) => (name?.trim() ? `Hello ${name.trim()},` : 'Hello,');

/** An amount in minor units as people read it: `EUR 90.00`, `JPY 9,000`. */
export function formatAmount(minor: number, currency: string): string {
  const f = new Intl.NumberFormat('en-GB', { style: 'currency', currency, currencyDisplay: 'code' });
  return f.format(minor / 10 ** (f.resolvedOptions().maximumFractionDigits ?? 2)).replace(/\u00a0/g, ' ');
}

/**
 * Sends the refund confirmation of a refunded booking, once. Refunded: the money record says so (the refund job's own
 * write); the booking becomes REFUNDED a moment later, when the persist worker applies BookingRefunded.
 */
async function sendRefundMail(d: ProcessorDeps, id: BookingId): Promise<'sent' | 'already sent' | 'not refunded'> {
  const { engine } = d;
  const b = await engine.bookings.recorded(id);
  if (!b || (b.status !== 'REFUNDED' && (await engine.refunds.status(id)) !== 'refunded')) return 'not refunded';
  const claim = await engine.tickets.claimDelivery(id, 'refund-email');
  if (claim === 'sent') return 'already sent';
  if (claim === 'in-flight') throw new Error(`the refund e-mail of ${id} is claimed by another run; retrying later`);
  const holder = (await engine.bookings.holder(id))!;
  const event = (await engine.catalog.cached(b.eventId))!;
  let messageId: string;
  try {
    ({ messageId } = await d.mailer.send({
      to: holder.email ?? `${b.userId}@users.floodgate.invalid`,
      from: d.mailFrom,
      subject: `Refund for ${event.name}`.replace(/[\r\n]+/g, ' '),
      text:
        `${greeting(holder.name)}\n\nyour booking ${b.bookingId} for ${event.name} at ${event.venue}, ` +
        `${formatStartsAt(event.startsAt, event.timeZone)}, has been refunded: ${formatAmount(b.amount, b.currency)} goes back to the ` +
        `card you paid with. Its ${b.ticketCount} ticket(s) are no longer valid.\n`,
      attachments: [],
      idempotencyKey: `refund-${b.bookingId}`,
    }));
  } catch (err) {
    await engine.tickets.releaseClaim(id, 'refund-email');
    d.metrics?.notifications.inc({ channel: 'email', outcome: 'failed' });
    if ((err as { retryable?: boolean }).retryable === false) throw new UnrecoverableError((err as Error).message);
    throw err;
  }
  await engine.tickets.markDelivered(id, 'refund-email', messageId);
  d.metrics?.notifications.inc({ channel: 'email', outcome: 'sent' });
  d.log.info({ bookingId: id }, 'refund e-mail sent');
  return 'sent';
}

/**
 * notify: one channel of one booking. The delivery claim makes a job that runs twice send once; the transport is
 * told the booking's key too (the outbox folder dedupes on it). When the e-mail has gone out: TICKETS_DELIVERED (the
 * SMS is recorded apart and never holds it back: workers/notify/sms-step.ts).
 */
export const notifyProcessor = (d: ProcessorDeps) => async (job: Job, token?: string) => {
  const { bookingId, channel } = QUEUES.notify.data.parse(job.data);
  const id = bookingId as BookingId;
  const { engine } = d;
  const b = await engine.bookings.recorded(id);
  if (!b) return { skipped: 'unknown booking' };
  if (b.status !== 'CONFIRMED' && b.status !== 'TICKETS_DELIVERED') {
    // paid, but the record is not CONFIRMED yet (a sale after a re-take is recorded by the persist worker, in outbox
    // order): wait for it (the job retries with backoff); anything else (refunded, cancelled) is not delivered
    const paid = (await engine.payments.attempts(id)).some((a) => a.status === 'captured' || a.status === 'authorized');
    if (paid && ['RESERVED', 'PAYMENT_PENDING', 'PAYMENT_FAILED', 'EXPIRED'].includes(b.status)) {
      throw new Error(`booking ${bookingId} is paid but recorded ${b.status} so far; waiting for the record`);
    }
    return { skipped: b.status };
  }
  const holder = (await engine.bookings.holder(id))!;
  if (channel === 'sms') return sendTicketsSms(d, job, token, b, holder);
  const required: 'email'[] = ['email'];
  const claim = await engine.tickets.claimDelivery(id, channel);
  if (claim === 'sent') {
    await engine.tickets.markTicketsDelivered(id, required);
    return { skipped: 'already sent' };
  }
  if (claim === 'in-flight') {
    // another run claimed it and has not recorded the send: it is sending now, or died after the transport took the
    // message. Retry later (backoff); after 10 minutes the claim is taken over and the message sent with the same
    // idempotency key (the outbox transport dedupes it; SendGrid has no such key, so there it could go out twice).
    throw new Error(`delivery of ${channel} for ${bookingId} is claimed by another run; retrying later`);
  }
  let messageId: string;
  try {
    const pdf = await engine.tickets.render(b, holder.name, d.renderPdf);
    const event = (await engine.catalog.cached(b.eventId))!;
    const to = holder.email ?? `${b.userId}@users.floodgate.invalid`;
    const seats = b.seats.length ? ` (${b.seats.join(', ')})` : '';
    ({ messageId } = await d.mailer.send({
      to,
      from: d.mailFrom,
      subject: `Your tickets for ${event.name}`.replace(/[\r\n]+/g, ' '),
      text:
        `${greeting(holder.name)}\n\nyour ${b.ticketCount} ticket(s)${seats} for ${event.name} at ${event.venue}, ` +
        `${formatStartsAt(event.startsAt, event.timeZone)}, ` +
        `are attached. Show the QR code of each ticket at the gate.\n\nBooking ${b.bookingId}\n`,
      attachments: [{ filename: `tickets-${b.bookingId}.pdf`, contentType: 'application/pdf', content: pdf }],
      idempotencyKey: `tickets-${b.bookingId}`,
    }));
  } catch (err) {
    await engine.tickets.releaseClaim(id, channel);
    d.metrics?.notifications.inc({ channel, outcome: 'failed' });
    if ((err as { retryable?: boolean }).retryable === false) throw new UnrecoverableError((err as Error).message);
    throw err;
  }
  // the e-mail is the one channel TICKETS_DELIVERED waits for: recorded sent and the booking moved in one statement
  await engine.tickets.markDelivered(id, channel, messageId, { ticketsDelivered: true });
  d.metrics?.notifications.inc({ channel, outcome: 'sent' });
  if (holder.confirmedAt) d.metrics?.notificationDelay.observe({ channel }, (Date.now() - holder.confirmedAt.getTime()) / 1000);
  d.log.info({ jobId: job.id, bookingId, channel }, 'tickets sent');
  return { sent: messageId };
};

/** Starts the BullMQ workers for the given queues; counts stalled jobs and failures. */
/** Jobs one worker process runs at once per queue. notify: mostly waiting on Postgres and the mail transport. */
export const DEFAULT_CONCURRENCY = { payment: 16, notify: 8, refund: 16 } as const satisfies Record<QueueName, number>;

export function startJobWorkers(
  d: ProcessorDeps,
  connection: ConnectionOptions,
  prefix: string,
  which: QueueName[],
  o: { stalledIntervalMs?: number; concurrency?: Partial<Record<QueueName, number>> } = {},
) {
  const processors = { payment: paymentProcessor(d), notify: notifyProcessor(d), refund: refundProcessor(d) };
  const workers = which.map((q) => {
    const w = new Worker(QUEUES[q].name, processors[q], {
      connection, prefix, concurrency: o.concurrency?.[q] ?? DEFAULT_CONCURRENCY[q], ...(o.stalledIntervalMs ? { stalledInterval: o.stalledIntervalMs } : {}),
      // a money job whose worker died is run again (every step is keyed or guarded), not failed for good after one stall
      maxStalledCount: q === 'notify' ? 1 : 10,
    });
    // both start at 0: a panel or rate() sees a series from the start, not "no data"
    d.metrics?.jobsStalled.inc({ queue: q }, 0);
    d.metrics?.workerErrors.inc({ worker: q }, 0);
    if (q === 'notify') for (const outcome of ['sent', 'retry', 'rejected', 'failed'] as const) d.metrics?.sms.inc({ outcome }, 0);
    w.on('stalled', () => d.metrics?.jobsStalled.inc({ queue: q }));
    w.on('failed', (job, err) => {
      d.metrics?.workerErrors.inc({ worker: q });
      d.log.warn({ queue: q, jobId: job?.id, attemptsMade: job?.attemptsMade, err: { message: err.message } }, 'job failed');
    });
    return w;
  });
  return { workers, stop: () => Promise.all(workers.map((w) => w.close())) };
}
