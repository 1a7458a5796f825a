import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { loadCommands } from '../lua/commands.js';

export type RedisClient = Redis | Cluster;

export type RedisRole =
  /** request path: fail fast when Redis is away, so the API answers 503 instead of queueing */
  | 'api'
  /** background loops and BullMQ workers: wait for Redis to come back */
  | 'worker';

export type RedisSettings = {
  url: string;
  clusterNodes?: string;
  /** Comma-separated host:port of Redis Sentinels (REDIS_SENTINELS): the client asks them where the primary is. */
  sentinels?: string;
  /** The primary's name at the Sentinels (REDIS_SENTINEL_NAME). */
  sentinelName?: string;
  commandTimeoutMs?: number;
  /** After every state-changing script, `WAIT` for this many replicas (REDIS_WAIT_REPLICAS; 0 = no WAIT). */
  waitReplicas?: number;
  /** How long that WAIT may take (REDIS_WAIT_TIMEOUT_MS) before the call fails with ReplicaWaitError. */
  waitTimeoutMs?: number;
};

/**
 * The scripts that change a booking or an event's inventory: with REDIS_WAIT_REPLICAS set, each is followed by a
 * `WAIT` before its answer reaches the caller, so an acknowledged hold or payment is on a replica when the buyer hears
 * of it. (Waiting-room, rate-limit and lease scripts are not: losing them in a failover costs a retry, not a sale.)
 */
export const DURABLE_SCRIPTS = [
  'armEvent', 'holdGeneral', 'holdSeats', 'holdBest', 'releaseHold', 'expireHold', 'confirmHold', 'payHold', 'retakeHold', 'refundHold',
  'restoreHold',
] as const;

/** No replica confirmed a state-changing script within REDIS_WAIT_TIMEOUT_MS: the change is on the primary only. A 503:
 *  the caller retries with the same Idempotency-Key, which replays the change and waits again. */
export class ReplicaWaitError extends Error {
  constructor(readonly wanted: number, readonly got: number, timeoutMs: number) {
    super(`Redis WAIT: ${got} of ${wanted} replica(s) confirmed within ${timeoutMs} ms`);
    this.name = 'ReplicaWaitError';
  }
}

/** ioredis options that find the primary through Sentinel (and follow its +switch-master), or {} without sentinels. */
export function sentinelOptions(s: RedisSettings): RedisOptions {
  if (!s.sentinels) return {};
  return {
    sentinels: hostPorts(s.sentinels),
    name: s.sentinelName ?? 'floodgate',
    // (ioredis' failoverDetector is left off: in our Sentinel failover test, with it on, a client ended up closed for good)
    // keep asking the Sentinels during a failover (ioredis' default gives up after a few tries)
    sentinelRetryStrategy: (n: number) => Math.min(50 + n * 50, 1_000),
    retryStrategy: (n: number) => Math.min(25 + n * 25, 500),
  };
}

/** A Redis (or Redis Cluster, or Sentinel-watched Redis) client with the Floodgate scripts registered. Never uses `keyPrefix`. */
export async function createRedis(s: RedisSettings, role: RedisRole): Promise<RedisClient> {
  const opts: RedisOptions =
    role === 'api'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: s.commandTimeoutMs ?? 1000, enableAutoPipelining: true }
      : { maxRetriesPerRequest: null };
  const client: RedisClient = s.clusterNodes
    ? new Cluster(hostPorts(s.clusterNodes), { redisOptions: opts, enableOfflineQueue: role !== 'api' })
    : s.sentinels
      ? new Redis({ ...opts, ...sentinelOptions(s), lazyConnect: true })
      : new Redis(s.url, { ...opts, lazyConnect: true });
  await loadCommands(client);
  if (client instanceof Redis && s.waitReplicas) waitAfterScripts(client, s.waitReplicas, s.waitTimeoutMs ?? 100);
  if (client instanceof Redis) await client.connect();
  else await waitReady(client);
  return client;
}

/**
 * Wraps each of DURABLE_SCRIPTS: the script, then `WAIT replicas timeoutMs` on the same connection (it covers every
 * write this connection made before it); fewer confirmations than asked → ReplicaWaitError instead of the reply.
 */
function waitAfterScripts(client: Redis, replicas: number, timeoutMs: number): void {
  type Fn = (this: unknown, ...args: unknown[]) => Promise<unknown>;
  const c = client as unknown as Record<string, Fn>;
  for (const name of DURABLE_SCRIPTS) {
    const script = c[name]!;
    c[name] = async function (this: unknown, ...args: unknown[]) {
      // ioredis copies the client's script functions onto its (auto-)pipelines: there, queue the plain script
      if (this !== client) return script.apply(this, args);
      const reply = await script.apply(client, args);
      const got = await client.wait(replicas, timeoutMs);
      if (got < replicas) throw new ReplicaWaitError(replicas, got, timeoutMs);
      return reply;
    };
  }
}

const hostPorts = (nodes: string) =>
  nodes.split(',').map((hp) => {
    const [host, port] = hp.trim().split(':');
    return { host: host!, port: Number(port) };
  });

function waitReady(c: Cluster): Promise<void> {
  return new Promise((resolve, reject) => {
    if (c.status === 'ready') return resolve();
    c.once('ready', () => resolve());
    c.once('error', reject);
  });
}

/** A connection for BullMQ queues and workers (no offline-queue limits: BullMQ waits for Redis itself). */
export function createBullConnection(s: RedisSettings): RedisClient {
  if (s.clusterNodes) {
    return new Cluster(hostPorts(s.clusterNodes), { redisOptions: { maxRetriesPerRequest: null } });
  }
  if (s.sentinels) return new Redis({ maxRetriesPerRequest: null, ...sentinelOptions(s) });
  return new Redis(s.url, { maxRetriesPerRequest: null });
}

/** Every key matching `pattern`, on every master of a Cluster (SCAN on a Cluster client would ask one node only). */
export async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}
