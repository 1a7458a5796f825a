import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Engine } from '../../engine/index.js';
import type { Metrics } from '../../platform/metrics.js';
import { SWEEPER_QUEUE } from '../../integrations/queues.js';

/** Expires every due hold of every armed event; each expiry is re-checked inside its script. */
export async function sweepAll(engine: Engine): Promise<number> {
  let expired = 0;
  for (const eventId of await engine.inventory.armedEvents()) expired += await engine.holds.sweep(eventId);
  return expired;
}

export type SweeperOptions = {
  engine: Engine;
  connection: ConnectionOptions;
  prefix: string;
  intervalMs: number;
  log: Logger;
  metrics?: Metrics;
};

/**
 * The sweeper as a BullMQ job scheduler: one "sweep" job every intervalMs across all worker processes
 * (BullMQ hands each run to one worker). Running two sweepers at once is still safe: expireHold re-checks.
 */
export async function startSweeper(o: SweeperOptions) {
  const queue = new Queue(SWEEPER_QUEUE, { connection: o.connection, prefix: o.prefix });
  await queue.upsertJobScheduler(
    'sweep-holds',
    { every: o.intervalMs },
    { name: 'sweep', opts: { removeOnComplete: 100, removeOnFail: 100 } },
  );
  const worker = new Worker(
    SWEEPER_QUEUE,
    async (job) => {
      const expired = await sweepAll(o.engine);
      if (expired > 0) {
        o.metrics?.holdsExpired.inc(expired);
        o.log.info({ jobId: job.id, expired }, 'expired holds released');
      }
      return { expired };
    },
    { connection: o.connection, prefix: o.prefix, concurrency: 1 },
  );
  // errors start at 0: a panel or rate() sees a series (0 errors) from the start, not "no data"
  o.metrics?.workerErrors.inc({ worker: 'sweeper' }, 0);
  worker.on('failed', (job, err) => {
    o.metrics?.workerErrors.inc({ worker: 'sweeper' });
    o.log.warn({ jobId: job?.id, err: { message: err.message } }, 'sweep failed; the next run retries');
  });
  return {
    queue,
    worker,
    async stop() {
      await worker.close();
      await queue.close();
    },
  };
}
