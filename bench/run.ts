/**
 * `npm run bench -- <scenario> [options]`: runs one benchmark scenario on this machine and writes
 * bench/results/<scenario>-<date>.{json,md}. A correctness failure (oversold seats, Redis and Postgres disagreeing
 * after the drain, invariant violations) makes the run exit 1.
 *
 *   booking       the seed's scenario: framework ceiling vs the pg-lock baseline vs Floodgate, 1,000 connections
 *   waiting-room  a spike of joins, status polls, the admission worker, admitted people booking with their pass
 *   soak          a steady mix of browsing, booking, reading back and cancelling; latency and API memory over time
 *   e2e           hold -> simulated payment -> confirmed -> e-mail with the ticket PDF (outbox folder)
 *   scale         1 vs 100 events, 1 vs 2 API processes
 *
 * (`npm run bench:hold` and `npm run bench:queue` are the two earlier, narrower benchmarks; `npm run demo` is the
 * on-sale simulation.)
 */
const SCENARIOS = {
  booking: () => import('./scenarios/booking.js'),
  'waiting-room': () => import('./scenarios/waiting-room.js'),
  soak: () => import('./scenarios/soak.js'),
  e2e: () => import('./scenarios/e2e.js'),
  scale: () => import('./scenarios/scale.js'),
} as const;

const [name, ...args] = process.argv.slice(2);
if (!name || !(name in SCENARIOS) || name === '--help') {
  console.error(`usage: npm run bench -- <${Object.keys(SCENARIOS).join('|')}> [options]  (each scenario's options: see bench/scenarios/<name>.ts)`);
  process.exit(name && name !== '--help' ? 2 : 0);
}
const mod = await SCENARIOS[name as keyof typeof SCENARIOS]();
try {
  await mod.run(args);
} catch (err) {
  console.error(`\n[bench] ${name} failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
}
if (process.exitCode === 1) console.error(`[bench] ${name}: FAILED (exit 1)`);
// ioredis/pg handles are closed by the scenario; exit anyway so a stray timer never keeps the run alive
process.exit(process.exitCode ?? 0);
