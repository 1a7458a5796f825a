import { createVerifier, TokenError } from 'fast-jwt';
import { getCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import { isUserId, type UserId } from '../../engine/ids.js';
import type { AppEnv, AuthUser } from '../env.js';
import { problem } from '../problem.js';
import { CSRF_HEADER, SESSION_COOKIE, csrfMatches, csrfTokenFor, isSafeMethod } from './session.js';

type Claims = { sub?: unknown; role?: unknown; exp?: unknown; nbf?: unknown; email?: unknown };

/** The clock tolerance on `exp` and `nbf`, as fast-jwt applies it. */
const CLOCK_TOLERANCE_MS = 30_000;

/** A verified token's user and the window in which it is valid (ms, tolerance included). */
type Verified = { user: AuthUser; fromMs: number; untilMs: number };

/**
 * Verified tokens, for their lifetime: a bounded LRU keyed by the token itself (a Map lookup, no hashing, no
 * signature check, no claims object per request; a buyer sends the same token on every request of an on-sale).
 * Only tokens that passed verification are kept, so a forged or altered token (another string) is always verified;
 * a kept token is answered only inside its validity window and dropped after. Tokens are never logged.
 */
export function createTokenCache(max = 50_000) {
  const entries = new Map<string, Verified>();
  return {
    get(token: string, nowMs: number): AuthUser | undefined {
      const hit = entries.get(token);
      if (!hit) return undefined;
      entries.delete(token);
      if (nowMs >= hit.untilMs || nowMs < hit.fromMs) return undefined; // verified again: the verifier says why
      entries.set(token, hit); // most recently used last
      return hit.user;
    },
    set(token: string, v: Verified): void {
      entries.set(token, v);
      if (entries.size > max) entries.delete(entries.keys().next().value!);
    },
    get size() {
      return entries.size;
    },
  };
}

/**
 * Bearer JWT auth: HS256 with JWT_SECRET, claims `sub` (user id) and `exp` required, optional `role` ("admin", or
 * "gate" for ticket scanners),
 * 30 s clock tolerance. Missing, malformed, expired, unsigned (alg none) or wrongly signed tokens get 401.
 * fast-jwt verifies synchronously with node:crypto; verified tokens are kept for their lifetime (createTokenCache),
 * so the signature is checked once per token, not once per request.
 */
export function createAuth(jwtSecret: string, o: { cacheSize?: number } = {}) {
  const verify = createVerifier({
    key: jwtSecret,
    algorithms: ['HS256'],
    requiredClaims: ['sub', 'exp'],
    clockTolerance: CLOCK_TOLERANCE_MS,
    cache: false,
  });
  const verified = createTokenCache(o.cacheSize);
  /** The token's user, or why it is refused. */
  const authenticate = (token: string): AuthUser | string => {
    const now = Date.now();
    const cached = verified.get(token, now);
    if (cached) return cached;
    let claims: Claims;
    try {
      claims = verify(token) as Claims;
    } catch (err) {
      return err instanceof TokenError && err.code === TokenError.codes.expired ? 'the token has expired' : 'the token is invalid';
    }
    if (typeof claims.sub !== 'string' || !isUserId(claims.sub)) return 'the token has no valid subject';
    const user: AuthUser = Object.freeze({
      id: claims.sub as UserId,
      admin: claims.role === 'admin',
      gate: claims.role === 'admin' || claims.role === 'gate',
      ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
    });
    verified.set(token, {
      user,
      fromMs: typeof claims.nbf === 'number' ? claims.nbf * 1000 - CLOCK_TOLERANCE_MS : 0,
      untilMs: (claims.exp as number) * 1000 + CLOCK_TOLERANCE_MS,
    });
    return user;
  };
  /**
   * `query`: also accept the token as `?access_token=` (RFC 6750 2.3), for EventSource, which cannot set headers.
   * Without a bearer token, the web session's cookie (SESSION_COOKIE) is accepted; a state-changing request made with
   * the cookie must also send the session's CSRF token in X-CSRF-Token (403 `/problems/csrf` otherwise), so another
   * site cannot act with a buyer's cookie.
   */
  const middleware = (opts: { admin?: boolean; gate?: boolean; query?: boolean } = {}) =>
    createMiddleware<AppEnv>(async (c, next) => {
      const header = c.req.header('authorization') ?? '';
      const deny = (detail: string) =>
        problem(c, 401, { type: '/problems/unauthorized', title: 'Unauthorized', detail }, { 'www-authenticate': 'Bearer' });
      let token = header.startsWith('Bearer ') ? header.slice(7) : opts.query ? c.req.query('access_token') : undefined;
      const fromCookie = !token && !header ? getCookie(c, SESSION_COOKIE) : undefined;
      token ||= fromCookie;
      if (!token) return deny('send Authorization: Bearer <token>, or sign in');
      const user = authenticate(token);
      if (typeof user === 'string') return deny(user);
      if (fromCookie && !isSafeMethod(c.req.method) && !csrfMatches(jwtSecret, fromCookie, c.req.header(CSRF_HEADER))) {
        return problem(c, 403, { type: '/problems/csrf', title: 'CSRF token missing or wrong', detail: `send the page's CSRF token in ${CSRF_HEADER}` });
      }
      if (opts.admin && !user.admin) {
        return problem(c, 403, { type: '/problems/forbidden', title: 'Forbidden', detail: 'this needs an admin token' });
      }
      if (opts.gate && !user.gate) {
        return problem(c, 403, { type: '/problems/forbidden', title: 'Forbidden', detail: 'this needs a gate (or admin) token' });
      }
      c.set('user', user);
      await next();
    });
  return Object.assign(middleware, {
    /** The token's user, or why it is refused (the web pages read their session with it). */
    authenticate,
    /** The CSRF token of a session token. */
    csrfFor: (sessionToken: string) => csrfTokenFor(jwtSecret, sessionToken),
    /** Whether `given` is the CSRF token of `sessionToken`. */
    csrfMatches: (sessionToken: string, given: string | undefined) => csrfMatches(jwtSecret, sessionToken, given),
  });
}
export type Auth = ReturnType<typeof createAuth>;
