/**
 * Replicated servers of the fault suite's own, for the failover tests: a Postgres primary with a streaming standby
 * (`pg_basebackup -R`), and a Redis primary with a replica watched by one Sentinel (`redis-server <conf> --sentinel`).
 * Spare loopback ports and temp dirs as in harness.ts; as root, Postgres runs as the `postgres` OS user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { waitFor } from '../wait.js';
import { exited, freePort, killHard, pgAnswers, pgBin, pgUser, redisAnswers, waitExit } from './harness.js';

/** Every server this module started: SIGKILLed if the test process exits without stopping them (a crashed run). */
const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of started) if (!exited(c)) c.kill('SIGKILL');
});
const track = (c: ChildProcess) => {
  started.add(c);
  c.once('exit', () => started.delete(c));
  return c;
};

// ---------------------------------------------------------------------------------------------------------------------
// Postgres primary + standby

type PgNode = { port: number; root: string; dir: string; child?: ChildProcess; log: string };

export type PgPair = {
  /** PG_HOSTS for the pool: both nodes, whichever is primary. */
  hosts: string;
  urlOf(port: number): string;
  /** The node we made primary last (initially the first). */
  primaryPort(): number;
  standbyPort(): number;
  /** SIGKILL to the primary's postmaster (its backends notice and exit). */
  kill9Primary(): Promise<void>;
  /** `SELECT pg_promote()` on the standby; it is the primary from now on. */
  promoteStandby(): Promise<void>;
  /** A fresh standby of the new primary (`pg_basebackup -R`) on the dead primary's port. */
  rebuildStandby(): Promise<void>;
  stop(): Promise<void>;
};

/**
 * A primary and a streaming standby. `synchronous`: `synchronous_standby_names='*'` on the primary while a standby
 * streams, so a commit returns once the standby has flushed it and a promotion loses no acknowledged commit. A freshly
 * promoted primary has no standby: it runs with '' until rebuildStandby gives it one (Patroni's non-strict
 * synchronous_mode does the same; a strict setting would stop every commit until a standby is back).
 */
export async function startPgPair({ synchronous = true } = {}): Promise<PgPair> {
  const bin = pgBin();
  const as = pgUser();
  const opts = as ? { uid: as.uid, gid: as.gid } : {};
  const top = await mkdtemp(join(tmpdir(), 'fg-fault-pgpair-'));
  if (as) await chmod(top, 0o755);
  const nodes: PgNode[] = [];
  for (let i = 0; i < 2; i++) {
    const root = join(top, `n${i}`);
    await mkdir(root);
    if (as) await chown(root, as.uid, as.gid);
    nodes.push({ port: await freePort(), root, dir: join(root, 'data'), log: '' });
  }
  let primary = 0;
  const urlOf = (port: number) => `postgres://postgres@127.0.0.1:${port}/postgres`;

  const run = async (n: PgNode) => {
    n.log = '';
    const args = ['-D', n.dir, '-p', String(n.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=100',
      '-c', 'wal_level=replica', '-c', 'max_wal_senders=5', '-c', 'hot_standby=on', '-c', 'fsync=off'];
    // a port the killed postmaster's backends still hold is free a moment later: start until it binds
    await waitFor(`postgres on ${n.port}`, async () => {
      if (!n.child || exited(n.child)) {
        n.child = track(spawn(join(bin, 'postgres'), args, { ...opts, cwd: n.root, stdio: ['ignore', 'pipe', 'pipe'] }));
        n.child.stdout!.on('data', (d) => (n.log = (n.log + d).slice(-4000)));
        n.child.stderr!.on('data', (d) => (n.log = (n.log + d).slice(-4000)));
      }
      return pgAnswers(urlOf(n.port));
    }, 30_000, 100);
  };
  /** synchronous_standby_names on the primary (ALTER SYSTEM + reload): '*' once a standby streams, '' while none. */
  const setSync = async (port: number, on: boolean) => {
    const c = new pg.Client({ connectionString: urlOf(port) });
    c.on('error', () => {});
    await c.connect();
    try {
      await c.query(`ALTER SYSTEM SET synchronous_standby_names = '${on ? '*' : ''}'`);
      await c.query('SELECT pg_reload_conf()');
    } finally {
      await c.end().catch(() => {});
    }
  };
  const sh = (cmd: string, args: string[], cwd: string) => {
    const r = spawnSync(join(bin, cmd), args, { ...opts, cwd, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  };
  const basebackup = async (n: PgNode, from: PgNode) => {
    await rm(n.dir, { recursive: true, force: true });
    sh('pg_basebackup', ['-h', '127.0.0.1', '-p', String(from.port), '-U', 'postgres', '-D', n.dir, '-R', '-X', 'stream', '-c', 'fast', '--no-sync'], n.root);
    await run(n);
    // streaming (and, when synchronous, the standby the primary waits for)
    await waitFor('the standby streaming', async () => {
      const c = new pg.Client({ connectionString: urlOf(from.port) });
      c.on('error', () => {});
      try {
        await c.connect();
        const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'`);
        return rows[0]!.n > 0;
      } catch {
        return false;
      } finally {
        await c.end().catch(() => {});
      }
    }, 30_000, 50);
    if (synchronous) await setSync(from.port, true);
  };

  try {
    sh('initdb', ['-D', nodes[0]!.dir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'], nodes[0]!.root);
    await run(nodes[0]!);
    await basebackup(nodes[1]!, nodes[0]!);
  } catch (err) {
    for (const n of nodes) await killHard(n.child);
    await rm(top, { recursive: true, force: true });
    throw err;
  }

  return {
    hosts: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    urlOf,
    primaryPort: () => nodes[primary]!.port,
    standbyPort: () => nodes[1 - primary]!.port,
    async kill9Primary() {
      await killHard(nodes[primary]!.child);
    },
    async promoteStandby() {
      const c = new pg.Client({ connectionString: urlOf(nodes[1 - primary]!.port) });
      c.on('error', () => {});
      await c.connect();
      try {
        const { rows } = await c.query<{ ok: boolean }>('SELECT pg_promote(true, 30) AS ok');
        if (!rows[0]!.ok) throw new Error('pg_promote did not finish');
      } finally {
        await c.end().catch(() => {});
      }
      primary = 1 - primary;
      // no standby until rebuildStandby: commits would wait for one forever (strict); go on asynchronously meanwhile
      if (synchronous) await setSync(nodes[primary]!.port, false);
    },
    async rebuildStandby() {
      await basebackup(nodes[1 - primary]!, nodes[primary]!);
    },
    async stop() {
      for (const n of nodes) {
        if (n.child && !exited(n.child)) {
          n.child.kill('SIGQUIT');
          const done = waitExit(n.child);
          const t = setTimeout(() => n.child?.kill('SIGKILL'), 5000);
          await done;
          clearTimeout(t);
        }
      }
      await rm(top, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Redis primary + replica + Sentinel

export type RedisSentinelSet = {
  /** REDIS_SENTINELS */
  sentinels: string;
  name: string;
  /** The port Sentinel names as the primary now. */
  primaryPort(): Promise<number>;
  /** An admin connection to the node on `port`. */
  admin(port: number): Redis;
  /** SIGKILL to the primary; returns its port. */
  kill9Primary(): Promise<number>;
  /** SIGKILL to the node on `port` (a replica, say). */
  kill9(port: number): Promise<void>;
  /** The nodes that are not the primary now. */
  replicaPorts(): Promise<number[]>;
  /** SIGSTOP / SIGCONT to the node on `port`: stopped, it reads nothing of the replication stream (what the kernel
   *  buffers for it is a few MB; the rest waits in the primary's memory and dies with it). */
  pause(port: number): void;
  resume(port: number): void;
  /** Waits until Sentinel names another node than `oldPort` the primary. */
  waitPromoted(oldPort: number): Promise<number>;
  /** Starts the killed node again (its AOF) as a replica of the current primary, and waits for it to be in sync. */
  restartAsReplica(port: number): Promise<void>;
  stop(): Promise<void>;
};

export async function startRedisSentinel(name = 'fgfail'): Promise<RedisSentinelSet> {
  const top = await mkdtemp(join(tmpdir(), 'fg-fault-sentinel-'));
  const nodes = new Map<number, { dir: string; child?: ChildProcess; admin?: Redis }>();
  const ports = [await freePort(), await freePort()];
  const sentinelPort = await freePort();
  let sentinelChild: ChildProcess | undefined;
  const children: ChildProcess[] = [];
  let log = '';
  const spawnLogged = (args: string[]) => {
    const c = track(spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    c.stdout!.on('data', (d) => (log = (log + d).slice(-4000)));
    c.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
    children.push(c);
    return c;
  };
  const startNode = async (port: number, replicaOf?: number) => {
    const n = nodes.get(port)!;
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', n.dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
      '--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--logfile', '',
      // a returning replica gets its full copy at once (the default waits 5 s for more replicas to share it)
      '--repl-diskless-sync-delay', '0'];
    if (replicaOf) args.push('--replicaof', '127.0.0.1', String(replicaOf));
    n.child = spawnLogged(args);
    const child = n.child;
    await waitFor(`redis-server on ${port}`, async () => {
      if (exited(child)) throw new Error(`redis-server exited: ${log}`);
      return redisAnswers(`redis://127.0.0.1:${port}`);
    }, 15_000, 25);
  };
  const admin = (port: number) => {
    const n = nodes.get(port)!;
    if (!n.admin) {
      n.admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null, lazyConnect: false });
      n.admin.on('error', () => {});
    }
    return n.admin;
  };
  const sentinel = new Redis({ port: sentinelPort, host: '127.0.0.1', maxRetriesPerRequest: null, lazyConnect: true });
  sentinel.on('error', () => {});
  const primaryPort = async () => {
    const [, port] = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string];
    return Number(port);
  };
  /** Whichever node Sentinel names the primary has the other one as an online replica, and Sentinel sees that replica
   *  up (it can fail over again). Sentinel may itself have swapped the two meanwhile: either way is healthy. */
  const healthy = async () => {
    let why = '';
    await waitFor('a primary with an online replica', async () => {
      const p = await primaryPort();
      const info = await admin(p).info('replication');
      const replica = /slave0:ip=[^,]+,port=(\d+),state=online/.exec(info)?.[1];
      if (!/role:master/.test(info) || !replica) return (why = `${p}: ${info}`), false;
      const rs = (await sentinel.call('SENTINEL', 'replicas', name)) as string[][];
      return rs.some((r) => {
        const m = new Map<string, string>();
        for (let i = 0; i + 1 < r.length; i += 2) m.set(r[i]!, r[i + 1]!);
        why = `sentinel: ${JSON.stringify([...m])}`;
        return m.get('port') === replica && m.get('flags') === 'slave' && m.get('master-link-status') === 'ok';
      });
    }, 30_000, 25).catch((err: Error) => {
      throw new Error(`${err.message}\n${why}\n${log}`);
    });
  };
  const stop = async () => {
    sentinel.disconnect();
    for (const n of nodes.values()) n.admin?.disconnect();
    for (const c of children) await killHard(c);
    await rm(top, { recursive: true, force: true });
  };

  try {
    for (const p of ports) {
      const dir = join(top, String(p));
      await mkdir(dir);
      nodes.set(p, { dir });
    }
    await startNode(ports[0]!);
    await startNode(ports[1]!, ports[0]);
    const conf = join(top, 'sentinel.conf');
    await writeFile(conf, [
      `port ${sentinelPort}`, 'bind 127.0.0.1', 'daemonize no', `dir ${top}`,
      `sentinel monitor ${name} 127.0.0.1 ${ports[0]} 1`,
      `sentinel down-after-milliseconds ${name} 1500`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel parallel-syncs ${name} 1`, '',
    ].join('\n'));
    sentinelChild = spawnLogged([conf, '--sentinel']);
    const sc = sentinelChild;
    await waitFor('sentinel', async () => {
      if (exited(sc)) throw new Error(`sentinel exited: ${log}`);
      return redisAnswers(`redis://127.0.0.1:${sentinelPort}`);
    }, 15_000, 25);
    await sentinel.connect();
    // Sentinel has found the replica (INFO of the primary): it can fail over
    await healthy();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    sentinels: `127.0.0.1:${sentinelPort}`,
    name,
    primaryPort,
    admin,
    async kill9Primary() {
      const port = await primaryPort();
      await killHard(nodes.get(port)!.child);
      return port;
    },
    async kill9(port: number) {
      await killHard(nodes.get(port)!.child);
    },
    async replicaPorts() {
      const p = await primaryPort();
      return ports.filter((x) => x !== p);
    },
    pause(port: number) {
      nodes.get(port)!.child!.kill('SIGSTOP');
    },
    resume(port: number) {
      nodes.get(port)!.child!.kill('SIGCONT');
    },
    async waitPromoted(oldPort: number) {
      let now = oldPort;
      await waitFor('Sentinel to promote the replica', async () => (now = await primaryPort()) !== oldPort, 30_000, 25);
      return now;
    },
    async restartAsReplica(port: number) {
      await startNode(port, await primaryPort());
      await healthy();
    },
    stop,
  };
}
