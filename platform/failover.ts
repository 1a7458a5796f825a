import { Redis } from 'ioredis';
import type { RedisClient } from './redis.js';

/** The store whose primary changed under a process. */
export type FailoverStore = 'postgres' | 'redis';

/** One failover a process noticed: `from` and `to` name the primary before and after (host:port, and the Redis run id). */
export type Failover = { store: FailoverStore; from: string; to: string; atMs: number };

/**
 * Where a process's failovers are told: the Postgres pool (platform/pg.ts, `onPrimaryChange`) and the Redis watch
 * below emit; the reconcile worker listens (it reconciles at once and repairs what a Redis failover lost).
 */
export function createFailoverSignals() {
  const listeners = new Set<(f: Failover) => void>();
  return {
    emit(f: Failover): void {
      for (const l of listeners) {
        try {
          l(f);
        } catch {
          /* a listener's error is its own */
        }
      }
    },
    /** Listens; returns the function that stops listening. */
    on(l: (f: Failover) => void): () => void {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
  };
}
export type FailoverSignals = ReturnType<typeof createFailoverSignals>;

const field = (info: string, name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();

/**
 * Notices when `client` talks to another Redis server process than before: the `run_id` of `INFO server` changed. That
 * is a Sentinel failover (ioredis reconnected to the promoted replica) or a restart of the same server; either may have
 * lost writes the old process acknowledged (asynchronous replication, AOF `everysec`). Asked on every `ready` (each
 * reconnect) and by `check()` (the reconcile worker asks on every pass, in case a reconnect went unnoticed). The first
 * answer is the baseline, not a failover. Redis Cluster clients are not watched (no single primary): `check` is a no-op.
 */
export function watchRedisServer(client: RedisClient, signals: FailoverSignals, now: () => number = Date.now) {
  let known: { runId: string; addr: string } | undefined;
  let chain: Promise<void> = Promise.resolve();
  const look = async (): Promise<void> => {
    if (!(client instanceof Redis)) return;
    const info = await client.info('server');
    const runId = field(info, 'run_id');
    if (!runId) return;
    const addr = `${client.stream?.remoteAddress ?? client.options.host ?? '?'}:${field(info, 'tcp_port') ?? client.options.port ?? '?'}`;
    const before = known;
    known = { runId, addr };
    if (before && before.runId !== runId) {
      signals.emit({ store: 'redis', from: `${before.addr} (run ${before.runId.slice(0, 8)})`, to: `${addr} (run ${runId.slice(0, 8)})`, atMs: now() });
    }
  };
  /** One look at a time, in order (two looks at once could both see the old run id and tell one failover twice). */
  const check = (): Promise<void> => (chain = chain.catch(() => {}).then(look));
  const onReady = () => void check().catch(() => {});
  client.on('ready', onReady);
  return {
    check,
    stop: () => void client.off('ready', onReady),
  };
}
export type RedisServerWatch = ReturnType<typeof watchRedisServer>;
