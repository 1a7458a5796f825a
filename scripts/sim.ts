/**
 * npm run sim -- --seed N [--steps M] [--seeds K] [--check-every C] [--bug double-release|tamper-counter|lossy-persist]
 *                 [--without <known bug>,...|all]
 *
 * Runs the deterministic simulation of the booking core (test/sim/simulator.ts) for seeds N, N+1, ... N+K-1 against
 * the real Redis and Postgres of the tests (TEST_REDIS_URL / TEST_DATABASE_URL), in a key namespace and schema of its
 * own that are removed at the end. Without --seed a random seed is used (and printed). On the first violation it
 * prints `SEED=<n> step=<k>`, the broken invariants and the last steps, and exits 1; the same seed replays the same run.
 * --bug injects a deliberate fault into the system under test, to see the simulation catch it. Known engine bugs the
 * simulation found are steered around by default (KNOWN_BUGS in test/sim/options.ts, listed at the start);
 * --without turns those workarounds off (a list, or "all").
 */
import { parseArgs } from 'node:util';
import { ALL_WORKAROUNDS, BUGS, formatReport, KNOWN_BUGS, simulate, type Bug, type KnownBug } from '../test/sim/simulator.js';
import { openWorld } from '../test/sim/world.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    steps: { type: 'string', default: '1000' },
    seeds: { type: 'string', default: '1' },
    'check-every': { type: 'string', default: '100' },
    bug: { type: 'string' },
    without: { type: 'string' },
    tail: { type: 'string', default: '25' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('npm run sim -- --seed N [--steps M] [--seeds K] [--check-every C] [--bug double-release|tamper-counter|lossy-persist] [--without <known bug>,...|all]');
  console.log(`known bugs: ${ALL_WORKAROUNDS.join(', ')}`);
  process.exit(0);
}
const int = (name: string, v: string | undefined, min: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min} (got ${v})`);
    process.exit(2);
  }
  return n;
};
const first = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int('seed', values.seed, 0);
const steps = int('steps', values.steps, 1);
const seeds = int('seeds', values.seeds, 1);
const checkEvery = int('check-every', values['check-every'], 1);
const tail = int('tail', values.tail, 0);
if (values.bug !== undefined && !BUGS.includes(values.bug as Bug)) {
  console.error(`--bug must be one of ${BUGS.join(', ')}`);
  process.exit(2);
}
const bug = values.bug as Bug | undefined;
const without = values.without === 'all' ? ALL_WORKAROUNDS : ((values.without?.split(',').filter(Boolean) ?? []) as KnownBug[]);
for (const w of without) {
  if (!ALL_WORKAROUNDS.includes(w)) {
    console.error(`--without: unknown known bug ${w} (one of ${ALL_WORKAROUNDS.join(', ')}, or all)`);
    process.exit(2);
  }
}
const workarounds = ALL_WORKAROUNDS.filter((w) => !without.includes(w));
if (workarounds.length) {
  console.log(`steering around ${workarounds.length} known engine bug(s) (--without all to stop): ${workarounds.map((w) => `${w} (${KNOWN_BUGS[w]})`).join('; ')}`);
}

const world = await openWorld();
const started = performance.now();
let total = 0;
let failed = false;
try {
  for (let seed = first; seed < first + seeds; seed++) {
    const r = await simulate(world, { seed, steps, checkEvery, workarounds, ...(bug ? { bug } : {}) });
    total += r.steps;
    if (!r.ok) {
      console.log(formatReport(r, { steps, tail, bug, without }));
      failed = true;
      break;
    }
    const f = r.figures!;
    console.log(
      `seed=${seed} ok: ${r.steps} steps in ${r.ms} ms; ${f.bookings} bookings, ${f.sold} sold, ${f.captured} captured, ${f.refunded} refunded; ` +
        `${Object.entries(r.stats).filter(([k]) => k.startsWith('fault')).reduce((n, [, v]) => n + v, 0)} faults, ${r.stats.parked ?? 0} parked calls`,
    );
  }
} finally {
  await world.close();
}
const secs = (performance.now() - started) / 1000;
console.log(`${failed ? 'FAILED' : 'ok'}: ${total} steps over ${failed ? 'the seeds up to the failing one' : `${seeds} seed(s)`} in ${secs.toFixed(1)} s (${Math.round(total / secs)} steps/s)`);
process.exit(failed ? 1 : 0);
