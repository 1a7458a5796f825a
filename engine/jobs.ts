import type { BookingId } from './ids.js';

/**
 * Background work the engine asks for, without knowing the queue behind it (BullMQ in api/ and workers/). Each job is
 * safe to run twice and keyed so that asking twice makes one job.
 */
export type SettleFollowUp = 'capture' | 'rebuild';

export type JobSink = {
  /**
   * Finish (or give up) a payment attempt if the request that started it did not: the durable intent of a charge.
   * Without `followUp` this is the attempt's one settle job (asked for when the attempt starts, due after the payment
   * window). A follow-up is a job of its own, due after `delayMs` even while that first job waits: `capture` (one per
   * attempt: the provider did not answer a capture; the job retries until it does), `rebuild` (one per call: the
   * Redis rebuild changed the attempt and it must be finished now, even if its settle job ran long ago).
   */
  settlePayment(bookingId: BookingId, attempt: number, delayMs: number, followUp?: SettleFollowUp): Promise<void>;
  /** Send the tickets of a confirmed booking (e-mail, and SMS when enabled), each channel retried on its own. */
  deliverTickets(bookingId: BookingId): Promise<void>;
  /** Give an approved refund's money back and return its seats to stock. */
  refund(bookingId: BookingId): Promise<void>;
};

/** For code paths and tests that run the work inline. */
export const NO_JOBS: JobSink = { settlePayment: async () => {}, deliverTickets: async () => {}, refund: async () => {} };
