import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { loadCommands } from '../lua/commands.js';

export type RedisClient = Redis | Cluster;

export type RedisRole =
  /** request path: fail fast when Redis is away, so the API answers 503 instead of queueing */
  | 'api'
  /** background loops and BullMQ workers: wait for Redis to come back */
  | 'worker';

export type RedisSettings = { url: string; clusterNodes?: string; commandTimeoutMs?: number };

/** A Redis (or Redis Cluster) client with the Floodgate scripts registered. Never uses `keyPrefix`. */
export async function createRedis(s: RedisSettings, role: RedisRole): Promise<RedisClient> {
  const opts: RedisOptions =
    role === 'api'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: s.commandTimeoutMs ?? 1000, enableAutoPipelining: true }
      : { maxRetriesPerRequest: null };
  const client: RedisClient = s.clusterNodes
    ? new Cluster(clusterSeeds(s.clusterNodes), { redisOptions: opts, enableOfflineQueue: role !== 'api' })
    : new Redis(s.url, { ...opts, lazyConnect: true });
  await loadCommands(client);
  if (client instanceof Redis) await client.connect();
  else await waitReady(client);
  return client;
}

const clusterSeeds = (nodes: string) =>
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
    return new Cluster(clusterSeeds(s.clusterNodes), { redisOptions: { maxRetriesPerRequest: null } });
  }
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
