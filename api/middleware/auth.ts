import { createMiddleware } from 'hono/factory';
import { verify } from 'hono/jwt';
import { isUserId, type UserId } from '../../engine/ids.js';
import type { AppEnv, AuthUser } from '../env.js';
import { problem } from '../problem.js';

/** A small cache of verified tokens: a buyer sends the same token on every request of an on-sale. */
const MAX_CACHED = 50_000;

/**
 * Bearer JWT auth (HS256 with JWT_SECRET; claims sub, optional role "admin", exp required).
 * Missing, malformed, expired, unsigned (alg none) or wrongly signed tokens get 401.
 */
export function auth(opts: { admin?: boolean } = {}) {
  const cache = new Map<string, { user: AuthUser; expMs: number }>();
  return createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(header);
    const deny = (detail: string) =>
      problem(c, 401, { type: '/problems/unauthorized', title: 'Unauthorized', detail }, { 'www-authenticate': 'Bearer' });
    if (!m) return deny('send Authorization: Bearer <token>');
    const token = m[1]!;
    let hit = cache.get(token);
    if (hit && hit.expMs <= Date.now()) {
      cache.delete(token);
      hit = undefined;
    }
    if (!hit) {
      let payload: Awaited<ReturnType<typeof verify>>;
      try {
        payload = await verify(token, c.var.deps.config.jwtSecret, 'HS256');
      } catch {
        return deny('the token is invalid or expired');
      }
      if (typeof payload.sub !== 'string' || !isUserId(payload.sub)) return deny('the token has no valid subject');
      if (typeof payload.exp !== 'number') return deny('the token must expire (exp)');
      hit = { user: { id: payload.sub as UserId, admin: payload.role === 'admin' }, expMs: payload.exp * 1000 };
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(token, hit);
    }
    if (opts.admin && !hit.user.admin) {
      return problem(c, 403, { type: '/problems/forbidden', title: 'Forbidden', detail: 'this needs an admin token' });
    }
    c.set('user', hit.user);
    await next();
  });
}
