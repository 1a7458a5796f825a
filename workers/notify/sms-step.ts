import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Booking } from '../../engine/booking/bookings-repo.js';
import type { Engine } from '../../engine/index.js';
import { formatStartsAt } from '../../engine/tickets/ticket-pdf.js';
import type { Metrics } from '../../platform/metrics.js';
import type { SmsSender } from '../../integrations/sms/sender.js';

export type SmsStepDeps = {
  engine: Engine;
  log: Logger;
  metrics?: Metrics | undefined;
  sms?: SmsSender | undefined;
  /** Where buyers reach Floodgate (PUBLIC_BASE_URL): the SMS links to the tickets under it. */
  publicUrl?: string | undefined;
};

export type SmsStepResult =
  | { skipped: string }
  | { sent: string; from?: 'receipt' }
  | { smsFailed: 'rejected' | 'failed'; code: string | null };

/** Longest event name an SMS spells out (the rest becomes "..."): the message stays about one GSM-7 segment. */
const MAX_EVENT_NAME = 40;

/**
 * The tickets SMS: short; the event, when it starts in the event's time zone, the booking reference and a link to
 * the tickets. Never a ticket code: an SMS is read on lock screens and kept by carriers.
 */
export function ticketsSms(o: { eventName: string; startsAt: string; timeZone?: string | undefined; bookingId: string; publicUrl: string }): string {
  const name = o.eventName.replace(/\s+/g, ' ').trim();
  const event = [...name].length > MAX_EVENT_NAME ? `${[...name].slice(0, MAX_EVENT_NAME - 3).join('').trimEnd()}...` : name;
  const link = `${o.publicUrl.replace(/\/+$/, '')}/api/bookings/${o.bookingId}/tickets.pdf`;
  return `${event}, ${formatStartsAt(o.startsAt, o.timeZone)}. Booking ${o.bookingId}. Tickets: ${link}`;
}

/**
 * notify, channel sms: the booking's SMS, at most once per booking by the same delivery claim as the e-mail
 * (deliveries, channel 'sms'), and recorded apart from the booking's state (sms_messages, engine.sms): the SMS never
 * holds TICKETS_DELIVERED back, and its failure never touches the e-mail (its own job).
 *
 * - Accepted: recorded with the transport's message id and status; delivery receipts move the status on later.
 * - A number the transport will never reach (Twilio 21211, 21614, 21610, 21408, ...): recorded `rejected` with the
 *   code, counted, and the job completes; it is never sent again.
 * - 429, 5xx, no answer: the claim is released and the job retried (BullMQ backoff; when the transport asked to wait
 *   longer than it waits itself, the job is delayed by what it asked). The last attempt records `failed`.
 * - A run that died after the transport took the message leaves a claim; a retry meanwhile fails ("in-flight"). The
 *   message's delivery receipt (status callback, with the booking id in its URL) records the message id, and the
 *   next run then records the delivery without sending. Without a receipt the claim is taken over after 10 minutes
 *   and the SMS sent again: Twilio has no idempotency key (README, "SMS").
 */
export async function sendTicketsSms(
  d: SmsStepDeps,
  job: Job,
  token: string | undefined,
  b: Booking,
  holder: { phone: string | null; confirmedAt: Date | null },
): Promise<SmsStepResult> {
  const { engine } = d;
  if (!d.sms || !holder.phone) return { skipped: 'no SMS for this booking' };
  const id = b.bookingId;
  const provider = d.sms.name;
  const before = await engine.sms.get(id);
  if (before && !before.messageSid && (before.status === 'rejected' || before.status === 'failed')) return { skipped: `sms ${before.status}` };
  const claim = await engine.tickets.claimDelivery(id, 'sms');
  if (claim === 'sent') return { skipped: 'already sent' };
  // a run died after the transport took the message, and its delivery receipt told us: record it, send nothing
  const known = before?.messageSid ? before : await engine.sms.get(id);
  if (known?.messageSid) {
    await engine.tickets.markDelivered(id, 'sms', known.messageSid);
    d.log.info({ jobId: job.id, bookingId: id, claim }, 'sms delivery recorded from its receipt');
    return { sent: known.messageSid, from: 'receipt' };
  }
  if (claim === 'in-flight') throw new Error(`delivery of sms for ${id} is claimed by another run; retrying later`);

  const event = (await engine.catalog.cached(b.eventId))!;
  const body = ticketsSms({ eventName: event.name, startsAt: event.startsAt, timeZone: event.timeZone, bookingId: id, publicUrl: d.publicUrl ?? 'http://127.0.0.1:3000' });
  let sent: { messageId: string; status?: string };
  try {
    sent = await d.sms.send({ to: holder.phone, body, idempotencyKey: `sms-${id}`, bookingId: id });
  } catch (err) {
    await engine.tickets.releaseClaim(id, 'sms');
    const e = err as { retryable?: unknown; code?: unknown; retryAfterMs?: unknown; message?: unknown };
    const code = typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : null;
    const message = typeof e.message === 'string' ? e.message : String(err);
    const attempts = job.opts?.attempts;
    const last = attempts !== undefined && job.attemptsMade + 1 >= attempts;
    if (e.retryable === false || last) {
      const outcome = e.retryable === false ? 'rejected' : 'failed';
      await engine.sms.failed(id, provider, outcome, code, message);
      d.metrics?.sms.inc({ outcome });
      d.metrics?.notifications.inc({ channel: 'sms', outcome: 'failed' });
      d.log.warn({ jobId: job.id, bookingId: id, code, outcome, err: { message } }, 'sms not sent');
      return { smsFailed: outcome, code };
    }
    d.metrics?.sms.inc({ outcome: 'retry' });
    d.metrics?.notifications.inc({ channel: 'sms', outcome: 'failed' });
    // the transport asked for a longer wait than BullMQ's backoff would give: wait what it asked (bounded: an
    // account throttled for good still runs out of attempts, as delays do not count as attempts)
    if (typeof e.retryAfterMs === 'number' && token && job.attemptsStarted <= (attempts ?? 1) * 2) {
      await job.moveToDelayed(Date.now() + e.retryAfterMs, token);
      throw new DelayedError(`sms for ${id}: the transport asked to wait ${e.retryAfterMs} ms`);
    }
    throw err;
  }
  await engine.sms.accepted(id, provider, sent.messageId, sent.status ?? 'sent');
  await engine.tickets.markDelivered(id, 'sms', sent.messageId);
  d.metrics?.sms.inc({ outcome: 'sent' });
  d.metrics?.notifications.inc({ channel: 'sms', outcome: 'sent' });
  if (holder.confirmedAt) d.metrics?.notificationDelay.observe({ channel: 'sms' }, (Date.now() - holder.confirmedAt.getTime()) / 1000);
  d.log.info({ jobId: job.id, bookingId: id, channel: 'sms' }, 'tickets sent');
  return { sent: sent.messageId };
}
