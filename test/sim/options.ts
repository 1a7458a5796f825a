import type { InvariantReport } from '../../engine/index.js';

/** The simulation's options and result, and the bugs it knows (deliberate ones, and engine bugs it steers around). */

export type Bug =
  /** buyer cancels give the stock back twice (a release that double-frees) */
  | 'double-release'
  /** a stray HINCRBY on a Redis counter in the middle of the run */
  | 'tamper-counter'
  /** the persist worker acknowledges an entry it never applied */
  | 'lossy-persist';
export const BUGS: readonly Bug[] = ['double-release', 'tamper-counter', 'lossy-persist'];

/**
 * Engine bugs this simulation has found that are not fixed yet: each gets an entry here (name -> what its workaround
 * does), a workaround in the simulation steering the workload around it (so the seeds keep hunting for other bugs; ask
 * `workaround(sim, name)` from test/sim/context.ts), and an `it.fails` in test/sim/sim.test.ts running a seed that shows
 * it without the workaround. Remove all three once the bug is fixed. `npm run sim -- --without all` runs with none.
 *
 * Empty now: the five it found (listed in test/sim/sim.test.ts) are fixed.
 */
export const KNOWN_BUGS: Record<string, string> = {};
export type KnownBug = keyof typeof KNOWN_BUGS;
export const ALL_WORKAROUNDS = Object.keys(KNOWN_BUGS) as KnownBug[];

export type SimOptions = {
  seed: number;
  steps: number;
  /** Full oracle every this many steps (default 100). */
  checkEvery?: number;
  /** Inject a deliberate bug into the system under test (to prove the simulation catches it). */
  bug?: Bug;
  /** Keep the whole trace (default: the last 200 lines). */
  keepTrace?: boolean;
  /** Workarounds for known engine bugs (default: all of KNOWN_BUGS). */
  workarounds?: readonly KnownBug[];
};

export type SimResult = {
  seed: number;
  steps: number;
  ok: boolean;
  /** The first violation: the step (steps + 1 = the final check) and what broke. */
  violation?: { step: number; messages: string[] };
  trace: string[];
  stats: Record<string, number>;
  figures?: InvariantReport['figures'];
  ms: number;
};
