import { assertNever, RateLimitReply } from '../lua/codes.js';
import type { EngineDeps } from './deps.js';
import { DomainError } from './errors.js';
import type { UserId } from './ids.js';
import { globalKeys } from './keys.js';

/** `signin`: sign-in links asked for, per e-mail address (its user id) and per client IP (api/web). */
export type RateLimitGroup = 'hold' | 'pay' | 'join' | 'status' | 'signin' | 'beacon';

/**
 * Fixed-window request limits of one route group: `perUser` requests per buyer and `perIp` per client address in
 * `windowMs` (0 = that limit is off). `arg` is the form the hold scripts take ("<perUser>,<perIp>,<windowMs>"),
 * built once.
 */
export type RateLimits = { readonly perUser: number; readonly perIp: number; readonly windowMs: number; readonly arg: string };

export function rateLimits(perUser: number, perIp: number, windowMs: number): RateLimits {
  return Object.freeze({ perUser, perIp, windowMs, arg: `${perUser},${perIp},${windowMs}` });
}

/**
 * One hold request's place in its limits. The hold script counts it (one round trip for the limit and the hold) and
 * sets `counted`; a request refused before its script ran is counted afterwards with `consume` (see the API's
 * rate-limit middleware), so every hold request counts once.
 */
export type RateLimitCheck = { readonly limits: RateLimits; readonly ip: string; counted: boolean };

/** RATE_LIMITED (429 with Retry-After in the API): the window ends in `retryAfterMs`. */
export function rateLimitedError(retryAfterMs: number): DomainError<'RATE_LIMITED'> {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new DomainError('RATE_LIMITED', `slow down: retry in ${retryAfterSeconds} s`, { retryAfterSeconds });
}

/** Rate limits counted in Redis (lua/rateLimit-1.lua), so every API process shares them. */
export function createRateLimits(d: Pick<EngineDeps, 'redis' | 'ns'>) {
  const keys = globalKeys(d.ns);
  const count = async (key: string, points: number, windowMs: number): Promise<number> => {
    const [code, retryAfterMs] = await d.redis.rateLimit(key, points, windowMs);
    switch (code) {
      case RateLimitReply.ALLOWED:
        return 0;
      case RateLimitReply.RATE_LIMITED:
        return Number(retryAfterMs);
      default:
        return assertNever(code, 'rateLimit');
    }
  };
  return {
    /**
     * Counts one request of `group` for a buyer and a client address (both counters, each its own key: the two calls go
     * out together). Throws RATE_LIMITED when either is over its limit.
     */
    async consume(group: RateLimitGroup, userId: UserId, check: { limits: RateLimits; ip: string }): Promise<void> {
      const { limits: l, ip } = check;
      const [byUser, byIp] = await Promise.all([
        l.perUser > 0 ? count(keys.rateCounter(group, 'u', userId), l.perUser, l.windowMs) : 0,
        l.perIp > 0 ? count(keys.rateCounter(group, 'ip', ip), l.perIp, l.windowMs) : 0,
      ]);
      const wait = Math.max(byUser, byIp);
      if (wait > 0) throw rateLimitedError(wait);
    },
  };
}
export type RateLimiter = ReturnType<typeof createRateLimits>;
