import { createMiddleware } from 'hono/factory';
import { globalKeys } from '../../engine/keys.js';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppEnv, AppDeps } from '../env.js';
import { problem } from '../problem.js';
import { clientIp } from './client-ip.js';

/**
 * Per-user and per-IP request limits for one route group (hold, pay, join, status reads), counted in Redis so every API process
 * shares them (rate-limiter-flexible's atomic Redis limiter). Over the limit: 429 rate-limited with Retry-After and
 * nothing else happens. A limit of 0 is off.
 */
export function rateLimit(deps: AppDeps, group: 'hold' | 'pay' | 'join' | 'status') {
  const cfg = deps.config.rateLimit;
  if (!cfg || (cfg.perUser === 0 && cfg.perIp === 0)) return createMiddleware<AppEnv>(async (_c, next) => next());
  const keys = globalKeys(deps.engine.deps.ns);
  const make = (who: 'u' | 'ip', points: number) =>
    points > 0
      ? new RateLimiterRedis({ storeClient: deps.engine.deps.redis, keyPrefix: keys.rateLimit(group, who), points, duration: cfg.windowSeconds })
      : null;
  const perUser = make('u', cfg.perUser);
  const perIp = make('ip', cfg.perIp);
  return createMiddleware<AppEnv>(async (c, next) => {
    const ip = clientIp(c, cfg.trustProxyHops);
    try {
      await Promise.all([perUser?.consume(c.var.user.id), perIp?.consume(ip)]);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      return problem(
        c,
        429,
        { type: '/problems/rate-limited', title: 'Too many requests', detail: `slow down: retry in ${retryAfter} s` },
        { 'retry-after': String(retryAfter) },
      );
    }
    await next();
  });
}
