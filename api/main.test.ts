import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../test/env.js';
import { createSchema, dropSchema, newNamespace, unlinkNamespace } from '../test/fixtures.js';
import { waitFor } from '../test/wait.js';

const ROOT = join(import.meta.dirname, '..');

/** A port nothing listens on right now. */
const sparePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

type LogLine = { msg: string; pid?: number; code?: number | null; signal?: string | null; restartInMs?: number; port?: number };

/** api/main.ts with `env`, as its own process; its output (the primary's and the forked processes') as JSON lines. */
function startApiMain(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'api', 'main.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = (): LogLine[] =>
    out.split('\n').flatMap((l) => {
      try {
        return l.startsWith('{') ? [JSON.parse(l) as LogLine] : [];
      } catch {
        return [];
      }
    });
  /** Waits for the `n`th line (1-based) with message `msg` (and matching `where`). */
  const nth = (msg: string, n = 1, where: (l: LogLine) => boolean = () => true) =>
    waitFor(`log line ${JSON.stringify(msg)} #${n}`, () => {
      if (child.exitCode !== null) throw new Error(`api/main.ts exited (${child.exitCode}):\n${out}`);
      return lines().filter((l) => l.msg === msg && where(l))[n - 1];
    }, 60_000, 50);
  return { child, exited, lines, nth, output: () => out };
}

/** The pid owning each established connection to `port` on 127.0.0.1, keyed by the client's port (Linux /proc). */
async function connectionOwners(port: number, pids: number[]): Promise<Map<number, number>> {
  const inodeToClient = new Map<string, number>();
  for (const row of (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1)) {
    const f = row.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '01') continue; // 01: ESTABLISHED
    const local = parseInt(f[1]!.split(':')[1]!, 16);
    const remote = parseInt(f[2]!.split(':')[1]!, 16);
    if (local === port) inodeToClient.set(f[9]!, remote);
  }
  const owners = new Map<number, number>();
  for (const pid of pids) {
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const m = /^socket:\[(\d+)\]$/.exec(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
      const client = m && inodeToClient.get(m[1]!);
      if (client) owners.set(client, pid);
    }
  }
  return owners;
}

/**
 * `n` GET /health at once, each on a connection of its own kept open afterwards (keep-alive), and which process
 * answered each: the owner of the connection's server side when the answer arrived.
 */
async function healthOnConnections(port: number, n: number, workerPids: number[]) {
  const agent = new Agent({ keepAlive: true, maxSockets: n });
  try {
    const answers = await Promise.all(
      Array.from({ length: n }, () =>
        new Promise<{ status: number; clientPort: number }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port, path: '/health', agent }, (res) => {
            res.resume();
            res.once('end', () => resolve({ status: res.statusCode!, clientPort: (req.socket as Socket).localPort! }));
          });
          req.once('error', reject);
          req.end();
        }),
      ),
    );
    // the connections are still open (keep-alive): each is owned by the process that answered on it
    const owners = await connectionOwners(port, workerPids);
    return answers.map((a) => ({ status: a.status, pid: owners.get(a.clientPort) }));
  } finally {
    agent.destroy();
  }
}

const fetchOk = async (url: string) => {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
};

/** The value of a series in a Prometheus text exposition: `name` and every label in `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

describe('api/main.ts with API_PROCESSES=2: a cluster primary and two API processes on one port', () => {
  const ns = newNamespace();
  let api: ReturnType<typeof startApiMain>;
  let port: number;
  let metricsUrl: string;
  let pids: number[];

  beforeAll(async () => {
    await (await createSchema(ns)).end();
    port = await sparePort();
    const metricsPort = await sparePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    api = startApiMain({
      NODE_ENV: 'test', API_PROCESSES: '2', HOST: '127.0.0.1', PORT: String(port), METRICS_PORT: String(metricsPort),
      REDIS_URL: TEST_REDIS_URL, DATABASE_URL: TEST_DATABASE_URL, PG_SCHEMA: ns, KEY_NAMESPACE: ns, LOG_LEVEL: 'info',
    });
    const ready = await api.nth('api listening');
    expect(ready.port).toBe(port);
    pids = api.lines().filter((l) => l.msg === 'api process listening').map((l) => l.pid!);
  }, 120_000);

  afterAll(async () => {
    // a failed test leaves nothing running
    for (const pid of api ? [api.child.pid, ...api.lines().map((l) => l.pid)] : []) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    const r = new Redis(TEST_REDIS_URL);
    await unlinkNamespace(r, ns);
    r.disconnect();
    await dropSchema(ns);
  });

  it('starts two processes besides the primary, and both answer requests on the one port', async () => {
    expect(pids).toHaveLength(2);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(api.child.pid);
    const answers = await healthOnConnections(port, 8, pids);
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    // every connection was answered by one of the two processes, and each of them answered some
    expect(answers.every((a) => a.pid !== undefined && pids.includes(a.pid))).toBe(true);
    expect(new Set(answers.map((a) => a.pid))).toEqual(new Set(pids));
  });

  it('serves on METRICS_PORT the counters of both processes summed, and its own process gauges', async () => {
    // the 8 GET /health of the test before, split over both processes: only their sum is 8
    const text = await (await fetch(metricsUrl)).text();
    expect(sample(text, 'floodgate_http_request_duration_seconds_count', { method: 'GET', route: '/health', status: '200', service: 'api' })).toBe(8);
    expect(sample(text, 'floodgate_cluster_workers', { service: 'api' })).toBe(2);
    expect(sample(text, 'floodgate_cluster_worker_restarts_total', { service: 'api' })).toBe(0);
    // one series per metric, not one per process
    expect(text.match(/^# TYPE floodgate_http_request_duration_seconds histogram$/gm)).toHaveLength(1);
    // the public port has no /metrics
    expect(await fetchOk(`http://127.0.0.1:${port}/metrics`)).toBe(404);
  });

  it('starts a killed process again (logged, with a backoff that grows for one that keeps dying); requests keep being answered', async () => {
    const [victim, survivor] = pids as [number, number];
    process.kill(victim, 'SIGKILL');
    const died = await api.nth('api process exited; starting another', 1, (l) => l.pid === victim);
    expect(died).toMatchObject({ signal: 'SIGKILL', restartInMs: 250 });
    // the primary no longer hands connections to the dead process: every new connection is answered
    for (let i = 0; i < 6; i++) expect(await fetchOk(`http://127.0.0.1:${port}/health`)).toBe(200);
    const second = (await api.nth('api process listening', 3)).pid!;
    expect([victim, survivor]).not.toContain(second);

    // it died again soon after it started: the next restart waits twice as long
    process.kill(second, 'SIGKILL');
    expect(await api.nth('api process exited; starting another', 1, (l) => l.pid === second)).toMatchObject({ restartInMs: 500 });
    const third = (await api.nth('api process listening', 4)).pid!;
    expect([victim, survivor, second]).not.toContain(third);
    pids = [survivor, third];

    const answers = await healthOnConnections(port, 8, pids);
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    expect(new Set(answers.map((a) => a.pid))).toEqual(new Set(pids));
    const text = await (await fetch(metricsUrl)).text();
    expect(sample(text, 'floodgate_cluster_worker_restarts_total', { service: 'api' })).toBe(2);
    expect(sample(text, 'floodgate_cluster_workers', { service: 'api' })).toBe(2);
    expect(alive(victim) || alive(second)).toBe(false);
  });

  it('on SIGTERM: every process finishes the request in flight, then all of them exit cleanly', async () => {
    // a request in flight: its headers sent, half of its body still to come (the API reads the body first)
    const body = JSON.stringify({ eventId: 'ev_000000000000', ticketCount: 1 });
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let reply = '';
    socket.on('data', (d) => (reply += d));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(`POST /api/bookings HTTP/1.1\r\nHost: floodgate\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    socket.write(body.slice(0, 10));
    // the request has reached a process (its connection is owned by one) before the signal
    await waitFor('the connection handed to an API process', async () => (await connectionOwners(port, pids)).has(socket.localPort!), 10_000);

    api.child.kill('SIGTERM');
    await api.nth('SIGTERM received, shutting down', 2);
    // both processes are draining: the one without a request in flight stops; the other waits for it
    await api.nth('api process stopped', 1);
    expect(api.child.exitCode).toBeNull();
    socket.write(body.slice(10));
    await closed;
    expect(reply).toMatch(/^HTTP\/1\.1 401 /); // answered in full: no token
    expect(reply).toContain('"type":"/problems/unauthorized"');

    expect(await api.exited).toBe(0);
    const stopped = api.lines().filter((l) => l.msg === 'api process stopped');
    expect(stopped.map((l) => l.pid).sort()).toEqual([...pids].sort());
    expect(stopped.every((l) => l.code === 0)).toBe(true);
    expect(pids.filter(alive)).toEqual([]);
  });
});

describe('api/main.ts with API_PROCESSES=2 when a process cannot start', () => {
  it('exits 1 after stopping the other process, as a single process that cannot start does (here: PORT is taken)', async ({ onTestFinished }) => {
    const ns = newNamespace();
    await (await createSchema(ns)).end();
    const taken = createServer();
    const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)));
    const api = startApiMain({
      NODE_ENV: 'test', API_PROCESSES: '2', HOST: '127.0.0.1', PORT: String(port),
      REDIS_URL: TEST_REDIS_URL, DATABASE_URL: TEST_DATABASE_URL, PG_SCHEMA: ns, KEY_NAMESPACE: ns, LOG_LEVEL: 'info',
    });
    onTestFinished(async () => {
      for (const pid of [api.child.pid, ...api.lines().map((l) => l.pid)]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      await new Promise((r) => taken.close(r));
      const r = new Redis(TEST_REDIS_URL);
      await unlinkNamespace(r, ns);
      r.disconnect();
      await dropSchema(ns);
    });
    const code = await api.exited;
    expect(code).toBe(1);
    expect(api.lines().some((l) => l.msg === 'api process exited before it was listening')).toBe(true);
    expect(api.output()).toContain('an api process exited before it was listening');
    expect(api.lines().some((l) => l.msg === 'api process listening')).toBe(false);
    // nothing the primary forked is left running
    const forked = [...new Set(api.lines().flatMap((l) => (l.msg.startsWith('api process') && l.pid ? [l.pid] : [])))];
    expect(forked.length).toBeGreaterThan(0);
    expect(forked.filter(alive)).toEqual([]);
  });
});
