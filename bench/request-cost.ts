/**
 * `npm run bench:request-cost`: the API's own CPU per `POST /api/bookings`, in this one process, without sockets or a
 * load generator, so the figure is the middleware chain, validation, the engine's JavaScript, ioredis and the reply.
 * CPU time (process.cpuUsage, user + system) rather than wall time: the machine is shared, and CPU time is what another
 * process's work disturbs least (it still moves with the load: run it several times, compare medians).
 *
 * `--via node` (default): each request goes through @hono/node-server's request listener, as in the server (its
 * lightweight Request over an IncomingMessage), filled in memory; only the socket and node's HTTP parser are left out.
 * `--via request`: each request is a web Request handed to the app's fetch, as Hono's `app.request()` does (undici's
 * Request and body stream: costlier than the server's path, and it hides costs the lightweight path has).
 *
 * Three modes, each measured `--runs` times (the median is the figure):
 *   - `bare`: a bare Hono app answering the same requests with a fixed JSON body (as bench/server.ts hello): the
 *     framework's and the transport's own cost, to subtract from the others.
 *   - `chain`: the real app (createApp) with `engine.bookings.create` answering at once (no Redis): the middleware
 *     chain, the validation and the reply.
 *   - `full`: the real app and engine on a throw-away stack (benchStack: database floodgate_bench, its own schema and
 *     key namespace, removed at the end): each request is one hold script call in Redis. Includes ioredis' work.
 * Requests as `npm run bench -- booking` sends them: one event with ample stock, buyers' tokens taken in turn, an
 * Idempotency-Key per request, 1-4 tickets, per-user hold limit on (RATE_LIMIT_PER_USER etc. from the environment,
 * per-IP limit off as in the booking bench). Every token is used once before the timed requests (a token's first
 * request verifies its signature; later ones are answered from the cache, as in an on-sale).
 * GC: the time V8 spent in garbage collection during the timed requests (PerformanceObserver 'gc' entries).
 *
 * Options: --requests N (20000) --concurrency C (64) --runs R (5) --users U (5000) --via node|request (node)
 *   --mode bare|chain|full, a comma list of them, or all (all).
 * Prints one line per run and the medians; writes nothing.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { pino } from 'pino';
import { createApp } from '../api/app.js';
import type { Engine } from '../engine/index.js';
import { newBookingId } from '../engine/ids.js';
import { loadConfig } from '../platform/config.js';
import { createMetrics } from '../platform/metrics.js';
import { devToken } from '../scripts/dev-token.js';
import { benchStack, say } from './lib/stack.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const requests = Number(arg('requests', '20000'));
const concurrency = Number(arg('concurrency', '64'));
const runs = Number(arg('runs', '5'));
const users = Number(arg('users', '5000'));
const modeArg = arg('mode', 'all');
const via = arg('via', 'node');
if (via !== 'node' && via !== 'request') throw new Error(`--via: node or request, got ${via}`);
type Mode = 'bare' | 'chain' | 'full';
const modes: Mode[] = modeArg === 'all' ? ['bare', 'chain', 'full'] : (modeArg.split(',') as Mode[]);
if (!modes.every((m) => ['bare', 'chain', 'full'].includes(m))) throw new Error(`--mode: bare, chain, full, a comma list of them, or all; got ${modeArg}`);

type Fetch = (req: Request) => Response | Promise<Response>;
/** Sends one POST /api/bookings (body, raw header list) to `fetch`; resolves with the status. */
type Send = (body: string, rawHeaders: string[]) => Promise<number>;

/**
 * As the server does: @hono/node-server's request listener (its lightweight Request over node's IncomingMessage,
 * headers read from the parsed header object, the body from the stream) with an IncomingMessage filled in memory
 * and a ServerResponse without a socket (the reply is formatted, not sent). Only the socket and node's HTTP parser
 * are left out.
 */
const viaNode = (fetch: Fetch): Send => {
  const listener = getRequestListener(fetch);
  return async (body, rawHeaders) => {
    const req = new IncomingMessage(new Socket());
    req.method = 'POST';
    req.url = '/api/bookings';
    req.httpVersion = '1.1';
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.rawHeaders = rawHeaders;
    for (let h = 0; h < rawHeaders.length; h += 2) req.headers[rawHeaders[h]!] = rawHeaders[h + 1]!;
    req.push(body);
    req.push(null);
    const res = new ServerResponse(req);
    await listener(req, res);
    return res.statusCode;
  };
};

/** As Hono's app.request does: a full web Request (undici's, costlier than the server's lightweight one) to `fetch`. */
const viaRequest = (fetch: Fetch): Send => {
  return async (body, rawHeaders) => {
    const headers: Record<string, string> = {};
    for (let h = 0; h < rawHeaders.length; h += 2) if (rawHeaders[h] !== 'host') headers[rawHeaders[h]!] = rawHeaders[h + 1]!;
    const res = await fetch(new Request('http://localhost/api/bookings', { method: 'POST', headers, body }));
    await res.arrayBuffer();
    return res.status;
  };
};

const config = loadConfig();
const stack = await benchStack();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Garbage-collection time (ms) of the pauses that started between `window.from` and `window.to` (performance.now). */
let gcMs = 0;
const window = { from: Infinity, to: Infinity };
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (e.startTime >= window.from && e.startTime < window.to) gcMs += e.duration;
});
gcObserver.observe({ entryTypes: ['gc'] });

try {
  say(`stack: schema ${stack.schema}, key namespace ${stack.ns}; ${requests} requests x ${runs} runs, ${concurrency} in flight, ${users} buyers`);
  const tokens = await Promise.all(Array.from({ length: users }, (_, i) => devToken(stack.jwtSecret, `rc-${i}`)));
  const startsAt = new Date(Date.now() + 86400_000).toISOString();
  const newEvent = () =>
    stack.engine.createEvent({
      name: 'request-cost', category: 'bench', venue: 'Bench', startsAt, maxTicketsPerUser: 100,
      tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity: 10_000_000 }],
    });

  const appFor = (engine: Engine): Fetch =>
    createApp({
      engine,
      log: pino({ level: config.LOG_LEVEL }),
      metrics: createMetrics('api'),
      config: {
        jwtSecret: stack.jwtSecret,
        bodyLimitBytes: config.BODY_LIMIT_BYTES,
        requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
        rateLimit: { perUser: config.RATE_LIMIT_PER_USER, perIp: 0, windowSeconds: config.RATE_LIMIT_WINDOW_SECONDS, trustProxyHops: 0 },
      },
      checks: stack.engine.probes,
    }).fetch;

  /** Sends `n` holds on `eventId`, `concurrency` at a time; counts the statuses. */
  const send = async (fetch: Fetch, eventId: string, tierId: string, n: number, tag: string) => {
    const bodies = Array.from({ length: 64 }, (_, i) => JSON.stringify({ eventId, tierId, ticketCount: 1 + (i % 4) }));
    const statuses: Record<number, number> = {};
    const request = via === 'node' ? viaNode(fetch) : viaRequest(fetch);
    let next = 0;
    const lane = async () => {
      while (next < n) {
        const i = next++;
        const body = bodies[i % bodies.length]!;
        const status = await request(body, [
          'host', 'localhost',
          'authorization', `Bearer ${tokens[i % tokens.length]!}`,
          'content-type', 'application/json',
          'content-length', String(body.length),
          'idempotency-key', `${tag}-${i}`,
        ]);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    return statuses;
  };

  for (const mode of modes) {
    const engine: Engine =
      mode !== 'chain'
        ? stack.engine
        : {
            ...stack.engine,
            bookings: {
              ...stack.engine.bookings,
              // answers at once, as the hold script would (it counts the request's hold limit)
              async create(r) {
                if (r.rateLimit) r.rateLimit.counted = true;
                return {
                  replayed: false,
                  reservation: {
                    bookingId: newBookingId(r.eventId), status: 'RESERVED', eventId: r.eventId, tierId: r.tierId!, ticketCount: r.ticketCount,
                    seats: [], amount: 5000 * r.ticketCount, currency: 'EUR', expiresAt: new Date(Date.now() + 600_000).toISOString(), createdAt: new Date().toISOString(),
                  },
                };
              },
            },
          };
    const app = mode === 'bare' ? new Hono().post('/api/bookings', (c) => c.json({ hello: 'world' }, 201)).fetch : appFor(engine);
    // warm-up: every token once (its signature verified and cached), the event record cached, the JIT warm
    const warm = await newEvent();
    await send(app, warm.id, warm.tiers[0]!.id, Math.max(users, 5000), `w-${mode}`);
    const cpu: number[] = [];
    const gc: number[] = [];
    for (let r = 0; r < runs; r++) {
      // a fresh event per run: the hold limits count per event, so no run is refused for the previous runs' requests
      const ev = await newEvent();
      gcMs = 0;
      window.from = performance.now();
      window.to = Infinity;
      const before = process.cpuUsage();
      const statuses = await send(app, ev.id, ev.tiers[0]!.id, requests, `r${r}-${mode}`);
      const used = process.cpuUsage(before);
      window.to = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 50)); // the last GC entries are delivered after the work
      const us = (used.user + used.system) / requests;
      cpu.push(us);
      gc.push((gcMs * 1000) / requests);
      say(`${mode} run ${r + 1}: ${us.toFixed(1)} µs CPU per request (GC ${((gcMs * 1000) / requests).toFixed(1)} µs), statuses ${JSON.stringify(statuses)}`);
      if ((statuses[201] ?? 0) !== requests) throw new Error(`${mode}: expected ${requests} x 201, got ${JSON.stringify(statuses)}`);
    }
    say(`${mode}: median ${median(cpu).toFixed(1)} µs CPU per request, GC ${median(gc).toFixed(1)} µs per request (runs: ${cpu.map((x) => x.toFixed(1)).join(', ')})`);
  }
} finally {
  gcObserver.disconnect();
  await stack.cleanup();
}
