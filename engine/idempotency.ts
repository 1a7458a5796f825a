import type { EngineDeps } from './deps.js';
import { DomainError } from './errors.js';
import type { UserId } from './ids.js';

type Stored = { fp: string; state: 'pending' | 'done'; status?: number; body?: unknown };

/**
 * Idempotency-Key for requests that are not a single Redis script (payments): the first request with a key runs; a
 * concurrent one with the same key waits for its answer; later ones replay it (status and body). The same key with
 * another request body is IDEMPOTENCY_KEY_REUSED. Answers marked `store: false` (e.g. "provider unavailable, retry")
 * are not kept, so a retry with the key runs again. Keys are per buyer and kept 24 hours.
 */
export function createIdempotency(d: Pick<EngineDeps, 'redis' | 'ns' | 'config'>) {
  const keyOf = (scope: string, userId: UserId, key: string) => `${d.ns}:idem-${scope}:${userId}:${key}`;
  return {
    async once<T>(
      scope: string,
      userId: UserId,
      key: string,
      fingerprint: string,
      run: () => Promise<{ status: number; body: T; store: boolean }>,
      waitMs = 30_000,
    ): Promise<{ status: number; body: T; replayed: boolean }> {
      const k = keyOf(scope, userId, key);
      const claimed = await d.redis.set(k, JSON.stringify({ fp: fingerprint, state: 'pending' } satisfies Stored), 'PX', 120_000, 'NX');
      if (claimed === 'OK') {
        let out: { status: number; body: T; store: boolean };
        try {
          out = await run();
        } catch (err) {
          await d.redis.del(k);
          throw err;
        }
        if (out.store) {
          await d.redis.set(k, JSON.stringify({ fp: fingerprint, state: 'done', status: out.status, body: out.body } satisfies Stored), 'PX', d.config.idempotencyTtlMs);
        } else {
          await d.redis.del(k);
        }
        return { status: out.status, body: out.body, replayed: false };
      }
      const until = Date.now() + waitMs;
      for (;;) {
        const raw = await d.redis.get(k);
        if (!raw) return this.once(scope, userId, key, fingerprint, run, Math.max(0, until - Date.now())); // the first gave up
        const s = JSON.parse(raw) as Stored;
        if (s.fp !== fingerprint) {
          throw new DomainError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request', { field: 'Idempotency-Key' });
        }
        if (s.state === 'done') return { status: s.status!, body: s.body as T, replayed: true };
        if (Date.now() > until) throw new DomainError('IDEMPOTENCY_IN_PROGRESS', 'a request with this Idempotency-Key is still running; retry shortly');
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
export type Idempotency = ReturnType<typeof createIdempotency>;
