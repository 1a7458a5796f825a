import { sign } from 'hono/jwt';
import { isUserId } from '../engine/ids.js';

/** Signs a development JWT with JWT_SECRET (HS256). */
export async function devToken(secret: string, userId: string, opts: { admin?: boolean; ttlSeconds?: number } = {}): Promise<string> {
  if (!isUserId(userId)) throw new Error(`user id must match [A-Za-z0-9_-]{1,64}: ${JSON.stringify(userId)}`);
  const now = Math.floor(Date.now() / 1000);
  return sign(
    { sub: userId, ...(opts.admin ? { role: 'admin' } : {}), iat: now, exp: now + (opts.ttlSeconds ?? 12 * 3600) },
    secret,
    'HS256',
  );
}

