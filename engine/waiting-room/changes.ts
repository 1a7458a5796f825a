import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { RedisClient } from '../../platform/redis.js';
import type { EventId, Namespace } from '../ids.js';
import { eventKeys } from '../keys.js';

/**
 * Pushes "this event's waiting room changed" from the admission worker to every API process, so a status stream
 * re-reads its person's status at once instead of on a timer (issue 12 item 5). Redis pub/sub on one channel per
 * event (`eventKeys().wrNotify`): a message carries no data, it only says "read again"; a lost message costs a
 * stream nothing but its fallback timer. The subscriber connection is opened when the first stream waits and
 * closed when the last one is done, so a process without streams holds no extra connection.
 */
export function publishChange(redis: RedisClient, ns: Namespace, eventId: EventId): Promise<number> {
  return redis.publish(eventKeys(ns, eventId).wrNotify, '1');
}

export type ChangeListener = {
  /**
   * Resolves at once if the waiting room changed since the last call (or since open), else when it changes, after
   * `maxMs`, or when `stop` resolves, whichever comes first.
   */
  next(maxMs: number, stop?: Promise<unknown>): Promise<'changed' | 'timeout' | 'stopped'>;
  close(): void;
};

export type ChangeFeed = {
  /** Starts listening to one event's changes (close it when done). */
  open(eventId: EventId): ChangeListener;
  /** Events listened to (for tests). */
  listening(): number;
};

export function createChangeFeed(redis: RedisClient, ns: Namespace): ChangeFeed {
  const bus = new EventEmitter().setMaxListeners(0);
  const counts = new Map<string, number>();
  let sub: RedisClient | null = null;

  function subscriber(): RedisClient {
    if (sub) return sub;
    // a subscriber queues its SUBSCRIBE until connected and has no command timeout (it waits by design)
    const s = redis instanceof Redis ? redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined }) : redis.duplicate();
    s.on('message', (channel: string) => bus.emit(channel));
    s.on('error', () => {}); // a stream falls back to its timer while the connection is away
    sub = s;
    return s;
  }

  async function retain(channel: string) {
    const n = (counts.get(channel) ?? 0) + 1;
    counts.set(channel, n);
    if (n === 1) await subscriber().subscribe(channel).catch(() => {});
  }

  function release(channel: string) {
    const n = (counts.get(channel) ?? 1) - 1;
    if (n > 0) return void counts.set(channel, n);
    counts.delete(channel);
    if (!sub) return;
    if (counts.size === 0) {
      const s = sub;
      sub = null;
      s.disconnect();
    } else void sub.unsubscribe(channel).catch(() => {});
  }

  return {
    open(eventId) {
      const channel = eventKeys(ns, eventId).wrNotify;
      let dirty = false;
      let wake: (() => void) | undefined;
      const onMessage = () => {
        dirty = true;
        wake?.();
      };
      bus.on(channel, onMessage);
      const ready = retain(channel);
      let closed = false;
      return {
        async next(maxMs, stop) {
          await ready;
          if (dirty) {
            dirty = false;
            return 'changed';
          }
          let timer: NodeJS.Timeout | undefined;
          try {
            return await Promise.race([
              new Promise<'changed'>((resolve) => (wake = () => resolve('changed'))),
              new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), maxMs))),
              ...(stop ? [stop.then(() => 'stopped' as const)] : []),
            ]);
          } finally {
            clearTimeout(timer);
            wake = undefined;
            dirty = false;
          }
        },
        close() {
          if (closed) return;
          closed = true;
          bus.off(channel, onMessage);
          release(channel);
        },
      };
    },
    listening: () => counts.size,
  };
}
