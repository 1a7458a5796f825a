import type { EngineDeps } from './deps.js';
import { DomainError } from './errors.js';
import type { UserId } from './ids.js';
import { globalKeys } from './keys.js';

/*
 * Idempotency records: the two formats, written down here once (keys are built in engine/keys.ts).
 *
 * 1. The hold scripts' record, `eventKeys(ns, e).idem(userId, key)`, a STRING PX idempotencyTtlMs, written by
 *    commitHold in lua/includes/holdCommon.lua (only when the request had an Idempotency-Key) and read by its
 *    replayIdempotent; a rebuild writes it again from Postgres (holdIdempotencyRecord below):
 *
 *        <fingerprint> "\n" <bookingId> "|" <tierId> "|" <ticketCount> "|" <seats "a,b" or ""> "|" <expiresAtMs> "|" <createdAtMs>
 *
 *    The fields are the HELD reply of the hold scripts, replayed as {REPLAYED, fields...} when the fingerprint matches.
 *    A fingerprint is hex (no newline); no field contains "|" (ids are [A-Za-z0-9_-], seats add "," only).
 *    The BookingCreated outbox entry carries the Idempotency-Key (idemKey, passed to the script as an argument) and
 *    the fingerprint (idemFp), so Postgres keeps them for a rebuild.
 *
 * 2. The request record of `createIdempotency` below, `globalKeys(ns).idempotency(scope, userId, key)`, a STRING of
 *    JSON {@link Stored}: `{fp, state: "pending"}` PX 10 s, renewed every 3 s while the first request runs, then
 *    `{fp, state: "done", status, body}` PX idempotencyTtlMs (deleted instead when the answer is not to be kept).
 */

/** The hold scripts' idempotency record (format 1 above) for one booking's first reply. */
export function holdIdempotencyRecord(
  fingerprint: string,
  r: { bookingId: string; tierId: string; ticketCount: number; seats: readonly string[]; expiresAtMs: number; createdAtMs: number },
): string {
  const fields = [r.bookingId, r.tierId, String(r.ticketCount), r.seats.join(','), String(r.expiresAtMs), String(r.createdAtMs)];
  return `${fingerprint}\n${fields.join('|')}`;
}

type Stored = { fp: string; state: 'pending' | 'done'; status?: number; body?: unknown };

/** How long a "pending" record outlives a first request that can no longer remove it (its Redis failed over or went
 *  away mid-request, or its process died): the owner renews it every PENDING_RENEW_MS while it runs. It was a fixed
 *  120 s, and the failover test (test/faults/failover.test.ts) showed every retry of such a payment waiting that out. */
const PENDING_MS = 10_000;
const PENDING_RENEW_MS = 3_000;

/**
 * Idempotency-Key for requests that are not a single Redis script (payments): the first request with a key runs; a
 * concurrent one with the same key waits for its answer; later ones replay it (status and body). The same key with
 * another request body is IDEMPOTENCY_KEY_REUSED. Answers marked `store: false` (e.g. "provider unavailable, retry")
 * are not kept, so a retry with the key runs again. Keys are per buyer and kept 24 hours.
 */
export function createIdempotency(d: Pick<EngineDeps, 'redis' | 'ns' | 'config'>) {
  const keyOf = globalKeys(d.ns).idempotency;
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
      const claimed = await d.redis.set(k, JSON.stringify({ fp: fingerprint, state: 'pending' } satisfies Stored), 'PX', PENDING_MS, 'NX');
      if (claimed === 'OK') {
        let out: { status: number; body: T; store: boolean };
        const renew = setInterval(() => void d.redis.pexpire(k, PENDING_MS).catch(() => {}), PENDING_RENEW_MS);
        try {
          out = await run();
        } catch (err) {
          await d.redis.del(k).catch(() => {}); // Redis away: the record lapses within PENDING_MS
          throw err;
        } finally {
          clearInterval(renew);
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
