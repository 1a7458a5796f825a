import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from '../test/fixtures.js';
import { TEST_REDIS_URL } from '../test/env.js';
import { waitFor } from '../test/wait.js';
import type { BookingId } from '../engine/ids.js';
import { createJobSink, QUEUES } from './queues.js';

const booking = 'bk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbb' as BookingId;

describe('the settle jobs on BullMQ', () => {
  it('one job per attempt; a capture follow-up is due in seconds even while that job waits out the payment window', async ({ ns, onTestFinished }) => {
    const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const sink = createJobSink(bull, `${ns}:bull`, { sms: false });
    onTestFinished(async () => {
      await sink.close();
      bull.disconnect();
    });
    const before = Date.now();
    await sink.settlePayment(booking, 1, 125_000);
    await sink.settlePayment(booking, 1, 125_000); // asked twice (a retried request): one job
    expect(await sink.queues.payment.getDelayedCount()).toBe(1);
    await sink.settlePayment(booking, 1, 5_000, 'capture');
    await sink.settlePayment(booking, 1, 5_000, 'capture'); // one capture follow-up per attempt
    const delayed = await sink.queues.payment.getDelayed();
    expect(delayed.map((j) => j.id).sort()).toEqual([`settle-${booking}-a1`, `settle-${booking}-a1-capture`]);
    const due = (id: string) => { const j = delayed.find((x) => x.id === id)!; return j.timestamp + j.opts.delay!; };
    expect(due(`settle-${booking}-a1-capture`)).toBeLessThanOrEqual(Date.now() + 5_000);
    expect(due(`settle-${booking}-a1`)).toBeGreaterThanOrEqual(before + 125_000);
    expect(delayed.every((j) => QUEUES.payment.data.safeParse(j.data).success)).toBe(true);
  });

  it('a rebuild follow-up runs now, also after the attempt\'s own settle job has completed', async ({ ns, onTestFinished }) => {
    const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const sink = createJobSink(bull, `${ns}:bull`, { sms: false });
    const runs: string[] = [];
    const worker = new Worker(QUEUES.payment.name, async (job) => void runs.push(job.id!), { connection: bull, prefix: `${ns}:bull` });
    onTestFinished(async () => {
      await worker.close();
      await sink.close();
      bull.disconnect();
    });
    await sink.settlePayment(booking, 2, 0);
    await waitFor('the settle job ran', () => runs.length === 1);
    await sink.settlePayment(booking, 2, 0); // completed and kept: asking again for the attempt's own job is a no-op
    await sink.settlePayment(booking, 2, 0, 'rebuild');
    await waitFor('the rebuild follow-up ran', () => runs.length === 2);
    expect(runs[1]).toMatch(new RegExp(`^settle-${booking}-a2-rebuild-\\d+$`));
    await sink.settlePayment(booking, 2, 0, 'rebuild'); // a second rebuild later: its own job again
    await waitFor('the second rebuild follow-up ran', () => runs.length === 3);
    expect(new Set(runs).size).toBe(3);
  });
});
