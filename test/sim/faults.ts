import type { BookingId } from '../../engine/ids.js';
import type { JobSink } from '../../engine/jobs.js';
import type { PaymentProvider } from '../../engine/payments/provider.js';
import type { Rng } from './prng.js';
import { QUEUES } from '../../integrations/queues.js';

/**
 * A process dying in the middle of an operation, simulated in-process: thrown right after the provider did the work
 * (authorized, captured, cancelled, refunded) and before the caller heard of it, or right before a call (fault
 * 'die-before': before capture is between the sale in Redis and the capture; before authorize, between the attempt's
 * row and the charge), as test/children/pay-and-die.ts does with SIGKILL. Nothing in the engine catches it, so
 * everything after that point is skipped, as in a crash.
 */
export class SimCrash extends Error {
  constructor(where: string) {
    super(`[sim] process crashed after ${where}`);
    this.name = 'SimCrash';
  }
}

/** The message of every provider answer the simulation makes up (so errors caused by it are recognised as expected). */
export const SIM_UNAVAILABLE = '[sim] payment provider did not answer';

/** The operation whose code is running now: a provider call may park it (an interleaving point) until a later step. */
export type OpContext = { park(resume: () => void): void };

export type FaultControl = {
  /** Faults and parking happen only while true (the final phase turns them off to let everything settle). */
  enabled: boolean;
  current: OpContext | null;
  /** How many operations are parked now, and the most allowed. */
  parked: number;
  maxParked: number;
};

export type Call = 'authorize' | 'capture' | 'cancel' | 'refund';
export type Fault = 'ok' | 'unavailable' | 'lost' | 'crash' | 'park' | 'die-before';

/** Per call: the chance of each fault. unavailable = nothing done, no answer; lost = done, answer lost; crash = done,
 *  then the caller dies; park = the call waits until a later step resumes it (other steps run meanwhile); die-before =
 *  the caller dies before the call (capture: after the sale in Redis; authorize: after the attempt's row). */
const RATES: Record<Call, Partial<Record<Exclude<Fault, 'ok'>, number>>> = {
  authorize: { unavailable: 0.06, lost: 0.06, crash: 0.06, park: 0.12, 'die-before': 0.03 },
  capture: { unavailable: 0.08, lost: 0.06, crash: 0.06, park: 0.08, 'die-before': 0.05 },
  cancel: { unavailable: 0.08, lost: 0.04, crash: 0.05 },
  refund: { unavailable: 0.08, lost: 0.04, crash: 0.05 },
};

export type AuthorizedRef = { bookingId: BookingId; attempt: number; ref: string };

/**
 * Wraps the real simulated provider so the seed decides, call by call, whether it answers, stays silent (before or
 * after doing the work), kills the caller right after the work, or holds the caller back while other steps run.
 */
export function faultyProvider(
  real: PaymentProvider,
  rng: Rng,
  ctl: FaultControl,
  o: {
    onFault: (call: Call, fault: Fault) => void;
    authorized: AuthorizedRef[];
    /** Restricts the faults of some calls (e.g. to steer around a known bug). */
    only?: Partial<Record<Call, Fault[]>>;
  },
): PaymentProvider {
  const roll = (call: Call): Fault => {
    if (!ctl.enabled) return 'ok';
    let r = rng.next();
    for (const [fault, p] of Object.entries(RATES[call]) as [Exclude<Fault, 'ok'>, number][]) {
      if (r < p) {
        if (o.only?.[call] && !o.only[call].includes(fault)) return 'ok';
        if (fault === 'park' && (!ctl.current || ctl.parked >= ctl.maxParked)) return 'ok';
        return fault;
      }
      r -= p;
    }
    return 'ok';
  };
  async function run<R>(call: Call, doIt: () => Promise<R>, unavailable: () => R): Promise<R> {
    const fault = roll(call);
    if (fault !== 'ok') o.onFault(call, fault);
    switch (fault) {
      case 'unavailable':
        return unavailable();
      case 'park': {
        const ctx = ctl.current!;
        ctl.parked++;
        await new Promise<void>((resume) => ctx.park(resume));
        ctl.parked--;
        return doIt();
      }
      case 'lost':
        await doIt();
        return unavailable();
      case 'crash':
        await doIt();
        throw new SimCrash(call);
      case 'die-before':
        throw new SimCrash(`the step before ${call}`);
      case 'ok':
        return doIt();
    }
  }
  const silent = () => ({ outcome: 'unavailable' as const, message: SIM_UNAVAILABLE });
  return {
    name: real.name,
    authorize: (input) =>
      run(
        'authorize',
        async () => {
          const r = await real.authorize(input);
          if (r.outcome === 'authorized') o.authorized.push({ bookingId: input.bookingId as BookingId, attempt: input.attempt, ref: r.paymentRef });
          return r;
        },
        silent,
      ),
    capture: (ref, key) => run('capture', () => real.capture(ref, key), silent),
    cancel: (ref, key) => run('cancel', () => real.cancel(ref, key), silent),
    refund: (ref, key, amount) => run('refund', () => real.refund(ref, key, amount), silent),
  };
}

export type SimJob = {
  id: string;
  kind: 'settle' | 'refund' | 'deliver';
  bookingId: BookingId;
  attempt: number;
  dueAt: number;
  state: 'waiting' | 'active' | 'completed' | 'failed';
  attemptsMade: number;
  runs: number;
};

/**
 * The job queues as BullMQ keeps them (integrations/queues.ts): one job per job id, and asking again for an id that exists
 * (waiting, delayed, active, or kept after completing or failing) adds nothing; a delayed job runs no earlier than its
 * delay. The simulator runs the jobs (see runJob/finishJob there: retries with exponential backoff up to the queue's
 * attempts, a job whose worker died runs again). Delivery jobs are only recorded (no e-mails are sent here).
 */
export function jobModel(now: () => number) {
  const jobs = new Map<string, SimJob>();
  let rebuilds = 0;
  const add = (id: string, kind: SimJob['kind'], bookingId: BookingId, attempt: number, delayMs: number) => {
    if (jobs.has(id)) return;
    jobs.set(id, { id, kind, bookingId, attempt, dueAt: now() + delayMs, state: 'waiting', attemptsMade: 0, runs: 0 });
  };
  const sink: JobSink = {
    async settlePayment(bookingId, attempt, delayMs, followUp) {
      // the BullMQ adapter's ids (a follow-up is a job of its own), with a counter for the rebuild nonce: no clock here
      add(QUEUES.payment.jobId({ bookingId, attempt }, followUp, ++rebuilds), 'settle', bookingId, attempt, delayMs);
    },
    async deliverTickets(bookingId) {
      add(`email-${bookingId}`, 'deliver', bookingId, 0, 0);
    },
    async refund(bookingId) {
      add(`refund-${bookingId}`, 'refund', bookingId, 0, 0);
    },
  };
  return {
    sink,
    jobs,
    /** Jobs a worker could pick up (settle and refund), in the order they were added. */
    waiting: () => [...jobs.values()].filter((j) => j.state === 'waiting' && j.kind !== 'deliver'),
    /** Bookings with work still queued or running: their money may be between two steps. */
    busyBookings: () => new Set([...jobs.values()].filter((j) => (j.state === 'waiting' || j.state === 'active') && j.kind !== 'deliver').map((j) => j.bookingId as string)),
  };
}
export type JobModel = ReturnType<typeof jobModel>;
