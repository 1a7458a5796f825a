import { createVerifier, TokenError } from 'fast-jwt';
import { createMiddleware } from 'hono/factory';
import { isUserId, type UserId } from '../../engine/ids.js';
import type { AppEnv } from '../env.js';
import { problem } from '../problem.js';

type Claims = { sub?: unknown; role?: unknown; exp?: unknown };

/**
 * Bearer JWT auth: HS256 with JWT_SECRET, claims `sub` (user id) and `exp` required, optional `role` ("admin", or
 * "gate" for ticket scanners),
 * 30 s clock tolerance. Missing, malformed, expired, unsigned (alg none) or wrongly signed tokens get 401.
 * fast-jwt verifies synchronously with node:crypto and caches verified tokens (a buyer sends the same token on
 * every request of an on-sale); a cached token is still checked for expiry.
 */
export function createAuth(jwtSecret: string) {
  const verify = createVerifier({
    key: jwtSecret,
    algorithms: ['HS256'],
    requiredClaims: ['sub', 'exp'],
    clockTolerance: 30_000,
    cache: 50_000,
  });
  /** `query`: also accept the token as `?access_token=` (RFC 6750 2.3), for EventSource, which cannot set headers. */
  return (opts: { admin?: boolean; gate?: boolean; query?: boolean } = {}) =>
    createMiddleware<AppEnv>(async (c, next) => {
      const header = c.req.header('authorization') ?? '';
      const deny = (detail: string) =>
        problem(c, 401, { type: '/problems/unauthorized', title: 'Unauthorized', detail }, { 'www-authenticate': 'Bearer' });
      const token = header.startsWith('Bearer ') ? header.slice(7) : opts.query ? c.req.query('access_token') : undefined;
      if (!token) return deny('send Authorization: Bearer <token>');
      let claims: Claims;
      try {
        claims = verify(token) as Claims;
      } catch (err) {
        return deny(err instanceof TokenError && err.code === TokenError.codes.expired ? 'the token has expired' : 'the token is invalid');
      }
      if (typeof claims.sub !== 'string' || !isUserId(claims.sub)) return deny('the token has no valid subject');
      const user = { id: claims.sub as UserId, admin: claims.role === 'admin', gate: claims.role === 'admin' || claims.role === 'gate' };
      if (opts.admin && !user.admin) {
        return problem(c, 403, { type: '/problems/forbidden', title: 'Forbidden', detail: 'this needs an admin token' });
      }
      if (opts.gate && !user.gate) {
        return problem(c, 403, { type: '/problems/forbidden', title: 'Forbidden', detail: 'this needs a gate (or admin) token' });
      }
      c.set('user', user);
      await next();
    });
}
