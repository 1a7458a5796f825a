import { createHmac, timingSafeEqual } from 'node:crypto';
import { createSigner } from 'fast-jwt';
import type { UserId } from '../../engine/ids.js';

/** The session cookie: the buyer's JWT (HttpOnly, SameSite=Lax), set when an e-mailed sign-in link is opened. */
export const SESSION_COOKIE = 'fg_session';
/** The header a script sends with the session's CSRF token on a state-changing API call made with the cookie. */
export const CSRF_HEADER = 'x-csrf-token';
/** The form field that carries the CSRF token on the web app's own forms. */
export const CSRF_FIELD = '_csrf';
/** How long a web session lasts. */
export const SESSION_TTL_SECONDS = 12 * 3600;

/**
 * The session's CSRF token: an HMAC of the session token under JWT_SECRET (a synchronizer token that needs no store).
 * A page of this origin gets it in its HTML; another site can neither read that page nor compute it, and the cookie
 * alone does not carry it.
 */
export function csrfTokenFor(secret: string, sessionToken: string): string {
  return createHmac('sha256', secret).update(`csrf|${sessionToken}`).digest('base64url');
}

/** Whether `given` is the session's CSRF token (constant time). */
export function csrfMatches(secret: string, sessionToken: string, given: string | undefined): boolean {
  if (!given) return false;
  const want = Buffer.from(csrfTokenFor(secret, sessionToken));
  const got = Buffer.from(given);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A buyer's session JWT (HS256, `sub`, `email`, `exp`; no role: admin and gate tokens are never made here). */
export function signSession(secret: string, userId: UserId, email: string, ttlSeconds = SESSION_TTL_SECONDS): string {
  return createSigner({ key: secret, algorithm: 'HS256', expiresIn: ttlSeconds * 1000 })({ sub: userId, email });
}

export const isSafeMethod = (m: string) => m === 'GET' || m === 'HEAD' || m === 'OPTIONS';
