import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { rateLimits, type RateLimitCheck, type RateLimitGroup } from '../../engine/index.js';
import type { AppEnv, AppDeps } from '../env.js';
import { clientIp } from './client-ip.js';

const pass = createMiddleware<AppEnv>(async (_c, next) => next());

/**
 * Per-user and per-IP request limits for one route group (hold, pay, join, status reads), counted in Redis so every
 * API process shares them (engine.rateLimits; lua/includes/rateLimit). Over the limit: RATE_LIMITED, answered by
 * onError as 429 /problems/rate-limited with Retry-After, and nothing else happens. A limit of 0 is off.
 *
 * Holds cost no round trip of their own: this middleware hands the request's check to the route
 * (`c.get('holdRateLimit')`), the engine passes it to the hold script, which counts it before anything else, in the
 * same call as the hold (on the event's slot: the hold limits count per event). A hold request refused before its
 * script ran (a bad body, an unknown event, …) is counted here afterwards, on the group's own counters, and turns
 * into a 429 when it is over the limit: every request still counts.
 */
export function rateLimit(deps: AppDeps, group: RateLimitGroup) {
  const cfg = deps.config.rateLimit;
  if (!cfg || (cfg.perUser === 0 && cfg.perIp === 0)) return pass;
  const limits = rateLimits(cfg.perUser, cfg.perIp, cfg.windowSeconds * 1000);
  const { engine } = deps;
  const ipOf = (c: Context<AppEnv>) => (cfg.perIp > 0 ? clientIp(c, cfg.trustProxyHops) : '');
  if (group === 'hold') {
    return createMiddleware<AppEnv>(async (c, next) => {
      const check: RateLimitCheck = { limits, ip: ipOf(c), counted: false };
      c.set('holdRateLimit', check);
      await next();
      if (!check.counted) await engine.rateLimits.consume('hold', c.get('user').id, check);
    });
  }
  return createMiddleware<AppEnv>(async (c, next) => {
    await engine.rateLimits.consume(group, c.get('user').id, { limits, ip: ipOf(c) });
    await next();
  });
}
