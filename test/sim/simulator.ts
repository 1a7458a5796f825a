import type { InvariantReport } from '../../engine/index.js';
import { pickAction } from './actions.js';
import { plantBug } from './bugs.js';
import { outcome, resumeOp } from './calls.js';
import { cheapChecks, deepCheck, finalCheck } from './checks.js';
import { bump, createSim, label, note, relabel, type Sim } from './context.js';
import type { Bug, KnownBug, SimOptions, SimResult } from './options.js';
import { drainEvent, runJob } from './workers.js';
import type { World } from './world.js';

export { ALL_WORKAROUNDS, BUGS, KNOWN_BUGS, type Bug, type KnownBug, type SimOptions, type SimResult } from './options.js';

/**
 * VOPR-lite: a deterministic simulation of Floodgate's booking core (TigerBeetle's VOPR as the model, RELIABILITY.md
 * section 6). One seed drives everything: which operation runs next and with what arguments, every fault of the payment
 * provider, worker crashes and job re-deliveries, and the engine's fake clock. The system under test is the real engine:
 * real Redis Lua scripts, real Postgres (triggers, constraints), the real simulated payment provider, in the world's
 * key namespace and schema. Operations run one at a time, except that a payment call may be parked at the provider
 * while later steps run (expiry, persist drains, other payments, webhooks, settle jobs...) and resumed by a later
 * step: real interleavings, chosen by the seed, hence reproducible.
 *
 * After every step the cheap invariants are checked (per tier in Redis: capacity == available + held + sold, no
 * counter below zero, seat maps agree with the counters; buyers' counters never negative; Postgres tiers within
 * capacity), every `checkEvery` steps the full oracle (engine/invariants/invariants.ts; its money rules only for
 * bookings with nothing in flight), and at the end, once faults stop and everything has settled and drained, the
 * oracle with `drained: true` and the provider's charges, plus "no authorization left open" and "no job failed for
 * good". An exception that is neither a domain error nor caused by an injected fault is a violation too (a 500).
 *
 * The parts, one module each:
 *  - options.ts: options, result, the deliberate bugs and the known engine bugs;
 *  - context.ts: world setup (streams, clock, fault-injecting provider, job model, engine, scenario) and bookkeeping;
 *  - faults.ts: fault injection at the payment provider, and the job queues' model;
 *  - calls.ts: running an operation that a provider call may park, and its outcome's text;
 *  - actions.ts: one function per kind of step, and the weighted table a step draws from;
 *  - workers.ts: settle and refund jobs, the persist worker;
 *  - bugs.ts: the deliberate bugs;
 *  - checks.ts: the cheap invariants, the oracle at checkpoints, the final check.
 * This file runs them: setup, the steps, the settling phase, the final check.
 *
 * Where it lives: test/sim/, because it is test code through and through (it uses the test config, the simulated
 * provider and the test services), and test/ is already typechecked (tsconfig.json), linted and excluded from the
 * build; a top-level sim/ would need tsconfig and build changes to get the same.
 */

class Violation extends Error {
  constructor(
    readonly at: number,
    readonly messages: string[],
  ) {
    super(messages.join('; '));
  }
}

const fail = (sim: Sim, at: number, messages: string[]): never => {
  throw new Violation(at, messages.map((m) => relabel(sim, m)));
};

/** One step: the deliberate bug's hook, an action drawn by weight, the cheap invariants, the oracle every checkEvery. */
async function runStep(sim: Sim, bug: ReturnType<typeof plantBug>) {
  await bug.beforeStep(sim.step);
  const action = pickAction(sim);
  bump(sim, `op ${action.name}`);
  note(sim, await action.run(sim));
  const broken = [...sim.unexpected, ...(await cheapChecks(sim))];
  if (broken.length) fail(sim, sim.step, broken);
  if (sim.step % sim.checkEvery === 0) {
    const v = await deepCheck(sim);
    if (v.length) fail(sim, sim.step, v);
  }
}

/** The end: faults stop, parked calls finish, jobs run until none is left, the outbox drains. */
async function settle(sim: Sim) {
  const { ctl, parked, jobs, clock } = sim;
  ctl.enabled = false;
  note(sim, `final: faults off; ${parked.length} parked call(s), ${jobs.waiting().length} job(s) waiting`);
  while (parked.length) {
    const p = parked[0]!;
    note(sim, `final: resume ${p.label} ${p.bookingId ? label(sim, p.bookingId) : ''} -> ${outcome(sim, p.label, await resumeOp(sim, p), () => 'done')}`);
  }
  for (let i = 0; i < 10_000; i++) {
    const waiting = jobs.waiting().sort((a, b) => a.dueAt - b.dueAt);
    if (waiting.length === 0) break;
    const job = waiting[0]!;
    if (job.dueAt > clock.now()) clock.set(job.dueAt);
    for (const id of sim.sc.eventIds) await drainEvent(sim, id); // the persist worker keeps running meanwhile
    note(sim, `final: ${job.kind} job ${label(sim, job.bookingId)} -> ${outcome(sim, `${job.kind} job`, await runJob(sim, job, false), (v) => JSON.stringify(v))}`);
  }
  for (const id of sim.sc.eventIds) await drainEvent(sim, id);
}

/** Never leave a parked call behind (it would hold the process open). */
async function release(sim: Sim) {
  sim.ctl.enabled = false;
  for (const p of [...sim.parked]) {
    p.resume();
    await p.done;
  }
  sim.unexpected = [];
}

export async function simulate(world: World, o: SimOptions): Promise<SimResult> {
  const started = performance.now();
  const sim = await createSim(world, o);
  const bug = plantBug(sim);
  const result = (ok: boolean, violation?: SimResult['violation'], figures?: InvariantReport['figures']): SimResult => ({
    seed: o.seed, steps: Math.min(sim.step, o.steps), ok, ...(violation ? { violation } : {}), trace: sim.trace, stats: Object.fromEntries([...sim.stats].sort()),
    ...(figures ? { figures } : {}), ms: Math.round(performance.now() - started),
  });

  try {
    for (sim.step = 1; sim.step <= o.steps; sim.step++) await runStep(sim, bug);
    sim.step = o.steps + 1;
    await settle(sim);
    const { broken, figures } = await finalCheck(sim);
    note(sim, `final: ${figures.bookings} bookings, ${figures.sold} sold, ${figures.captured} captured, ${figures.refunded} refunded`);
    if (broken.length) return result(false, { step: sim.step, messages: [...new Set(broken.map((m) => relabel(sim, m)))] }, figures);
    return result(true, undefined, figures);
  } catch (err) {
    if (err instanceof Violation) return result(false, { step: err.at, messages: [...new Set(err.messages)] });
    throw err;
  } finally {
    await release(sim);
  }
}

/** `SEED=<n> step=<k>`, what broke, the last steps, and how to replay. */
export function formatReport(r: SimResult, o: { steps: number; tail?: number; bug?: Bug | undefined; without?: readonly KnownBug[] }): string {
  if (r.ok) return `seed=${r.seed} ok: ${r.steps} steps in ${r.ms} ms`;
  const v = r.violation!;
  const lines = [
    `SEED=${r.seed} step=${v.step > o.steps ? `${v.step} (final check)` : v.step}: invariant violated`,
    ...v.messages.map((m) => `  - ${m}`),
    `last steps:`,
    ...r.trace.slice(-(o.tail ?? 25)).map((t) => `  ${t}`),
    `replay: npm run sim -- --seed ${r.seed} --steps ${o.steps}${o.bug ? ` --bug ${o.bug}` : ''}${o.without?.length ? ` --without ${o.without.join(',')}` : ''}`,
  ];
  return lines.join('\n');
}
