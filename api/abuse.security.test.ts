import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Engine, EventWithAvailability } from '../engine/index.js';
import { afterAll } from 'vitest';
import { describe, expect, it } from '../test/fixtures.js';
import { expectProblem, isolatedEngine, send, snapshotState } from '../test/endpoints.js';
import { gaEvent, seatedEvent } from '../test/events.js';
import { startApi, token, type TestApi } from '../test/http.js';
import { drain } from '../test/wait.js';

/**
 * Business-flow abuse (OWASP API6): per-user and per-IP rate limits on the costly writes (join, hold, pay), shared by
 * every API process through Redis; the per-buyer ticket cap under concurrent holds; forged, replayed and tampered
 * Stripe webhooks. Every refusal changes nothing (the limiter's own counters aside).
 */
const WHSEC = 'whsec_abuse_test_current';
const WHSEC_OLD = 'whsec_abuse_test_rotating_out';
let engine: Engine;
let redis: Redis;
let closeEngine: () => Promise<void>;
let ev: EventWithAvailability;
let queued: EventWithAvailability;
/** The limiter's counters change on every counted request, by design: left out of "nothing changed". */
const LIMITER = /:rl:/;

describe('abuse', () => {
  it.beforeAll(async ({ clock, pg, ns, jobs }) => {
    ({ engine, redis, close: closeEngine } = await isolatedEngine({ ns, pg, clock, jobs }));
    ev = await engine.createEvent({ ...gaEvent(500), maxTicketsPerUser: 100 });
    queued = await engine.createEvent({
      ...gaEvent(500), name: 'Queued', salesOpenAt: new Date(clock.now() - 60_000).toISOString(), maxTicketsPerUser: 100,
      queue: { enabled: true, opensAt: new Date(clock.now() - 120_000).toISOString(), admissionRatePerSecond: 50, passTtlSeconds: 600 },
    });
  });

  describe('rate limits: 429 with Retry-After, shared by two API processes, per user and per IP, on join, hold and pay', () => {
    type Group = 'join' | 'hold' | 'pay';
    const requestOf = (group: Group, who: string, extra: Record<string, string> = {}) => {
      const headers = { authorization: `Bearer ${who}`, 'content-type': 'application/json', ...extra };
      if (group === 'join') return { method: 'POST', path: `/api/events/${queued.id}/queue`, headers };
      if (group === 'hold') return { method: 'POST', path: '/api/bookings', headers, body: JSON.stringify({ eventId: ev.id, ticketCount: 1 }) };
      return { method: 'POST', path: '/api/payments', headers, body: JSON.stringify({ bookingId: 'bk_abcdefghijkl_abcdefghijklmnop', paymentMethodId: 'pm_card_visa' }) };
    };
    const check429 = (r: { status: number; headers: Headers; text: string }) => {
      expect(r.status, r.text).toBe(429);
      expect(expectProblem(r).type).toBe('/problems/rate-limited');
      const retry = Number(r.headers.get('retry-after'));
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
    };
    const pair = async (rateLimit: { perUser: number; perIp: number; windowSeconds: number; trustProxyHops: number }): Promise<[TestApi, TestApi]> => [
      await startApi(engine, { rateLimit }),
      await startApi(engine, { rateLimit }),
    ];

    it.for(['join', 'hold', 'pay'] as const)('%s, per user: the third request in the window is 429 on either process, and does nothing', async (group, { pg, ns, onTestFinished }) => {
      const [a, b] = await pair({ perUser: 2, perIp: 0, windowSeconds: 60, trustProxyHops: 0 });
      onTestFinished(async () => {
        await a.close();
        await b.close();
      });
      const me = await token(`greedy-${group}`);
      expect((await send(a.url, requestOf(group, me))).status).not.toBe(429);
      expect((await send(b.url, requestOf(group, me))).status).not.toBe(429);
      const before = await snapshotState(redis, pg, ns, { ignore: LIMITER });
      check429(await send(a.url, requestOf(group, me)));
      check429(await send(b.url, requestOf(group, me)));
      expect(await snapshotState(redis, pg, ns, { ignore: LIMITER })).toEqual(before);
      // others are not affected, and reads are never limited
      expect((await send(a.url, requestOf(group, await token(`calm-${group}`)))).status).not.toBe(429);
      expect((await send(b.url, { method: 'GET', path: '/api/bookings', headers: { authorization: `Bearer ${me}` } })).status).toBe(200);
    });

    it.for(['join', 'hold', 'pay'] as const)('%s, per IP (behind a trusted proxy): one address is limited whoever sends', async (group, { pg, ns, onTestFinished }) => {
      const [a, b] = await pair({ perUser: 0, perIp: 2, windowSeconds: 60, trustProxyHops: 1 });
      onTestFinished(async () => {
        await a.close();
        await b.close();
      });
      const ip = { join: '10.1.0.1', hold: '10.1.0.2', pay: '10.1.0.3' }[group];
      // the proxy appends the address it saw; whatever the client wrote stands to its left and is not believed
      const from = (addr: string) => ({ 'x-forwarded-for': `192.0.2.${Math.floor(Math.random() * 250)}, ${addr}` });
      expect((await send(a.url, requestOf(group, await token(`x-${group}`), from(ip)))).status).not.toBe(429);
      expect((await send(b.url, requestOf(group, await token(`y-${group}`), from(ip)))).status).not.toBe(429);
      const before = await snapshotState(redis, pg, ns, { ignore: LIMITER });
      check429(await send(a.url, requestOf(group, await token(`z-${group}`), from(ip))));
      expect(await snapshotState(redis, pg, ns, { ignore: LIMITER })).toEqual(before);
      expect((await send(b.url, requestOf(group, await token(`z-${group}`), from(`${ip}9`)))).status).not.toBe(429);
    });

    it('per IP without a trusted proxy: a forged X-Forwarded-For does not buy a fresh allowance', async ({ onTestFinished }) => {
      const [a, b] = await pair({ perUser: 0, perIp: 2, windowSeconds: 60, trustProxyHops: 0 });
      onTestFinished(async () => {
        await a.close();
        await b.close();
      });
      const statuses = [];
      for (const [i, api] of [a, b, a, b].entries()) {
        statuses.push((await send(api.url, requestOf('pay', await token(`spoof-${i}`), { 'x-forwarded-for': `203.0.113.${i}` }))).status);
      }
      expect(statuses).toEqual([404, 404, 429, 429]);
    });
  });

  describe('the per-buyer ticket cap holds under concurrent holds (422 ticket-limit)', () => {
    it('12 concurrent one-ticket holds by one buyer with a cap of 4, over GA and seats: exactly 4 are held', async ({ onTestFinished }) => {
      const api = await startApi(engine);
      onTestFinished(() => api.close());
      const capped = await engine.createEvent({ ...seatedEvent([{ id: 'A', rows: 2, seatsPerRow: 10 }], 50), maxTicketsPerUser: 4 });
      const me = await token('cap-racer');
      const bodies = Array.from({ length: 12 }, (_, i) =>
        i % 3 === 0
          ? { eventId: capped.id, ticketCount: 1, seatPreferences: { seatIds: [`A-1-${i + 1}`] } }
          : i % 3 === 1
            ? { eventId: capped.id, tierId: capped.tiers[0]!.id, ticketCount: 1, seatPreferences: { section: 'A' } }
            : { eventId: capped.id, tierId: capped.tiers[1]!.id, ticketCount: 1 },
      );
      const answers = await Promise.all(bodies.map((body) => api.call('POST', '/api/bookings', { token: me, body })));
      expect(answers.filter((r) => r.status === 201)).toHaveLength(4);
      const refused = answers.filter((r) => r.status !== 201);
      expect(refused.map((r) => r.json.type)).toEqual(Array(8).fill('/problems/ticket-limit'));
      for (const r of refused) expectProblem({ status: r.status, headers: r.headers, text: r.text });
      const state = await engine.inventory.redisState(capped.id);
      expect(state[capped.tiers[0]!.id]!.held + state[capped.tiers[1]!.id]!.held).toBe(4);
    });

    it('bought tickets count too: after paying for 3 of a cap of 4, a hold of 2 is 422 (allowed: 1) and one of 1 is fine', async ({ onTestFinished }) => {
      const api = await startApi(engine);
      onTestFinished(() => api.close());
      const capped = await engine.createEvent({ ...gaEvent(50), maxTicketsPerUser: 4 });
      const me = await token('cap-payer');
      const held = await api.call('POST', '/api/bookings', { token: me, body: { eventId: capped.id, ticketCount: 3 } });
      await drain(engine, capped.id); // recorded by the persist worker before it is paid
      expect((await api.call('POST', '/api/payments', { token: me, body: { bookingId: held.json.bookingId, paymentMethodId: 'pm_card_visa' } })).status).toBe(200);
      await drain(engine, capped.id);
      const two = await api.call('POST', '/api/bookings', { token: me, body: { eventId: capped.id, ticketCount: 2 } });
      expect([two.status, two.json.type, two.json.allowed]).toEqual([422, '/problems/ticket-limit', 1]);
      expect((await api.call('POST', '/api/bookings', { token: me, body: { eventId: capped.id, ticketCount: 1 } })).status).toBe(201);
    });
  });

  describe('Stripe webhooks: every signature failure is 400 webhook-signature and changes nothing', () => {
    const sign = (body: string, secret = WHSEC, t = Math.floor(Date.now() / 1000)) =>
      `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
    const event = (id: string) => JSON.stringify({ id, object: 'event', type: 'payment_intent.succeeded', data: { object: { id: 'pi_unknown', object: 'payment_intent' } } });

    it('missing, malformed, wrong secret, tampered body, replayed after 5 minutes, another scheme: 400; a good one: 200 once', async ({ pg, ns, onTestFinished }) => {
      const api = await startApi(engine, { stripeWebhookSecrets: [WHSEC_OLD, WHSEC] });
      onTestFinished(() => api.close());
      const body = event('evt_abuse_1');
      const now = Math.floor(Date.now() / 1000);
      const cases: [string, Record<string, string>, string][] = [
        ['no Stripe-Signature header', {}, body],
        ['an empty header', { 'stripe-signature': '' }, body],
        ['a malformed header', { 'stripe-signature': 'garbage' }, body],
        ['no v1 signature', { 'stripe-signature': `t=${now}` }, body],
        ['only a v0 signature', { 'stripe-signature': sign(body).replace('v1=', 'v0=') }, body],
        ['a signature from another secret', { 'stripe-signature': sign(body, 'whsec_someone_else') }, body],
        ['a tampered body (signed for another)', { 'stripe-signature': sign(event('evt_other')) }, body],
        ['a body with a byte appended', { 'stripe-signature': sign(body) }, `${body} `],
        ['a replay 6 minutes later', { 'stripe-signature': sign(body, WHSEC, now - 360) }, body],
        ['a truncated signature', { 'stripe-signature': sign(body).slice(0, -2) }, body],
        ['the signature in upper case', { 'stripe-signature': sign(body).toUpperCase().replace('T=', 't=').replace('V1=', 'v1=') }, body],
      ];
      const before = await snapshotState(redis, pg, ns);
      for (const [what, headers, b] of cases) {
        const res = await send(api.url, { method: 'POST', path: '/api/webhooks/stripe', headers: { 'content-type': 'application/json', ...headers }, body: b });
        expect(res.status, `${what}: ${res.text}`).toBe(400);
        expect(expectProblem(res, what).type).toBe('/problems/webhook-signature');
      }
      expect(await snapshotState(redis, pg, ns)).toEqual(before);
      // the genuine delivery, signed with either secret during a rotation, is taken once
      const ok = await send(api.url, { method: 'POST', path: '/api/webhooks/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': sign(body, WHSEC_OLD) }, body });
      expect([ok.status, JSON.parse(ok.text)]).toEqual([200, { received: true }]);
      const again = await send(api.url, { method: 'POST', path: '/api/webhooks/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': sign(body) }, body });
      expect(JSON.parse(again.text)).toEqual({ received: true, duplicate: true });
    });

    it('without Stripe configured the route does not exist (404), whatever is sent', async () => {
      const api = await startApi(engine);
      try {
        const res = await send(api.url, { method: 'POST', path: '/api/webhooks/stripe', headers: { 'stripe-signature': sign(event('evt_2')) }, body: event('evt_2') });
        expect(res.status).toBe(404);
        expectProblem(res);
      } finally {
        await api.close();
      }
    });
  });

  // runs even when a test failed (a 'closes' test would not), so the namespace of database 7 never leaks
  afterAll(async () => {
    await closeEngine?.();
  });
});
