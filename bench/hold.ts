/**
 * `npm run bench:hold`: the booking hot path against the framework ceiling, in one run on this machine.
 *   1. a bare Hono route (the ceiling), 2. the full POST /api/bookings (auth, validation, Lua, JSON), each in its own
 *   server process, each hammered by the same load generator in another process (autocannon, 1,000 connections,
 *   10 buyer tokens per connection taken in turn, one hot event with ample stock);
 *   then the persist worker drains the outbox, and the run checks: no oversell (capacity == available + held + sold),
 *   every 201 is one ticket held in Redis, and Postgres agrees with Redis.
 * Options: --connections N (1000) --duration S (10). Writes bench/results/hold-<date>.{json,md}.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { createPersistWorker } from '../workers/persist/persist.js';
import { devToken } from '../scripts/dev-token.js';
import { ROOT, benchStack, machineFacts, runLoad, say, startServer, type LoadResult } from './lib/stack.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const connections = arg('connections', 1000);
const durationSec = arg('duration', 10);
const command = `npm run bench:hold -- --connections ${connections} --duration ${durationSec}`;

const stack = await benchStack();
try {
  say(`stack: database floodgate_bench, schema ${stack.schema}, key namespace ${stack.ns}`);
  const ev = await stack.engine.createEvent({
    name: 'Bench hot event', category: 'bench', venue: 'Bench', startsAt: new Date(Date.now() + 86400_000).toISOString(),
    maxTicketsPerUser: 100,
    tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity: 5_000_000 }],
  });
  const tier = ev.tiers[0]!.id;
  const tokens = await Promise.all(Array.from({ length: 10 * connections }, (_, i) => devToken(stack.jwtSecret, `bench-${i}`)));
  const body = JSON.stringify({ eventId: ev.id, tierId: tier, ticketCount: 1 });

  say('1/2 framework ceiling: bare Hono route, same server layout');
  const hello = await startServer('hello', stack.env);
  const ceiling = await runLoad({ title: 'hello', url: `http://127.0.0.1:${hello.port}/hello`, method: 'POST', body, tokens, connections, durationSec })
    .finally(() => hello.stop());

  say('2/2 Floodgate: POST /api/bookings');
  const api = await startServer('floodgate', stack.env);
  const hot = await runLoad({ title: 'bookings', url: `http://127.0.0.1:${api.port}/api/bookings`, method: 'POST', body, tokens, connections, durationSec })
    .finally(() => api.stop());

  say('draining the outbox into Postgres and checking');
  const started = Date.now();
  const persist = createPersistWorker({ engine: stack.engine, log: pino({ level: 'warn' }), batchSize: 1000 });
  while ((await persist.drainOnce()) > 0);
  const drainSec = (Date.now() - started) / 1000;
  const r = (await stack.engine.inventory.redisState(ev.id))[tier]!;
  const p = (await stack.engine.inventory.postgresState(ev.id))[tier]!;
  const created = hot.statuses['201'] ?? 0;
  const checks = {
    oversold: Math.max(0, r.held + r.sold - r.cap) + (r.cap === r.free + r.held + r.sold ? 0 : 1),
    // every 201 is a held ticket; a few more may be held: requests answered after the generator stopped counting
    everyAcknowledgedHoldExists: r.held >= created,
    noHoldWithoutARequest: r.held <= hot.sent,
    postgresAgrees: JSON.stringify(r) === JSON.stringify(p),
    serverErrors: Object.entries(hot.statuses).filter(([s]) => s.startsWith('5')).reduce((n, [, c]) => n + c, 0),
  };
  const ratio = hot.throughputRps / ceiling.throughputRps;
  const facts = await machineFacts(stack.redis, stack.pool);
  const result = { scenario: 'hold', command, date: new Date().toISOString(), machine: facts, connections, durationSec, ceiling, floodgate: hot,
    ratioToCeiling: ratio, drainSec, redis: r, postgres: p, checks };

  const line = (n: string, x: LoadResult) =>
    `| ${n} | ${x.throughputRps.toFixed(0)} | ${x.latencyMs.p50} | ${x.latencyMs.p95} | ${x.latencyMs.p99} | ${x.requests} | ${JSON.stringify(x.statuses)} |`;
  const md = [
    `# Hold benchmark, ${result.date.slice(0, 10)}`,
    '',
    `Command: \`${command}\``,
    '',
    `Machine: ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Node ${facts.node}, Redis ${facts.redis}, PostgreSQL ${facts.postgres}.`,
    `Server, load generator and Redis share the machine; ${connections} connections for ${durationSec} s each, buyers' tokens taken in turn (${10 * connections} buyers).`,
    '',
    '| target | req/s | p50 ms | p95 ms | p99 ms | requests | statuses |',
    '|---|---|---|---|---|---|---|',
    line('bare Hono route (ceiling)', ceiling),
    line('POST /api/bookings (Floodgate)', hot),
    '',
    `Floodgate / ceiling: **${(ratio * 100).toFixed(1)} %**. Holds acknowledged (201): ${created}; tickets held in Redis: ${r.held} ` +
      `(requests sent: ${hot.sent}; holds answered after the generator stopped counting are held too); ` +
      `oversold: ${checks.oversold}; 5xx: ${checks.serverErrors}; Postgres agrees after the drain (${drainSec.toFixed(1)} s): ${checks.postgresAgrees}.`,
    '',
  ].join('\n');
  console.log(`\n${md}`);
  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const stamp = result.date.slice(0, 10);
  await writeFile(join(dir, `hold-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  await writeFile(join(dir, `hold-${stamp}.md`), md);
  say(`wrote bench/results/hold-${stamp}.json and .md`);
  if (checks.oversold > 0 || !checks.everyAcknowledgedHoldExists || !checks.noHoldWithoutARequest || !checks.postgresAgrees || checks.serverErrors > 0) {
    console.error('[bench] CORRECTNESS CHECK FAILED');
    process.exitCode = 1;
  }
} finally {
  await stack.cleanup();
}
