import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { migrate } from '../../db/migrate.js';
import { systemClock } from '../../engine/clock.js';
import { DEFAULT_ENGINE_CONFIG } from '../../engine/config.js';
import { asNamespace } from '../../engine/ids.js';
import { createEngine, type Engine, type EngineDeps } from '../../engine/index.js';
import { loadCommands } from '../../lua/commands.js';
import { loadConfig } from '../../platform/config.js';
import { createPool, type Pool } from '../../platform/pg.js';
import { ensureDatabase } from '../../scripts/infra.js';
import { track } from './children.js';

export const ROOT = join(import.meta.dirname, '..', '..');
/** The V8 flags the API runs with in production (see Dockerfile): a larger young generation halves GC time. */
export const API_NODE_FLAGS = [
  '--max-semi-space-size=64',
  // BENCH_CPU_PROF_DIR=<dir>: every API and workers process writes a V8 CPU profile there when it exits
  // (summarise one with `npx tsx bench/lib/cpu-profile.ts <file>`); node refuses --cpu-prof in NODE_OPTIONS
  ...(process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : []),
];
export const say = (msg: string) => console.log(`[bench] ${msg}`);

export type BenchStack = {
  ns: string;
  schema: string;
  databaseUrl: string;
  redisUrl: string;
  jwtSecret: string;
  redis: Redis;
  pool: Pool;
  engine: Engine;
  /** What the engine is built from (namespace, stores, clock, config), for the driver's own reads of Redis and Postgres. */
  deps: EngineDeps;
  /** Environment for server processes, pointing at this stack. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
};

/**
 * A throw-away stack on the configured Redis and Postgres: database `floodgate_bench` (created if missing), a fresh
 * schema and key namespace, removed by cleanup(). Nothing else on those servers is touched.
 */
export async function benchStack(o: { redisUrl?: string; databaseUrl?: string } = {}): Promise<BenchStack> {
  const config = loadConfig({ ...process.env, ...(o.redisUrl ? { REDIS_URL: o.redisUrl } : {}), ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}) });
  const id = randomBytes(4).toString('hex');
  const ns = `bench_${id}`;
  const schema = `bench_${id}`;
  const u = new URL(config.DATABASE_URL);
  // a database of its own, unless one is given explicitly (the driver's own test uses the test database)
  if (!o.databaseUrl) u.pathname = '/floodgate_bench';
  const databaseUrl = u.toString();
  await ensureDatabase(databaseUrl, say);
  await migrate({ databaseUrl, schema });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  await loadCommands(redis);
  const pool = createPool({ url: databaseUrl, schema, max: 10 });
  const deps: EngineDeps = {
    ns: asNamespace(ns),
    redis,
    pg: pool,
    clock: systemClock,
    log: pino({ level: 'warn' }),
    config: { ...DEFAULT_ENGINE_CONFIG, holdTtlMs: 60 * 60_000 },
  };
  const engine = createEngine(deps);
  const env = {
    DATABASE_URL: databaseUrl,
    PG_SCHEMA: schema,
    KEY_NAMESPACE: ns,
    REDIS_URL: config.REDIS_URL,
    JWT_SECRET: config.JWT_SECRET,
    HOLD_TTL_MS: String(60 * 60_000),
    LOG_LEVEL: 'warn',
    // one load generator on one IP: the per-IP limit would measure itself; the per-user limit stays on
    RATE_LIMIT_PER_IP: '0',
  };
  let cleaning: Promise<void> | undefined;
  return {
    ns, schema, databaseUrl, redisUrl: config.REDIS_URL, jwtSecret: config.JWT_SECRET, redis, pool, engine, deps, env,
    // idempotent: the Ctrl-C handler and the run's own finally may both call it; both wait for the same work
    cleanup() {
      cleaning ??= (async () => {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${ns}:*`, 'COUNT', 1000);
          if (keys.length) await redis.unlink(...keys);
          cursor = next;
        } while (cursor !== '0');
        await pool.end();
        const c = new pg.Client({ connectionString: databaseUrl });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
        redis.disconnect();
      })();
      return cleaning;
    },
  };
}

/**
 * Starts `bench/server.ts <mode>` in its own process; resolves with its port once it listens. `processes` > 1: a
 * cluster primary and that many server processes on the port (as API_PROCESSES); `pids` lists them all, the
 * primary first (CPU is measured over all of them).
 */
export async function startServer(
  mode: string,
  env: Record<string, string>,
  o: { processes?: number } = {},
): Promise<{ port: number; metricsPort: number | undefined; child: ChildProcess; pids: number[]; stop(): Promise<void> }> {
  const processes = o.processes ?? 1;
  const child = track(spawn(process.execPath, [...API_NODE_FLAGS, '--import', 'tsx', join(ROOT, 'bench', 'server.ts'), mode, String(processes)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  }));
  const [port, metricsPort, pids] = await new Promise<[number, number | undefined, number[]]>((resolve, reject) => {
    let out = '';
    let listening = false;
    child.stdout!.on('data', (d: Buffer) => {
      // after the port line, the server's own output (its pino log: warnings, errors) goes to this run's stderr
      if (listening) return void process.stderr.write(d);
      out += d;
      const m = /listening (\d+)(?: metrics (\d+))?(?: pids ([\d,]+))?\n/.exec(out);
      if (m) {
        listening = true;
        const rest = out.slice(out.indexOf('\n', m.index) + 1);
        if (rest.trim()) process.stderr.write(rest);
        resolve([Number(m[1]), m[2] ? Number(m[2]) : undefined, m[3] ? m[3].split(',').map(Number) : [child.pid!]]);
      }
    });
    child.once('exit', (code) => reject(new Error(`bench server (${mode}) exited with ${code}`)));
  });
  return {
    port,
    metricsPort,
    child,
    pids,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}

export type LoadResult = {
  title: string;
  connections: number;
  durationSec: number;
  requests: number;
  sent: number;
  throughputRps: number;
  latencyMs: { avg: number; p50: number; p95: number; p99: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statuses: Record<string, number>;
  /** Throughput while every connection was open (a ramp's plateau). */
  plateauRps?: number;
  latencyByStatus?: Record<string, { n: number; p50: number; p95: number; p99: number; max: number }>;
  /** Sum of the ticket counts of every request sent / of those answered 201. */
  ticketsSent?: number;
  ticketsAcknowledged?: number;
  timeline?: { t: number; responses: number; ok: number; soldOut: number; other: number; connections: number }[];
  cpuSeconds?: number;
};

/** Runs the load generator (bench/load.ts, autocannon) in its own process. */
export async function runLoad(input: {
  title: string;
  url: string;
  method: 'GET' | 'POST';
  body?: string;
  tokens?: string[];
  targets?: { path: string; token: string }[];
  bodies?: { body: string; tickets: number }[];
  idempotencyPrefix?: string;
  ramp?: { upSec: number; holdSec: number; downSec: number; steps: number };
  timeoutSec?: number;
  connections: number;
  durationSec: number;
}, o: { onStart?: (pid: number) => void } = {}): Promise<LoadResult> {
  const child = track(spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'load.ts')], { stdio: ['pipe', 'pipe', 'inherit'] }));
  o.onStart?.(child.pid!);
  child.stdin!.end(JSON.stringify(input)); // the input (with thousands of tokens) is too large for argv
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as LoadResult;
}

/** Facts about this machine for the results file. */
export async function machineFacts(redis: Redis, pool: Pool) {
  const info = await redis.info('server');
  const { rows } = await pool.query<{ server_version: string }>('SHOW server_version');
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    postgres: rows[0]?.server_version ?? 'unknown',
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
