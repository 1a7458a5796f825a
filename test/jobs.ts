import type { BookingId } from '../engine/ids.js';
import type { JobSink, SettleFollowUp } from '../engine/jobs.js';

/** A JobSink that records what the engine asked for, so a test can run each job when it chooses (or twice). */
export function recordingJobs() {
  const settle: { bookingId: BookingId; attempt: number; delayMs: number; followUp?: SettleFollowUp }[] = [];
  const deliver: BookingId[] = [];
  const refund: BookingId[] = [];
  const sink: JobSink = {
    async settlePayment(bookingId, attempt, delayMs, followUp) {
      settle.push({ bookingId, attempt, delayMs, ...(followUp ? { followUp } : {}) });
    },
    async deliverTickets(bookingId) {
      deliver.push(bookingId);
    },
    async refund(bookingId) {
      refund.push(bookingId);
    },
  };
  return { sink, settle, deliver, refund, clear: () => void (settle.length = deliver.length = refund.length = 0) };
}
export type RecordingJobs = ReturnType<typeof recordingJobs>;
