import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';

/**
 * The client's IP address, trusting `hops` reverse proxies, counted from the right as Express's `trust proxy = n`
 * does. The chain is X-Forwarded-For's entries followed by the socket's address; each trusted proxy appended the
 * address it saw, so the client is the entry `hops` places left of the socket. Entries further left were written by
 * the client and are never believed. With 0 hops (no proxy) it is the socket's address; with fewer entries than
 * hops it is the leftmost one (as Express).
 */
export function clientIp(c: Context, hops: number): string {
  const socket = getConnInfo(c).remote.address ?? 'unknown';
  if (hops <= 0) return socket;
  const forwarded = (c.req.header('x-forwarded-for') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const chain = [...forwarded, socket];
  return chain[Math.max(0, chain.length - 1 - hops)]!;
}
