import { createHash, randomBytes } from 'node:crypto';
import type { EngineDeps } from './deps.js';
import { DomainError } from './errors.js';
import type { UserId } from './ids.js';
import { globalKeys } from './keys.js';

/** How long an e-mailed sign-in link works. */
export const SIGN_IN_LINK_TTL_MS = 15 * 60_000;

/** What a sign-in link stands for, stored under the hash of its token (the token itself is never stored). */
type LinkRecord = { email: string; next: string; expiresAtMs: number };

/** The buyer id of an e-mail address: stable, fits USER_ID, and does not show the address. */
export function userIdOfEmail(email: string): UserId {
  const digest = createHash('sha256').update(`floodgate-user|${email.trim().toLowerCase()}`).digest('base64url');
  return `u_${digest.slice(0, 24)}` as UserId;
}

/** A path on this site to return to after signing in ("/..." but never "//host"): anything else is "/". */
export function safeNext(next: string | undefined): string {
  return next && /^\/(?![/\\])[\x21-\x7e]{0,500}$/.test(next) ? next : '/';
}

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');
const invalid = () => new DomainError('SIGN_IN_LINK_INVALID', 'this sign-in link is not valid any more: ask for a new one', { field: 'token' });

/**
 * Passwordless sign-in: `issue` makes a one-time link token for an e-mail address (256 random bits, kept in Redis by
 * its SHA-256 with a deadline), `redeem` takes it back exactly once (GETDEL: two concurrent redeems cannot both
 * win) and refuses it after its deadline (the engine's clock decides; the key's PX is only garbage collection).
 */
export function createSignIn(d: Pick<EngineDeps, 'redis' | 'ns' | 'clock'>, o: { ttlMs?: number } = {}) {
  const keys = globalKeys(d.ns);
  const ttlMs = o.ttlMs ?? SIGN_IN_LINK_TTL_MS;
  return {
    ttlMs,
    async issue(email: string, next?: string): Promise<{ token: string; userId: UserId; expiresAtMs: number }> {
      const token = randomBytes(32).toString('base64url');
      const normalized = email.trim().toLowerCase();
      const expiresAtMs = d.clock.now() + ttlMs;
      const record: LinkRecord = { email: normalized, next: safeNext(next), expiresAtMs };
      await d.redis.set(keys.signInLink(hashOf(token)), JSON.stringify(record), 'PX', ttlMs);
      return { token, userId: userIdOfEmail(normalized), expiresAtMs };
    },
    /** The link's buyer, once; SIGN_IN_LINK_INVALID when unknown, used or expired. */
    async redeem(token: string): Promise<{ userId: UserId; email: string; next: string }> {
      if (!/^[A-Za-z0-9_-]{43}$/.test(token)) throw invalid();
      const raw = await d.redis.getdel(keys.signInLink(hashOf(token)));
      if (raw === null) throw invalid();
      const r = JSON.parse(raw) as LinkRecord;
      if (d.clock.now() >= r.expiresAtMs) throw invalid();
      return { userId: userIdOfEmail(r.email), email: r.email, next: r.next };
    },
  };
}
export type SignIn = ReturnType<typeof createSignIn>;
