/**
 * `npm run bench:queue`: the waiting room under load, in one run on this machine:
 *   1. joins: POST /api/events/:id/queue from many people at 1,000 connections;
 *   2. status polls: GET /api/queue/:queueId at 1,000 connections (each person polling their own place);
 *   3. for comparison, booking holds (POST /api/bookings) on an event without a waiting room, same setup;
 *   4. Redis memory per queued person with 1,000,000 people queued (INFO memory before/after).
 * Options: --connections N (1000) --duration S (10) --queued N (1000000). Writes bench/results/queue-<date>.{json,md}.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventKeys } from '../engine/keys.js';
import { memberOf } from '../engine/waiting-room/waiting-room.js';
import type { EventId, UserId } from '../engine/ids.js';
import { devToken } from '../scripts/dev-token.js';
import { ROOT, benchStack, machineFacts, runLoad, say, startServer, type LoadResult } from './lib/stack.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const connections = arg('connections', 1000);
const durationSec = arg('duration', 10);
const queued = arg('queued', 1_000_000);
const command = `npm run bench:queue -- --connections ${connections} --duration ${durationSec} --queued ${queued}`;

const stack = await benchStack();
const { engine, redis, deps } = stack;
try {
  const now = Date.now();
  const queuedEvent = await engine.createEvent({
    name: 'Bench queue', category: 'bench', venue: 'Bench', startsAt: new Date(now + 86400_000).toISOString(),
    salesOpenAt: new Date(now - 1000).toISOString(), maxTicketsPerUser: 4,
    tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity: 1_000_000 }],
    queue: { enabled: true, opensAt: new Date(now - 60_000).toISOString(), admissionRatePerSecond: 1, passTtlSeconds: 600 },
  });
  const plainEvent = await engine.createEvent({
    name: 'Bench holds', category: 'bench', venue: 'Bench', startsAt: new Date(now + 86400_000).toISOString(), maxTicketsPerUser: 100,
    tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity: 5_000_000 }],
  });
  const people = Array.from({ length: 10 * connections }, (_, i) => `q-${i}`);
  const tokens = await Promise.all(people.map((p) => devToken(stack.jwtSecret, p)));

  const api = await startServer('floodgate', stack.env);
  const base = `http://127.0.0.1:${api.port}`;
  let joins: LoadResult;
  let polls: LoadResult;
  let holds: LoadResult;
  try {
    say('1/3 joins: POST /api/events/:id/queue');
    joins = await runLoad({ title: 'joins', url: `${base}/api/events/${queuedEvent.id}/queue`, method: 'POST', tokens, connections, durationSec });
    // everyone who did not get in during the join run joins now, so every poll below finds a place
    await Promise.all(people.map((p) => engine.waitingRoom.join(queuedEvent.id, p as UserId)));
    say('2/3 status polls: GET /api/queue/:queueId');
    const targets = people.map((p, i) => ({ path: `/api/queue/q_${queuedEvent.id.slice(3)}_${memberOf(deps.config.admissionSecret, queuedEvent.id, p as UserId)}`, token: tokens[i]! }));
    polls = await runLoad({ title: 'status', url: base, method: 'GET', targets, connections, durationSec });
    say('3/3 holds, for comparison: POST /api/bookings (no waiting room)');
    const body = JSON.stringify({ eventId: plainEvent.id, ticketCount: 1 });
    holds = await runLoad({ title: 'holds', url: `${base}/api/bookings`, method: 'POST', body, tokens, connections, durationSec });
  } finally {
    await api.stop();
  }

  say(`memory: queueing ${queued.toLocaleString('en')} people in a fresh waiting room`);
  const memEvent = await engine.createEvent({
    name: 'Bench memory', category: 'bench', venue: 'Bench', startsAt: new Date(now + 86400_000).toISOString(),
    salesOpenAt: new Date(now - 1000).toISOString(),
    tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity: 1000 }],
    queue: { enabled: true, opensAt: new Date(now - 60_000).toISOString(), admissionRatePerSecond: 1, passTtlSeconds: 600 },
  });
  const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
  const k = eventKeys(deps.ns, memEvent.id as EventId);
  const before = await used();
  for (let i = 0; i < queued; i += 10_000) {
    const p = redis.pipeline();
    for (let j = i; j < Math.min(queued, i + 10_000); j++) {
      p.joinQueue(k.wrCfg, k.wrPre, k.wrLine, k.wrPasses, k.wrDone, k.wrJoined, memberOf(deps.config.admissionSecret, memEvent.id, `m-${j}` as UserId), Date.now());
    }
    await p.exec();
    if (i % 100_000 === 0) process.stderr.write(`\r  queued ${i.toLocaleString('en')}`);
  }
  process.stderr.write('\n');
  const after = await used();
  const line = await redis.zcard(k.wrLine);
  const bytesPerPerson = (after - before) / line;
  await redis.unlink(k.wrLine);

  const facts = await machineFacts(stack.redis, stack.pool);
  const result = { scenario: 'queue', command, date: new Date().toISOString(), machine: facts, connections, durationSec, joins, polls, holds,
    memory: { queued: line, usedBefore: before, usedAfter: after, bytesPerPerson } };
  const row = (n: string, x: LoadResult) =>
    `| ${n} | ${x.throughputRps.toFixed(0)} | ${x.latencyMs.p50} | ${x.latencyMs.p95} | ${x.latencyMs.p99} | ${x.requests} | ${JSON.stringify(x.statuses)} |`;
  const md = [
    `# Waiting-room benchmark, ${result.date.slice(0, 10)}`,
    '',
    `Command: \`${command}\``,
    '',
    `Machine: ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Node ${facts.node}, Redis ${facts.redis}, PostgreSQL ${facts.postgres}.`,
    `One API process; the load generator (autocannon, its own process) and Redis share the machine; ${connections} connections, ${durationSec} s each.`,
    '',
    '| load | req/s | p50 ms | p95 ms | p99 ms | requests | statuses |',
    '|---|---|---|---|---|---|---|',
    row('join (POST /api/events/:id/queue)', joins),
    row('status poll (GET /api/queue/:queueId)', polls),
    row('booking hold (POST /api/bookings), for comparison', holds),
    '',
    `Status polls / holds: **${(polls.throughputRps / holds.throughputRps).toFixed(2)}x**.`,
    `Redis memory with ${line.toLocaleString('en')} people queued: **${bytesPerPerson.toFixed(1)} bytes per person** ` +
      `(used_memory ${before} -> ${after}).`,
    '',
  ].join('\n');
  console.log(`\n${md}`);
  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const stamp = result.date.slice(0, 10);
  await writeFile(join(dir, `queue-${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  await writeFile(join(dir, `queue-${stamp}.md`), md);
  say(`wrote bench/results/queue-${stamp}.json and .md`);
} finally {
  await stack.cleanup();
}
