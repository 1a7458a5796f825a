import type { EventId } from '../../engine/ids.js';
import type { OutboxEntry } from '../../engine/outbox/outbox.js';
import { loseARelease } from './bugs.js';
import { runOp } from './calls.js';
import { bump, label, type Settled, type Sim } from './context.js';
import { SimCrash, type SimJob } from './faults.js';

/**
 * The workers, run in-process by the steps: the settle and refund jobs (with BullMQ's retries and stalls) and the
 * persist worker draining an event's outbox into Postgres.
 */

export type PersistMode = 'ok' | 'no-ack' | 'read-only';

/** Runs a waiting job (a provider call may park it); `stallAfter`: its worker dies after the work, before completing. */
export function runJob(sim: Sim, job: SimJob, stallAfter: boolean) {
  job.state = 'active';
  job.runs++;
  const name = `${job.kind} job ${label(sim, job.bookingId)}${job.kind === 'settle' ? ` a${job.attempt}` : ''}`;
  const work = job.kind === 'settle' ? () => sim.engine.payments.settle(job.bookingId, job.attempt) : () => sim.engine.refunds.process(job.bookingId);
  return runOp(sim, name, job.bookingId, work, (s) => finishJob(sim, job, s, stallAfter));
}

/** BullMQ's bookkeeping (integrations/queues.ts: 30 attempts, exponential backoff from 2 s; a job whose worker died runs
 *  again once the stall is noticed, ~30 s). */
function finishJob(sim: Sim, job: SimJob, s: Settled, stallAfter: boolean) {
  const isCrash = !s.ok && s.error instanceof SimCrash;
  if (s.ok && !stallAfter) job.state = 'completed';
  else if (s.ok || isCrash) {
    job.state = 'waiting';
    job.dueAt = sim.clock.now() + 30_000;
  } else {
    job.attemptsMade++;
    job.state = job.attemptsMade >= 30 ? 'failed' : 'waiting';
    job.dueAt = sim.clock.now() + 2_000 * 2 ** (job.attemptsMade - 1);
  }
}

/** What the persist worker does with holds Postgres refused: release them in Redis (workers/persist/persist.ts). */
async function releaseRefused(sim: Sim, refused: OutboxEntry[]) {
  for (const e of refused) {
    await sim.engine.holds
      .release(e.eventId, e.bookingId, { system: 'BookingFailed', reason: 'refused by the system of record', states: ['held'] })
      .catch((err: unknown) => {
        if ((err as { code?: string }).code !== 'BOOKING_NOT_FOUND') throw err;
      });
  }
}

/** Applies outbox entries to Postgres as the persist worker does; a refusal of what Redis granted is a violation. */
async function apply(sim: Sim, entries: OutboxEntry[]) {
  const r = await sim.engine.applyOutbox(entries, (refused) => releaseRefused(sim, refused));
  for (const e of r.refused) sim.unexpected.push(`postgres refused ${e.type} of ${label(sim, e.bookingId)} that Redis granted`);
  for (const a of r.anomalies) bump(sim, `anomaly ${a.entry.type}: ${a.problem}`);
  return r;
}

/** One pass of the persist worker over an event's outbox; its worker may die before applying or before acking. */
export async function persist(sim: Sim, eventId: EventId, batch: number, mode: PersistMode): Promise<string> {
  const entries = await sim.engine.outbox.read(eventId, batch);
  if (entries.length === 0) return 'nothing to apply';
  if (mode === 'read-only') return `read ${entries.length}, worker died before applying`;
  const r = await apply(sim, sim.o.bug === 'lossy-persist' && mode === 'ok' ? loseARelease(entries) : entries);
  if (mode === 'no-ack') return `applied ${r.applied} (dup ${r.duplicates}), worker died before acking`;
  await sim.engine.outbox.ack(eventId, entries.map((e) => e.id));
  return `applied ${r.applied} (dup ${r.duplicates}) acked ${entries.length}`;
}

/** Applies an event's whole outbox as the persist worker does (refused holds released in Redis). */
export async function drainEvent(sim: Sim, eventId: EventId) {
  for (;;) {
    const entries = await sim.engine.outbox.read(eventId, 500);
    if (entries.length === 0) return;
    await apply(sim, entries);
    await sim.engine.outbox.ack(eventId, entries.map((e) => e.id));
  }
}

/**
 * The persist worker runs all the time and is usually milliseconds behind: before a payment step it has caught up
 * with the event four times in five; otherwise the step meets Postgres behind Redis (a payment of a fresh hold goes
 * on from the hold in Redis, and its attempt row lands ahead of the booking's outbox entries).
 */
export async function caughtUp(sim: Sim, eventId: EventId) {
  if (sim.progress.chance(0.8)) await drainEvent(sim, eventId);
}
