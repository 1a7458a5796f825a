import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { clientIp } from './client-ip.js';

/** clientIp counts trusted hops from the right, as Express's `trust proxy = n`. */
describe('clientIp', () => {
  const app = new Hono().get('/:hops', (c) => c.text(clientIp(c, Number(c.req.param('hops')))));
  const ip = async (hops: number, xff: string | undefined) => {
    const headers: Record<string, string> = xff === undefined ? {} : { 'x-forwarded-for': xff };
    const res = await app.request(`/${hops}`, { headers }, { incoming: { socket: { remoteAddress: '172.18.0.5', remotePort: 4000, remoteFamily: 'IPv4' } } });
    return res.text();
  };

  it.each([
    // [hops, X-Forwarded-For, client]
    [0, undefined, '172.18.0.5'],
    [0, '6.6.6.6', '172.18.0.5'], // no proxy trusted: the header is the client's own words
    [1, undefined, '172.18.0.5'], // nothing forwarded: the socket
    [1, '198.51.100.7', '198.51.100.7'],
    [1, '6.6.6.6, 198.51.100.7', '198.51.100.7'], // a forged leftmost entry is ignored
    [1, '6.6.6.6,7.7.7.7 ,  198.51.100.7', '198.51.100.7'],
    [2, '6.6.6.6, 198.51.100.7, 10.0.0.2', '198.51.100.7'], // CDN then nginx
    [3, '198.51.100.7', '198.51.100.7'], // fewer entries than hops: the leftmost (Express)
  ] as const)('hops=%i, X-Forwarded-For %j -> %s', async (hops, xff, want) => {
    expect(await ip(hops, xff)).toBe(want);
  });
});
