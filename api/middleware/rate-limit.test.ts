import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { startApi, token } from '../../test/http.js';
import { globalKeys } from '../../engine/keys.js';

describe('rate limits (Redis-backed, shared by every API process)', () => {
  it('per user: the 4th hold in the window is 429 with Retry-After, across two API processes, and holds nothing', async ({ engine, onTestFinished }) => {
    const rateLimit = { perUser: 3, perIp: 0, windowSeconds: 60, trustProxyHops: 0 };
    const [a, b] = [await startApi(engine, { rateLimit }), await startApi(engine, { rateLimit })];
    onTestFinished(async () => {
      await a.close();
      await b.close();
    });
    const ev = await createGaEvent(engine, 100, { maxTicketsPerUser: 50 });
    const greedy = await token('greedy');
    const body = { eventId: ev.id, ticketCount: 1 };
    const statuses = [];
    for (const api of [a, b, a, b]) statuses.push((await api.call('POST', '/api/bookings', { token: greedy, body })).status);
    expect(statuses).toEqual([201, 201, 201, 429]);
    const limited = await b.call('POST', '/api/bookings', { token: greedy, body });
    expect(limited.json).toMatchObject({ type: '/problems/rate-limited', status: 429 });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await engine.inventory.redisState(ev.id))[ev.tiers[0]!.id]!.held).toBe(3);
    // someone else is not affected, and reads are never limited
    expect((await a.call('POST', '/api/bookings', { token: await token('calm'), body })).status).toBe(201);
    expect((await a.call('GET', '/api/bookings', { token: greedy })).status).toBe(200);
  });

  it('holds: the limit is counted by the hold script, per event; a request refused before its script counts too', async ({ engine, redis, ns, onTestFinished }) => {
    const api = await startApi(engine, { rateLimit: { perUser: 2, perIp: 0, windowSeconds: 60, trustProxyHops: 0 } });
    onTestFinished(() => api.close());
    const [evA, evB] = [await createGaEvent(engine, 10), await createGaEvent(engine, 10)];
    const me = await token('per-event');
    const hold = (body: object) => api.call('POST', '/api/bookings', { token: me, body });
    expect([(await hold({ eventId: evA.id, ticketCount: 1 })).status, (await hold({ eventId: evA.id, ticketCount: 1 })).status]).toEqual([201, 201]);
    const limited = await hold({ eventId: evA.id, ticketCount: 1 });
    expect([limited.status, limited.json.type, limited.json.code]).toEqual([429, '/problems/rate-limited', 'RATE_LIMITED']);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await engine.inventory.redisState(evA.id))[evA.tiers[0]!.id]!.held).toBe(2);
    // the counters live on each event's Redis slot (one script call per hold): another event has its own allowance
    expect((await hold({ eventId: evB.id, ticketCount: 1 })).status).toBe(201);
    // bodies refused before any script are counted afterwards on the group's own counter: the third is 429, not 400
    const bad = { eventId: evB.id, ticketCount: 0 };
    expect([(await hold(bad)).status, (await hold(bad)).status, (await hold(bad)).status]).toEqual([400, 400, 429]);
    expect(await redis.get(globalKeys(ns).rateCounter('hold', 'u', 'per-event'))).toBe('3');
  });

  it('per IP behind one proxy: a client rotating its own X-Forwarded-For entries is still limited by the address the proxy saw', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine, { rateLimit: { perUser: 0, perIp: 2, windowSeconds: 60, trustProxyHops: 1 } });
    onTestFinished(() => api.close());
    // nginx appends $remote_addr: the rightmost entry is the real client, everything left of it is the client's own text
    const pay = async (i: number, real: string) =>
      (await api.call('POST', '/api/payments', {
        token: await token(`rotator-${i}`),
        body: { bookingId: 'bk_abcdefghijkl_abcdefghijklmnop', paymentMethodId: 'pm_card_visa' },
        headers: { 'x-forwarded-for': `203.0.113.${i}, ${real}` },
      })).status;
    expect([await pay(1, '10.7.0.1'), await pay(2, '10.7.0.1'), await pay(3, '10.7.0.1'), await pay(4, '10.7.0.1')]).toEqual([404, 404, 429, 429]);
    expect(await pay(5, '10.7.0.2')).toBe(404);
  });

  it('per IP: joins and payments from one address are limited whoever sends them', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine, { rateLimit: { perUser: 0, perIp: 2, windowSeconds: 60, trustProxyHops: 1 } });
    onTestFinished(() => api.close());
    const ev = await createGaEvent(engine, 10);
    const from = (ip: string) => ({ 'x-forwarded-for': ip });
    const pay = (t: string, ip: string) => api.call('POST', '/api/payments', { token: t, body: { bookingId: 'bk_abcdefghijkl_abcdefghijklmnop', paymentMethodId: 'pm_card_visa' }, headers: from(ip) });
    const [x, y, z] = (await Promise.all(['x', 'y', 'z'].map((n) => token(n)))) as [string, string, string];
    expect([(await pay(x, '10.0.0.1')).status, (await pay(y, '10.0.0.1')).status, (await pay(z, '10.0.0.1')).status]).toEqual([404, 404, 429]);
    expect((await pay(z, '10.0.0.2')).status).toBe(404);
    void ev;
  });
});
