import { sign } from 'hono/jwt';
import { beforeAll } from 'vitest';
import { describe, expect, it, type Fixtures } from '../../test/fixtures.js';
import { seatedEvent } from '../../test/events.js';
import { TEST_JWT_SECRET, inProcessApi, token, type InProcessApi } from '../../test/http.js';
import { snapshotPg, snapshotRedis } from '../../test/state.js';
import { drain } from '../../test/wait.js';
import type { EventWithAvailability } from '../../engine/index.js';

let api: InProcessApi;
let ev: EventWithAvailability;
let ann: string;
let bob: string;

/** Runs `act` and asserts it changed nothing in this file's Redis namespace or Postgres schema. */
async function unchanged<T>(fx: Pick<Fixtures, 'redis' | 'ns' | 'pg'>, act: () => Promise<T>): Promise<T> {
  const [r0, p0] = [await snapshotRedis(fx.redis, `${fx.ns}:*`), await snapshotPg(fx.pg)];
  const out = await act();
  expect(await snapshotRedis(fx.redis, `${fx.ns}:*`)).toEqual(r0);
  expect(await snapshotPg(fx.pg)).toEqual(p0);
  return out;
}

describe('bookings API', () => {
  beforeAll(async () => {
    ann = await token('ann');
    bob = await token('bob');
  });

  it.beforeAll(async ({ engine }) => {
    api = inProcessApi(engine);
    ev = await engine.createEvent({ ...seatedEvent([{ id: 'A', rows: 2, seatsPerRow: 5 }], 20), maxTicketsPerUser: 6 });
  });

  describe('happy path', () => {
    let bookingId: string;
    it('POST /api/bookings holds GA tickets: 201 with id, amount and deadline', async () => {
      const res = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, tierId: ev.tiers[1]!.id, ticketCount: 2 } });
      expect(res.status).toBe(201);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.json).toMatchObject({ status: 'RESERVED', eventId: ev.id, tierId: ev.tiers[1]!.id, ticketCount: 2, seats: [], amount: 6000, currency: 'EUR' });
      expect(Date.parse(res.json.expiresAt) - Date.parse(res.json.createdAt)).toBe(60_000);
      bookingId = res.json.bookingId;
    });
    it('GET /api/bookings/:id shows it to its owner at once (from the live hold before the worker records it)', async () => {
      const res = await api.call('GET', `/api/bookings/${bookingId}`, { token: ann });
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ bookingId, status: 'RESERVED', userId: 'ann', ticketCount: 2 });
    });
    it('holds specific seats and the best adjacent seats', async () => {
      const seats = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 2, seatPreferences: { seatIds: ['A-1-1', 'A-1-2'] } } });
      expect(seats.status).toBe(201);
      expect(seats.json.seats).toEqual(['A-1-1', 'A-1-2']);
      const best = await api.call('POST', '/api/bookings', { token: bob, body: { eventId: ev.id, ticketCount: 3, seatPreferences: { section: 'A' } } });
      expect(best.status).toBe(201);
      expect(best.json.seats).toEqual(['A-1-3', 'A-1-4', 'A-1-5']);
      const map = await api.call('GET', `/api/events/${ev.id}/seats`);
      expect(map.json.sections[0]).toMatchObject({ id: 'A', available: 5, seatMap: 'xxxxx.....' });
    });
    it('GET /api/bookings lists only your own bookings once recorded', async ({ engine }) => {
      await drain(engine, ev.id);
      const mine = await api.call('GET', '/api/bookings', { token: ann });
      expect(mine.status).toBe(200);
      expect(mine.json.bookings).toHaveLength(2);
      expect(mine.json.bookings.every((b: { userId: string }) => b.userId === 'ann')).toBe(true);
    });
    it('DELETE /api/bookings/:id cancels: seats free at once; a second cancel is 409', async ({ engine }) => {
      const before = (await engine.catalog.get(ev.id)).tiers[1]!.available;
      const res = await api.call('DELETE', `/api/bookings/${bookingId}`, { token: ann });
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ bookingId, status: 'CANCELLED' });
      expect((await engine.catalog.get(ev.id)).tiers[1]!.available).toBe(before + 2);
      await drain(engine, ev.id);
      const again = await api.call('DELETE', `/api/bookings/${bookingId}`, { token: ann });
      expect(again.status).toBe(409);
      expect(again.json).toMatchObject({ type: '/problems/booking-not-cancellable', status: 409 });
      expect((await api.call('GET', `/api/bookings/${bookingId}`, { token: ann })).json.status).toBe('CANCELLED');
    });
  });

  describe('idempotency', () => {
    it('20 concurrent requests with one Idempotency-Key make one booking with identical replies', async ({ engine, pg }) => {
      const body = { eventId: ev.id, tierId: ev.tiers[1]!.id, ticketCount: 1 };
      const replies = await Promise.all(
        Array.from({ length: 20 }, () => api.call('POST', '/api/bookings', { token: bob, body, headers: { 'idempotency-key': 'order-42' } })),
      );
      expect(replies.map((r) => r.status)).toEqual(Array(20).fill(201));
      expect(new Set(replies.map((r) => r.text)).size).toBe(1);
      expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(19);
      const { rows } = await pg.query("SELECT count(*)::int AS n FROM bookings WHERE user_id = 'bob'");
      await drain(engine, ev.id);
      const after = await pg.query("SELECT count(*)::int AS n FROM bookings WHERE user_id = 'bob'");
      expect(after.rows[0].n - rows[0].n).toBe(1);
    });
    it('the same key with another body is 422 idempotency-key-reused and changes nothing', async ({ redis, ns, pg }) => {
      const fx = { redis, ns, pg };
      const res = await unchanged(fx, () =>
        api.call('POST', '/api/bookings', { token: bob, body: { eventId: ev.id, tierId: ev.tiers[1]!.id, ticketCount: 2 }, headers: { 'idempotency-key': 'order-42' } }),
      );
      expect(res.status).toBe(422);
      expect(res.json).toMatchObject({ type: '/problems/idempotency-key-reused', errors: [{ field: 'Idempotency-Key' }] });
    });
    it('keys are per buyer: another buyer may use the same key', async () => {
      const res = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, tierId: ev.tiers[1]!.id, ticketCount: 1 }, headers: { 'idempotency-key': 'order-42' } });
      expect(res.status).toBe(201);
      expect(res.headers.get('idempotent-replayed')).toBeNull();
    });
  });

  describe('bad input gets the documented 4xx as problem+json and changes nothing', () => {
    const gaBody = () => ({ eventId: ev.id, tierId: ev.tiers[1]!.id, ticketCount: 1 });
    const cases: [string, () => { body?: unknown; headers?: Record<string, string>; raw?: boolean }, number, string, string?][] = [
      ['an empty object', () => ({ body: {} }), 400, '/problems/validation', 'eventId'],
      ['a missing ticketCount', () => ({ body: { eventId: ev.id } }), 400, '/problems/validation', 'ticketCount'],
      ['an extra field (mass assignment)', () => ({ body: { ...gaBody(), price: 1 } }), 400, '/problems/validation', 'price'],
      ['ticketCount 0', () => ({ body: { ...gaBody(), ticketCount: 0 } }), 400, '/problems/validation', 'ticketCount'],
      ['ticketCount -1', () => ({ body: { ...gaBody(), ticketCount: -1 } }), 400, '/problems/validation', 'ticketCount'],
      ['ticketCount 1.5', () => ({ body: { ...gaBody(), ticketCount: 1.5 } }), 400, '/problems/validation', 'ticketCount'],
      ['ticketCount "2"', () => ({ body: { ...gaBody(), ticketCount: '2' } }), 400, '/problems/validation', 'ticketCount'],
      ['ticketCount 10^9', () => ({ body: { ...gaBody(), ticketCount: 1e9 } }), 400, '/problems/validation', 'ticketCount'],
      ['a malformed event id', () => ({ body: { ...gaBody(), eventId: "x' OR 1=1--" } }), 400, '/problems/validation', 'eventId'],
      ['an unknown event', () => ({ body: { ...gaBody(), eventId: 'ev_000000000000' } }), 404, '/problems/event-not-found'],
      ['an unknown tier', () => ({ body: { ...gaBody(), tierId: 'tr_0000000000' } }), 404, '/problems/tier-not-found', 'tierId'],
      ['no tier on a two-tier event', () => ({ body: { eventId: ev.id, ticketCount: 1 } }), 400, '/problems/tier-required', 'tierId'],
      ['malformed JSON', () => ({ body: '{"eventId": ', raw: true }), 400, '/problems/malformed-request'],
      ['no content-type', () => ({ body: JSON.stringify(gaBody()), raw: true, headers: { 'content-type': '' } }), 415, '/problems/unsupported-media-type'],
      ['text/plain', () => ({ body: JSON.stringify(gaBody()), headers: { 'content-type': 'text/plain' } }), 415, '/problems/unsupported-media-type'],
      ['an oversized body', () => ({ body: { ...gaBody(), pad: 'x'.repeat(20_000) } }), 413, '/problems/payload-too-large'],
      ['duplicate seats', () => ({ body: { eventId: ev.id, ticketCount: 2, seatPreferences: { seatIds: ['A-2-1', 'A-2-1'] } } }), 400, '/problems/validation', 'seatPreferences.seatIds'],
      ['seatIds not matching ticketCount', () => ({ body: { eventId: ev.id, ticketCount: 3, seatPreferences: { seatIds: ['A-2-1'] } } }), 400, '/problems/validation', 'seatPreferences.seatIds'],
      ['an unknown seat', () => ({ body: { eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-9-1'] } } }), 400, '/problems/unknown-seat', 'seatPreferences.seatIds.0'],
      ['a taken seat', () => ({ body: { eventId: ev.id, ticketCount: 1, seatPreferences: { seatIds: ['A-1-1'] } } }), 409, '/problems/seat-unavailable'],
      ['an unknown section', () => ({ body: { eventId: ev.id, ticketCount: 1, seatPreferences: { section: 'Z' } } }), 400, '/problems/unknown-section', 'seatPreferences.section'],
      ['more than the buyer cap', () => ({ body: { ...gaBody(), ticketCount: 7 } }), 422, '/problems/ticket-limit'],
      ['more than the stock', () => ({ body: { ...gaBody(), ticketCount: 6, tierId: ev.tiers[0]!.id, seatPreferences: { section: 'A' } } }), 409, '/problems/insufficient-inventory'],
      ['an Idempotency-Key with braces', () => ({ body: gaBody(), headers: { 'idempotency-key': 'a{b}' } }), 400, '/problems/validation', 'idempotency-key'],
      ['a prototype-pollution key', () => ({ body: '{"eventId":"' + ev.id + '","ticketCount":1,"__proto__":{"admin":true}}', raw: true }), 400, '/problems/validation', '__proto__'],
      ['a JSON array', () => ({ body: [gaBody()] }), 400, '/problems/validation'],
    ];
    it.for(cases)('%s', async ([, make, status, type, field], { redis, ns, pg }) => {
      const c = make();
      const res = await unchanged({ redis, ns, pg }, () =>
        api.call('POST', '/api/bookings', {
          token: bob,
          body: c.raw ? (c.body as string) : c.body,
          headers: { ...(c.raw ? { 'content-type': 'application/json' } : {}), ...c.headers },
        }),
      );
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.json).toMatchObject({ type, status, title: expect.any(String) });
      expect(res.text).not.toMatch(/at .*\.ts:\d+|Error:/); // never a stack trace
      if (field) expect(res.json.errors.map((e: { field: string }) => e.field)).toContain(field);
    });
  });

  describe('security', () => {
    it('someone else’s booking is 404 for GET and DELETE, exactly as an unknown id, and changes nothing', async ({ redis, ns, pg }) => {
      const fx = { redis, ns, pg };
      const mine = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, tierId: ev.tiers[1]!.id, ticketCount: 1 } });
      const id = mine.json.bookingId;
      await unchanged(fx, async () => {
        const get = await api.call('GET', `/api/bookings/${id}`, { token: bob });
        const del = await api.call('DELETE', `/api/bookings/${id}`, { token: bob });
        const unknown = await api.call('GET', `/api/bookings/${id.slice(0, -4)}zzzz`, { token: bob });
        for (const r of [get, del, unknown]) expect([r.status, r.json.type]).toEqual([404, '/problems/booking-not-found']);
        expect(get.json.detail).toBe(unknown.json.detail);
      });
    });
    it('a malformed booking id is 400', async () => {
      expect((await api.call('GET', '/api/bookings/..%2F..%2Fetc%2Fpasswd', { token: ann })).status).toBe(400);
    });
    it.for([
      ['no token', () => Promise.resolve(undefined)],
      ['an expired token (past the 30 s clock tolerance)', () => sign({ sub: 'ann', exp: Math.floor(Date.now() / 1000) - 120 }, TEST_JWT_SECRET, 'HS256')],
      ['a token signed with another key', () => sign({ sub: 'ann', exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret-entirely', 'HS256')],
      ['an unsigned (alg none) token', async () => {
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: 'ann', exp: Math.floor(Date.now() / 1000) + 60 })}.`;
      }],
      ['a token without exp', () => sign({ sub: 'ann' }, TEST_JWT_SECRET, 'HS256')],
      ['a token whose subject has braces', () => sign({ sub: 'a{b}', exp: Math.floor(Date.now() / 1000) + 60 }, TEST_JWT_SECRET, 'HS256')],
    ] as const)('%s is 401 and changes nothing', async ([, make], { redis, ns, pg }) => {
      const fx = { redis, ns, pg };
      const t = await make();
      const res = await unchanged(fx, () =>
        api.call('POST', '/api/bookings', { body: { eventId: ev.id, tierId: ev.tiers[1]!.id, ticketCount: 1 }, headers: t ? { authorization: `Bearer ${t}` } : {} }),
      );
      expect(res.status).toBe(401);
      expect(res.json.type).toBe('/problems/unauthorized');
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    });
  });

  it.afterAll(async () => {
    await api.close();
  });
});
