import { sign } from 'hono/jwt';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import { DOMAIN_HTTP, problemType } from '../api/problem.js';
import { createEngine, type BookingId, type Engine, type EventWithAvailability, type Namespace, type UserId } from '../engine/index.js';
import type { FakeClock } from '../engine/clock.js';
import { loadCommands } from '../lua/commands.js';
import { createSimulatedProvider } from '../integrations/payments/simulated.js';
import { TEST_ENGINE_CONFIG } from './config.js';
import { TEST_REDIS_URL } from './env.js';
import type { RecordingJobs } from './jobs.js';
import type { Pool } from '../platform/pg.js';
import { seatedEvent, gaEvent } from './events.js';
import { TEST_JWT_SECRET, token } from './http.js';
import { drain } from './wait.js';
import { simulatedPaymentKeys } from '../engine/keys.js';

/**
 * Every HTTP endpoint of the API with what its documentation promises: the statuses of /openapi.json (or, for the
 * routes outside it, of their own doc comments), who may call it, and what body it takes. The property and security
 * tests under api/ iterate over this list; api/bad-input.prop.test.ts checks it covers every path of /openapi.json.
 */
export type Endpoint = {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** OpenAPI-style template: {eventId}, {bookingId}, {queueId}. */
  path: string;
  auth: 'none' | 'user' | 'admin' | 'gate';
  /** 'json': a required JSON body; 'optional': an optional JSON body; 'raw': read as text; 'none'. */
  body: 'json' | 'optional' | 'raw' | 'none';
  documented: number[];
  /** In /openapi.json (the spec itself, /docs and the /wait page are not). */
  openapi: boolean;
  /** Also takes the bearer token as ?access_token= (for EventSource). */
  queryToken?: boolean;
  /** An answer that streams (Server-Sent Events). */
  stream?: boolean;
};

export const ENDPOINTS: Endpoint[] = [
  { method: 'GET', path: '/api/events', auth: 'none', body: 'none', documented: [200, 400, 503], openapi: true },
  { method: 'GET', path: '/api/events/{eventId}', auth: 'none', body: 'none', documented: [200, 400, 404, 503], openapi: true },
  { method: 'GET', path: '/api/events/{eventId}/seats', auth: 'none', body: 'none', documented: [200, 400, 404, 503], openapi: true },
  { method: 'POST', path: '/api/admin/events', auth: 'admin', body: 'json', documented: [201, 400, 401, 403, 413, 415, 503], openapi: true },
  { method: 'POST', path: '/api/bookings', auth: 'user', body: 'json', documented: [201, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503], openapi: true },
  { method: 'GET', path: '/api/bookings', auth: 'user', body: 'none', documented: [200, 400, 401, 503], openapi: true },
  { method: 'GET', path: '/api/bookings/{bookingId}', auth: 'user', body: 'none', documented: [200, 400, 401, 404, 503], openapi: true },
  { method: 'DELETE', path: '/api/bookings/{bookingId}', auth: 'user', body: 'none', documented: [200, 400, 401, 403, 404, 409, 413, 503], openapi: true },
  { method: 'POST', path: '/api/payments', auth: 'user', body: 'json', documented: [200, 400, 401, 402, 403, 404, 409, 413, 415, 422, 429, 503], openapi: true },
  { method: 'POST', path: '/api/events/{eventId}/queue', auth: 'user', body: 'none', documented: [200, 201, 400, 401, 403, 404, 409, 413, 429, 503], openapi: true },
  { method: 'POST', path: '/api/events/{eventId}/waitlist', auth: 'user', body: 'json', documented: [200, 201, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503], openapi: true },
  { method: 'GET', path: '/api/events/{eventId}/waitlist', auth: 'user', body: 'none', documented: [200, 400, 401, 404, 503], openapi: true },
  { method: 'GET', path: '/api/queue/{queueId}', auth: 'user', body: 'none', documented: [200, 400, 401, 404, 429, 503], openapi: true, queryToken: true },
  { method: 'DELETE', path: '/api/queue/{queueId}', auth: 'user', body: 'none', documented: [200, 400, 401, 403, 404, 413, 503], openapi: true, queryToken: true },
  { method: 'GET', path: '/api/queue/{queueId}/events', auth: 'user', body: 'none', documented: [200, 400, 401, 404, 429, 503], openapi: true, queryToken: true, stream: true },
  { method: 'GET', path: '/api/events/{eventId}/queue/fairness', auth: 'none', body: 'none', documented: [200, 400, 404, 503], openapi: true },
  { method: 'PUT', path: '/api/admin/events/{eventId}/queue', auth: 'admin', body: 'json', documented: [200, 400, 401, 403, 404, 409, 413, 415, 503], openapi: true },
  { method: 'GET', path: '/api/bookings/{bookingId}/tickets.pdf', auth: 'user', body: 'none', documented: [200, 400, 401, 404, 409, 503], openapi: true },
  { method: 'POST', path: '/api/tickets/verify', auth: 'gate', body: 'json', documented: [200, 400, 401, 403, 413, 415, 503], openapi: true },
  { method: 'POST', path: '/api/bookings/{bookingId}/refund', auth: 'user', body: 'optional', documented: [202, 400, 401, 403, 404, 409, 413, 415, 503], openapi: true },
  { method: 'POST', path: '/api/admin/bookings/{bookingId}/refund', auth: 'admin', body: 'json', documented: [200, 400, 401, 403, 404, 409, 413, 415, 503], openapi: true },
  // "200 (signature verified, deduplicated) | 400 bad signature" (ARCHITECTURE.md); 404 when Stripe is not the provider
  { method: 'POST', path: '/api/client-timings', auth: 'none', body: 'json', documented: [204, 400, 413, 415, 429, 503], openapi: true },
  { method: 'POST', path: '/api/webhooks/stripe', auth: 'none', body: 'raw', documented: [200, 400, 404, 413, 503], openapi: true },
  // Twilio's SMS status callbacks: 200 | 400 forged signature or malformed; 404 when Twilio is not the SMS provider
  { method: 'POST', path: '/api/webhooks/twilio', auth: 'none', body: 'raw', documented: [200, 400, 404, 413, 503], openapi: true },
  { method: 'GET', path: '/health', auth: 'none', body: 'none', documented: [200], openapi: true },
  { method: 'GET', path: '/ready', auth: 'none', body: 'none', documented: [200, 503], openapi: true },
  { method: 'GET', path: '/openapi.json', auth: 'none', body: 'none', documented: [200], openapi: false },
  { method: 'GET', path: '/docs', auth: 'none', body: 'none', documented: [200], openapi: false },
  { method: 'GET', path: '/wait/{eventId}', auth: 'none', body: 'none', documented: [200, 404], openapi: false },
  // the web app's pages (api/web): signed out, the list, an event and the sign-in form
  { method: 'GET', path: '/', auth: 'none', body: 'none', documented: [200], openapi: false },
  { method: 'GET', path: '/events/{eventId}', auth: 'none', body: 'none', documented: [200, 404], openapi: false },
  { method: 'GET', path: '/signin', auth: 'none', body: 'none', documented: [200], openapi: false },
];
export const endpointName = (e: Endpoint) => `${e.method} ${e.path}`;

/**
 * Statuses any /api route may answer besides its own list: /openapi.json lists the middleware's answers (400
 * raw-card-data, 413, 415) on the /api routes it documents, and a path
 * that matches no route once normalised (e.g. `..` segments) is 404 anywhere.
 * Kept separate, so a test can tell "documented" from "answered".
 */
export function allowedStatuses(e: Endpoint): Set<number> {
  const s = new Set(e.documented);
  if (e.path.startsWith('/api/')) {
    s.add(400);
    s.add(404);
    if (e.method !== 'GET') s.add(413);
    if (e.body === 'json' || e.body === 'optional') s.add(415);
  }
  return s;
}

/** Every problem type the API may answer to a client error: the domain errors' and the fixed ones of api/ (never
 *  `/problems/internal`: a 500 is a bug). */
export const PROBLEM_TYPES = new Set([
  ...Object.keys(DOMAIN_HTTP).map(problemType),
  ...['validation', 'unauthorized', 'forbidden', 'raw-card-data', 'rate-limited', 'payment-failed', 'payment-too-late', 'payment-provider-unavailable',
    'webhook-signature', 'webhook-malformed', 'malformed-request', 'not-found', 'method-not-allowed', 'payload-too-large', 'unsupported-media-type', 'service-unavailable', 'http',
  ].map((t) => `/problems/${t}`),
]);

/** Asserts an error answer is RFC 9457 problem+json with a stable type, its own status, a title and no stack trace. */
export function expectProblem(res: { status: number; headers: Headers; text: string }, what = '') {
  expect(res.headers.get('content-type'), `${what}: content-type of ${res.status}`).toBe('application/problem+json');
  const body = JSON.parse(res.text) as { type?: unknown; status?: unknown; title?: unknown };
  expect(PROBLEM_TYPES.has(String(body.type)), `${what}: unknown problem type ${String(body.type)}`).toBe(true);
  expect(body.status, `${what}: status in the body`).toBe(res.status);
  expect(typeof body.title === 'string' && body.title.length > 0, `${what}: title`).toBe(true);
  expect(res.text, `${what}: no stack trace`).not.toMatch(/at [\w.<>]+ \(.*:\d+:\d+\)|\.ts:\d+/);
  return body as { type: string; status: number; title: string; detail?: string; errors?: { field: string; detail: string }[] };
}

/**
 * Everything a request could change, read quickly: every key of the namespace with its value (one pipeline), and every
 * row of every table of the schema (rows sorted, so the comparison does not depend on heap order). `ignore` drops keys
 * that change by design on any request (the rate limiter's counters).
 */
const everyRowSql = new WeakMap<Pool, string>();

/** The logical Redis database of the API property and security tests (see isolatedEngine). */
const QUIET_DB = 7;

/**
 * An engine like the fixtures' one, on the file's namespace and schema, but on a Redis logical database that holds
 * little besides this namespace: the whole-state snapshots SCAN the database, and database 0 of the shared test Redis
 * can hold tens of thousands of other keys (other benchmarks and tools), which would make every snapshot ~40 ms.
 * Keys are still namespaced; close() removes them.
 */
export async function isolatedEngine(fx: { ns: Namespace; pg: Pool; clock: FakeClock; jobs: RecordingJobs }) {
  const redis = new Redis(TEST_REDIS_URL, { db: QUIET_DB, maxRetriesPerRequest: null });
  await loadCommands(redis);
  const engine = createEngine({
    ns: fx.ns, redis, pg: fx.pg, clock: fx.clock, config: TEST_ENGINE_CONFIG, jobs: fx.jobs.sink,
    provider: createSimulatedProvider({ redis, keys: simulatedPaymentKeys(fx.ns), timeoutMs: 300 }),
  });
  return {
    engine,
    redis,
    async close() {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${fx.ns}:*`, 'COUNT', 1000);
        if (keys.length) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      redis.disconnect();
    },
  };
}

export async function snapshotState(redis: Redis, pg: Pool, ns: string, o: { ignore?: RegExp } = {}) {
  const keys: string[] = [];
  let cursor = '0';
  do {
    // one large COUNT: the shared test Redis holds every other namespace's keys too, and each SCAN round trip costs
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${ns}:*`, 'COUNT', 200_000);
    keys.push(...batch.filter((k) => !o.ignore?.test(k)));
    cursor = next;
  } while (cursor !== '0');
  keys.sort();
  const types = ((await redis.pipeline(keys.map((k) => ['type', k])).exec()) ?? []).map(([, t]) => t as string);
  const read = keys.map((k, i) => {
    switch (types[i]) {
      case 'hash':
        return ['hgetall', k];
      case 'zset':
        return ['zrange', k, '0', '-1', 'WITHSCORES'];
      case 'set':
        return ['smembers', k];
      case 'stream':
        return ['xrange', k, '-', '+'];
      case 'list':
        return ['lrange', k, '0', '-1'];
      default:
        return ['get', k];
    }
  });
  const values = ((await redis.pipeline(read).exec()) ?? []).map(([, v]) => v);
  const redisState = Object.fromEntries(keys.map((k, i) => [k, [types[i], types[i] === 'set' ? [...(values[i] as string[])].sort() : values[i]]]));
  let sql = everyRowSql.get(pg);
  if (!sql) {
    const { rows: tables } = await pg.query<{ table_name: string }>(
      `SELECT tablename AS table_name FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'pgmigrations' ORDER BY 1`,
    );
    sql = tables.map(({ table_name }) => `SELECT '${table_name}' AS t, row_to_json(x)::text AS j FROM "${table_name}" x`).join(' UNION ALL ');
    everyRowSql.set(pg, sql);
  }
  const { rows } = await pg.query<{ t: string; j: string }>(sql);
  const tables = [...new Set(sql.match(/'[a-z_]+' AS t/g)!.map((m) => m.slice(1, m.indexOf("'", 1))))].map((table_name) => ({ table_name }));
  const pgState: Record<string, string[]> = Object.fromEntries(tables.map(({ table_name }) => [table_name, [] as string[]]));
  for (const r of rows) pgState[r.t]!.push(r.j);
  for (const t of Object.values(pgState)) t.sort();
  return { redis: redisState, pg: pgState };
}
export type StateSnapshot = Awaited<ReturnType<typeof snapshotState>>;

/** A token with any role (gate scanners have role "gate"). */
export const roleToken = (userId: string, role: string, ttlSeconds = 3600) =>
  sign({ sub: userId, role, exp: Math.floor(Date.now() / 1000) + ttlSeconds }, TEST_JWT_SECRET, 'HS256');

/** The JWTs the security tests send: the good ones, and every way of being bad. */
export async function badTokens(userId = 'ann') {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const good = await token(userId);
  const [h, p] = good.split('.') as [string, string];
  return {
    'an expired token (past the 30 s tolerance)': await sign({ sub: userId, exp: now - 120 }, TEST_JWT_SECRET, 'HS256'),
    'an unsigned token (alg none)': `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: userId, exp: now + 600 })}.`,
    'alg none with the real signature': `${enc({ alg: 'none', typ: 'JWT' })}.${p}.${good.split('.')[2]}`,
    'a token signed with another key': await sign({ sub: userId, exp: now + 600 }, 'another-secret-entirely-0123456789', 'HS256'),
    'a token with a tampered payload': `${h}.${enc({ sub: 'root', role: 'admin', exp: now + 600 })}.${good.split('.')[2]}`,
    'a token without exp': await sign({ sub: userId }, TEST_JWT_SECRET, 'HS256'),
    'a token not yet valid (nbf in an hour)': await sign({ sub: userId, exp: now + 7200, nbf: now + 3600 }, TEST_JWT_SECRET, 'HS256'),
    'HS512 with the right secret (only HS256 is allowed)': await sign({ sub: userId, exp: now + 600 }, TEST_JWT_SECRET, 'HS512'),
    'a subject that is not a user id': await sign({ sub: 'a{b}:c', exp: now + 600 }, TEST_JWT_SECRET, 'HS256'),
    'garbage': 'not.a.jwt',
    'an empty bearer': '',
  } as const;
}

/**
 * The world the API tests run against: an on-sale event (general admission and seats), one with a waiting room, one
 * that starts within the refund cutoff, one only the admin's queue settings touch; bookings in the states the
 * endpoints care about (all recorded in Postgres), a place in line, and tokens for each role.
 */
export async function apiWorld(engine: Engine, clock: FakeClock) {
  const T0 = clock.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  const ev: EventWithAvailability = await engine.createEvent({ ...seatedEvent([{ id: 'A', rows: 4, seatsPerRow: 10 }], 2000), maxTicketsPerUser: 100 });
  const queued = await engine.createEvent({
    ...gaEvent(500), name: 'Queued', salesOpenAt: iso(T0 - 60_000), maxTicketsPerUser: 100,
    queue: { enabled: true, opensAt: iso(T0 - 120_000), admissionRatePerSecond: 50, passTtlSeconds: 600 },
  });
  const soon = await engine.createEvent({ ...gaEvent(50), name: 'Soon', startsAt: iso(T0 + 6 * 3600_000), maxTicketsPerUser: 100 });
  const adminOnly = await engine.createEvent({ ...gaEvent(10), name: 'Admin playground' });
  const u = (s: string) => s as UserId;
  const book = async (user: string, eventId = ev.id, n = 1) =>
    (await engine.bookings.create({ userId: u(user), eventId, tierId: eventId === ev.id ? ev.tiers[1]!.id : undefined, ticketCount: n })).reservation.bookingId as BookingId;
  const paid = async (user: string, eventId = ev.id) => {
    const id = await book(user, eventId);
    await drain(engine, eventId); // the booking recorded (the persist worker's job), so the payment's row may reference it
    await engine.payments.pay({ bookingId: id, userId: u(user), paymentMethodId: 'pm_card_visa' });
    await drain(engine, eventId); // and its sale (BookingConfirmed) recorded: CONFIRMED in Postgres
    return id;
  };
  const annReserved = await book('ann');
  const annPaid = await paid('ann');
  const annPaidToRefund = await paid('ann');
  const bobReserved = await book('bob');
  const bobPaid = await paid('bob');
  const reviewPaid = await paid('ann', soon.id);
  await engine.refunds.request(reviewPaid, u('ann'), 'cannot come'); // waits for an admin (within the cutoff)
  for (const e of [ev, queued, soon, adminOnly]) await drain(engine, e.id);
  const annPlace = (await engine.waitingRoom.join(queued.id, u('ann'))).status.queueId;
  const bobPlace = (await engine.waitingRoom.join(queued.id, u('bob'))).status.queueId;
  const tokens = {
    ann: await token('ann'),
    bob: await token('bob'),
    admin: await token('root', { admin: true }),
    gate: await roleToken('scanner', 'gate'),
  };
  return { ev, queued, soon, adminOnly, ids: { annReserved, annPaid, annPaidToRefund, bobReserved, bobPaid, reviewPaid, annPlace, bobPlace }, tokens };
}
export type ApiWorld = Awaited<ReturnType<typeof apiWorld>>;

/** fetch with a raw body; the answer's text and headers (a stream is read for at most `streamMs`). */
export async function send(
  url: string,
  r: { method: string; path: string; headers?: Record<string, string>; body?: string | undefined },
  o: { streamMs?: number } = {},
) {
  const ctl = new AbortController();
  const res = await fetch(url + r.path, { method: r.method, headers: r.headers ?? {}, body: r.body, signal: ctl.signal, redirect: 'manual' });
  let text = '';
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    const reader = res.body!.getReader();
    const timer = setTimeout(() => ctl.abort(), o.streamMs ?? 200);
    try {
      const { value } = await reader.read();
      text = new TextDecoder().decode(value);
    } catch {
      /* aborted */
    } finally {
      clearTimeout(timer);
      ctl.abort();
    }
  } else {
    text = await res.text();
  }
  return { status: res.status, headers: res.headers, text };
}

/** A path template with its ids filled in (well-formed ids of nothing by default; not digit runs, which the card
 *  filter may take for card numbers). */
export const fill = (path: string, ids: { eventId?: string; bookingId?: string; queueId?: string }) =>
  path.replace('{eventId}', ids.eventId ?? 'ev_nothingheree').replace('{bookingId}', ids.bookingId ?? 'bk_nothingheree_nothingherenothi').replace('{queueId}', ids.queueId ?? 'q_nothingheree_0123456789abcdef');
