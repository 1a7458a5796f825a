import { isDomainError } from '../../engine/errors.js';
import { bump, label, type Parked, type Settled, type Sim } from './context.js';
import { SimCrash } from './faults.js';

/**
 * How a step calls the engine: an operation runs until it settles, or until a provider call parks it (test/sim/faults.ts);
 * a parked operation is finished by a later step (resumeOp), so other steps interleave with it. outcome() turns what
 * an operation settled with into the trace's short, seed-stable text, and records unexpected errors.
 */

/** Runs one operation; a provider call may park it (then it finishes in a later step). */
export async function runOp(sim: Sim, name: string, bookingId: string | undefined, fn: () => Promise<unknown>, onDone?: (s: Settled) => void): Promise<Settled | 'parked'> {
  let parkedAt!: (resume: () => void) => void;
  const parking = new Promise<() => void>((r) => (parkedAt = r));
  sim.ctl.current = { park: (resume) => parkedAt(resume) };
  const done: Promise<Settled> = fn().then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
  const first = await Promise.race([done, parking.then((resume) => ({ resume }))]);
  sim.ctl.current = null;
  if ('resume' in first) {
    sim.parked.push({ label: name, bookingId, done, resume: first.resume, onDone });
    bump(sim, 'parked');
    return 'parked';
  }
  onDone?.(first);
  return first;
}

/** Lets a parked operation go on; it settles now or parks again. */
export async function resumeOp(sim: Sim, p: Parked): Promise<Settled | 'parked'> {
  sim.parked.splice(sim.parked.indexOf(p), 1);
  let parkedAt!: (resume: () => void) => void;
  const parking = new Promise<() => void>((r) => (parkedAt = r));
  sim.ctl.current = { park: (resume) => parkedAt(resume) };
  p.resume();
  const first = await Promise.race([p.done, parking.then((resume) => ({ resume }))]);
  sim.ctl.current = null;
  if ('resume' in first) {
    sim.parked.push({ ...p, resume: first.resume });
    return 'parked';
  }
  p.onDone?.(first);
  return first;
}

/**
 * An outcome as a short, seed-stable text. An exception that is neither a domain error nor caused by an injected
 * fault is a violation when a request got it (a 500); a job that throws is retried by BullMQ, so there it is only a
 * retry (a job that never succeeds fails the final check: "failed for good").
 */
export function outcome(sim: Sim, name: string, s: Settled | 'parked', ok: (v: unknown) => string = () => 'ok'): string {
  if (s === 'parked') return 'parked at the provider';
  if (s.ok) return ok(s.value);
  const e = s.error;
  if (isDomainError(e)) return `refused ${e.code}`;
  if (e instanceof SimCrash) return 'crashed (injected)';
  const msg = (e instanceof Error ? e.message : String(e)).replace(/bk_[a-z0-9]{12}_[a-z0-9]{16}/g, (id) => label(sim, id)).replace(/pi_sim_[0-9a-f]+/g, 'pi_…');
  if (msg.includes('[sim workaround]')) return 'retry (workaround)';
  if (msg.includes('[sim]') || /payment provider unavailable/.test(msg)) return 'failed: provider unavailable (injected)';
  if (/^(settle|refund) job\b/.test(name)) {
    bump(sim, `job retry: ${msg.replace(/b\d+(\.a\d+)?/g, 'b').slice(0, 80)}`);
    return `job throws, retried: ${msg}`;
  }
  sim.unexpected.push(`unexpected error in ${name}: ${msg}`);
  return `UNEXPECTED ${msg}`;
}
