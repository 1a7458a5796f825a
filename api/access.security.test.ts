import { Redis } from 'ioredis';
import type { Engine } from '../engine/index.js';
import { afterAll } from 'vitest';
import { describe, expect, it, unlinkNamespace } from '../test/fixtures.js';
import {
  apiWorld, badTokens, ENDPOINTS, endpointName, expectProblem, fill, isolatedEngine, roleToken, send, snapshotState, type ApiWorld,
} from '../test/endpoints.js';
import { TEST_REDIS_URL } from '../test/env.js';
import { memoryLogger, startApi, TEST_JWT_SECRET, token, type TestApi } from '../test/http.js';
import { drain } from '../test/wait.js';
import { createJobSink } from '../integrations/queues.js';

/**
 * Who may do what, per endpoint: authentication (every bad JWT is 401 everywhere), object-level authorization (someone
 * else's booking, tickets or place in line is 404, exactly as an id that does not exist), admin and gate roles,
 * security headers on every answer, and nothing secret in any log line of a whole session.
 */
const WHSEC = 'whsec_security_test_secret';
let engine: Engine;
let redis: Redis;
let closeEngine: () => Promise<void>;
let w: ApiWorld;
let api: TestApi;
let board: TestApi;
let closeBoard: () => Promise<void>;
let bullKeysLeft: () => Promise<string[]>;
const log = memoryLogger('trace');

const authed = ENDPOINTS.filter((e) => e.auth !== 'none');
const idsFor = (path: string) => ({ eventId: path.includes('/admin/') ? w.adminOnly.id : w.queued.id, bookingId: w.ids.annPaid, queueId: w.ids.annPlace });
const bodyFor = (e: (typeof ENDPOINTS)[number]) =>
  e.body === 'none' ? undefined : JSON.stringify(e.path === '/api/bookings' ? { eventId: w.ev.id, ticketCount: 1 } : { reason: 'x' });

describe('access control and hygiene', () => {
  it.beforeAll(async ({ clock, pg, ns, jobs }) => {
    ({ engine, redis, close: closeEngine } = await isolatedEngine({ ns, pg, clock, jobs }));
    w = await apiWorld(engine, clock);
    api = await startApi(engine, { log: log.log, stripeWebhookSecrets: [WHSEC] });
    const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const sink = createJobSink(bull, `${ns}:bull`, { sms: false });
    board = await startApi(engine, { queues: Object.values(sink.queues), log: log.log });
    closeBoard = async () => {
      await board.close();
      await sink.close();
      // the queues' keys live in the default database, not in the isolated engine's: remove them here
      await unlinkNamespace(bull, ns);
      bullKeysLeft = async () => {
        const probe = new Redis(TEST_REDIS_URL);
        try {
          return await probe.keys(`${ns}:*`);
        } finally {
          probe.disconnect();
        }
      };
      bull.disconnect();
    };
  });

  describe('authentication: every bad token is 401 on every authenticated endpoint, and changes nothing', () => {
    it('covers every authenticated endpoint of the API', () => {
      expect(authed.map(endpointName)).toHaveLength(17);
    });
    it.for(authed.map((e) => [endpointName(e), e] as const))('%s', async ([, e], { pg, ns }) => {
      const bad = await badTokens('ann');
      const before = await snapshotState(redis, pg, ns);
      const path = fill(e.path, idsFor(e.path));
      const body = bodyFor(e);
      const attempts: [string, Record<string, string>, string][] = [
        ['no Authorization header', {}, path],
        ['a Basic credential', { authorization: `Basic ${Buffer.from('ann:pw').toString('base64')}` }, path],
        ['a lower-case bearer scheme', { authorization: `bearer ${w.tokens.ann}` }, path],
        ...Object.entries(bad).map(([what, t]) => [what, { authorization: `Bearer ${t}` }, path] as [string, Record<string, string>, string]),
      ];
      if (e.queryToken) {
        for (const [what, t] of Object.entries(bad)) attempts.push([`?access_token= with ${what}`, {}, `${path}?access_token=${encodeURIComponent(t)}`]);
      }
      for (const [what, headers, p] of attempts) {
        const res = await send(api.url, { method: e.method, path: p, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
        expect(res.status, `${what}: ${res.text}`).toBe(401);
        expect(expectProblem(res, what).type).toBe('/problems/unauthorized');
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
      }
      expect(await snapshotState(redis, pg, ns)).toEqual(before);
    });

    it('/admin/queues (bull-board): no token, a bad one, or a buyer’s is 401, in the link, the cookie and the header', async () => {
      const bad = await badTokens('root');
      for (const t of [...Object.values(bad), w.tokens.ann, w.tokens.gate]) {
        for (const [path, headers] of [
          [`/admin/queues?access_token=${encodeURIComponent(t)}`, {}],
          ['/admin/queues/api/queues', { authorization: `Bearer ${t}` }],
          ['/admin/queues/api/queues', { cookie: `fg_admin=${t}` }],
        ] as [string, Record<string, string>][]) {
          const res = await send(board.url, { method: 'GET', path, headers });
          expect(res.status, path).toBe(401);
          expectProblem(res);
        }
      }
      expect((await send(board.url, { method: 'GET', path: '/admin/queues' })).status).toBe(401);
      expect((await send(board.url, { method: 'GET', path: '/admin/queues/api/queues', headers: { authorization: `Bearer ${w.tokens.admin}` } })).status).toBe(200);
    });
  });

  describe('object-level authorization: someone else’s things are 404, exactly as things that do not exist', () => {
    /** Status, type, title and detail of a problem (instance and requestId differ per request). */
    const shape = (r: { status: number; text: string }) => {
      const { type, title, detail, status } = JSON.parse(r.text) as Record<string, unknown>;
      return { httpStatus: r.status, type, title, detail, status };
    };
    const unknownBooking = (id: string) => `${id.slice(0, -4)}zzzz`;

    it.for([
      ['GET', '/api/bookings/{bookingId}', undefined],
      ['DELETE', '/api/bookings/{bookingId}', undefined],
      ['GET', '/api/bookings/{bookingId}/tickets.pdf', undefined],
      ['POST', '/api/bookings/{bookingId}/refund', '{"reason":"mine now"}'],
    ] as const)('%s %s', async ([method, template, body], { pg, ns }) => {
      const before = await snapshotState(redis, pg, ns);
      for (const victim of [w.ids.annReserved, w.ids.annPaid]) {
        const headers = { authorization: `Bearer ${w.tokens.bob}`, ...(body ? { 'content-type': 'application/json' } : {}) };
        const theirs = await send(api.url, { method, path: fill(template, { bookingId: victim }), headers, body });
        const unknown = await send(api.url, { method, path: fill(template, { bookingId: unknownBooking(victim) }), headers, body });
        expect(shape(theirs), `${method} ${template} of ${victim}`).toEqual(shape(unknown));
        expect(theirs.status).toBe(404);
        expect(expectProblem(theirs).type).toBe('/problems/booking-not-found');
        expect(theirs.text).not.toContain('ann'); // nothing about the owner leaks
      }
      expect(await snapshotState(redis, pg, ns)).toEqual(before);
    });

    it('POST /api/payments of someone else’s (recorded) booking', async ({ pg, ns }) => {
      const before = await snapshotState(redis, pg, ns);
      const pay = (bookingId: string) =>
        send(api.url, { method: 'POST', path: '/api/payments', headers: { authorization: `Bearer ${w.tokens.bob}`, 'content-type': 'application/json' }, body: JSON.stringify({ bookingId, paymentMethodId: 'pm_card_visa' }) });
      const theirs = await pay(w.ids.annReserved);
      expect(shape(theirs)).toEqual(shape(await pay(unknownBooking(w.ids.annReserved))));
      expect(theirs.status).toBe(404);
      expect(await snapshotState(redis, pg, ns)).toEqual(before);
    });

    it('GET /api/bookings lists only the caller’s bookings', async () => {
      const res = await api.call('GET', '/api/bookings', { token: w.tokens.bob });
      expect(res.status).toBe(200);
      expect((res.json.bookings as { userId: string }[]).every((b) => b.userId === 'bob')).toBe(true);
      expect(res.json.bookings.map((b: { bookingId: string }) => b.bookingId)).not.toContain(w.ids.annPaid);
    });

    it.for([
      ['GET', '/api/queue/{queueId}'],
      ['DELETE', '/api/queue/{queueId}'],
      ['GET', '/api/queue/{queueId}/events'],
    ] as const)('%s %s of someone else’s place in line', async ([method, template], { pg, ns }) => {
      const before = await snapshotState(redis, pg, ns);
      const other = `${w.ids.annPlace.slice(0, -4)}ffff`;
      const theirs = await send(api.url, { method, path: fill(template, { queueId: w.ids.annPlace }), headers: { authorization: `Bearer ${w.tokens.bob}` } });
      const unknown = await send(api.url, { method, path: fill(template, { queueId: other }), headers: { authorization: `Bearer ${w.tokens.bob}` } });
      expect(theirs.status).toBe(404);
      expect(shape(theirs)).toEqual(shape(unknown));
      expect(expectProblem(theirs).type).toBe('/problems/queue-not-found');
      expect(await snapshotState(redis, pg, ns)).toEqual(before);
    });
  });

  describe('roles: admin routes refuse buyers and scanners (403), the gate route refuses buyers (403)', () => {
    const admin = ENDPOINTS.filter((e) => e.auth === 'admin');
    it.for(admin.map((e) => [endpointName(e), e] as const))('%s', async ([, e], { pg, ns }) => {
      const before = await snapshotState(redis, pg, ns);
      const body = e.path.endsWith('/refund') ? '{"decision":"approve"}' : '{"enabled":false,"opensAt":"2030-01-01T00:00:00Z","admissionRatePerSecond":1,"passTtlSeconds":10}';
      for (const t of [w.tokens.ann, w.tokens.gate, await roleToken('ann', 'Admin'), await roleToken('ann', 'admin '), await roleToken('ann', 'superuser')]) {
        const res = await send(api.url, { method: e.method, path: fill(e.path, { eventId: w.adminOnly.id, bookingId: w.ids.reviewPaid }), headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body });
        expect(res.status, res.text).toBe(403);
        expect(expectProblem(res).type).toBe('/problems/forbidden');
      }
      expect(await snapshotState(redis, pg, ns)).toEqual(before);
    });
    it('POST /api/tickets/verify: a buyer is 403; a scanner and an admin may scan', async () => {
      const scan = (t: string) => api.call('POST', '/api/tickets/verify', { token: t, body: { code: 'T1.nothing' } });
      expect((await scan(w.tokens.ann)).status).toBe(403);
      expect((await scan(w.tokens.gate)).json).toMatchObject({ result: 'invalid' });
      expect((await scan(w.tokens.admin)).status).toBe(200);
    });
  });

  describe('security headers on every answer; no-store on bookings and tickets', () => {
    const SECURITY = {
      'x-content-type-options': 'nosniff',
      'strict-transport-security': 'max-age=15552000; includeSubDomains',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'SAMEORIGIN',
      'cross-origin-resource-policy': 'same-origin',
    };
    const headersOf = (h: Headers) => Object.fromEntries(Object.keys(SECURITY).map((k) => [k, h.get(k)]));

    it('Cache-Control: no-store on every booking and ticket answer, successful or not', async () => {
      const a = (t: string) => ({ authorization: `Bearer ${t}` });
      const json = { 'content-type': 'application/json' };
      const answers = [
        await send(api.url, { method: 'POST', path: '/api/bookings', headers: { ...a(w.tokens.ann), ...json }, body: JSON.stringify({ eventId: w.ev.id, tierId: w.ev.tiers[1]!.id, ticketCount: 1 }) }),
        await send(api.url, { method: 'POST', path: '/api/bookings', headers: { ...a(w.tokens.ann), ...json }, body: '{}' }),
        await send(api.url, { method: 'GET', path: '/api/bookings', headers: a(w.tokens.ann) }),
        await send(api.url, { method: 'GET', path: `/api/bookings/${w.ids.annPaid}`, headers: a(w.tokens.ann) }),
        await send(api.url, { method: 'GET', path: `/api/bookings/${w.ids.annPaid}`, headers: a(w.tokens.bob) }),
        await send(api.url, { method: 'GET', path: `/api/bookings/${w.ids.annPaid}/tickets.pdf`, headers: a(w.tokens.ann) }),
        await send(api.url, { method: 'GET', path: `/api/bookings/${w.ids.annReserved}/tickets.pdf`, headers: a(w.tokens.ann) }),
        await send(api.url, { method: 'POST', path: '/api/tickets/verify', headers: { ...a(w.tokens.gate), ...json }, body: '{"code":"x"}' }),
        await send(api.url, { method: 'GET', path: `/api/queue/${w.ids.annPlace}`, headers: a(w.tokens.ann) }),
        await send(api.url, { method: 'POST', path: '/api/payments', headers: { ...a(w.tokens.ann), ...json }, body: JSON.stringify({ bookingId: w.ids.annPaid, paymentMethodId: 'pm_card_visa' }) }),
      ];
      expect(answers.map((r) => r.status), answers.map((r) => r.text.slice(0, 120)).join('\n')).toEqual([201, 400, 200, 200, 404, 200, 409, 200, 200, 409]);
      for (const r of answers) expect(r.headers.get('cache-control')).toBe('no-store');
    });

    it('every endpoint, answering 2xx, 4xx (401, 403, 404, 413, 415, 429) and 500, and streams, PDFs and HTML pages', async () => {
      const answers: [string, { status: number; headers: Headers }][] = [];
      for (const e of ENDPOINTS) {
        // the calls that change things act on what nothing else here needs: bob's place, the booking kept for refunds
        const leaving = endpointName(e) === 'DELETE /api/queue/{queueId}';
        const t = leaving ? w.tokens.bob : { none: undefined, user: w.tokens.ann, admin: w.tokens.admin, gate: w.tokens.gate }[e.auth];
        const bookingId = e.path.endsWith('/refund') || e.method === 'DELETE' ? w.ids.annPaidToRefund : w.ids.annPaid;
        const path = fill(e.path, { eventId: e.path.startsWith('/wait') ? w.ev.id : idsFor(e.path).eventId, bookingId, queueId: leaving ? w.ids.bobPlace : w.ids.annPlace });
        const body = e.body === 'none' ? undefined : '{}';
        const headers = { ...(t ? { authorization: `Bearer ${t}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) };
        answers.push([`${endpointName(e)} as its caller`, await send(api.url, { method: e.method, path, headers, body })]);
        if (e.auth !== 'none') answers.push([`${endpointName(e)} without a token`, await send(api.url, { method: e.method, path })]);
      }
      answers.push(['a hold (201)', await send(api.url, { method: 'POST', path: '/api/bookings', headers: { authorization: `Bearer ${w.tokens.ann}`, 'content-type': 'application/json' }, body: JSON.stringify({ eventId: w.ev.id, tierId: w.ev.tiers[1]!.id, ticketCount: 1 }) })]);
      answers.push(['an unknown route (404)', await send(api.url, { method: 'GET', path: '/nowhere' })]);
      answers.push(['a buyer on an admin route (403)', await send(api.url, { method: 'POST', path: '/api/admin/events', headers: { authorization: `Bearer ${w.tokens.ann}` } })]);
      answers.push(['a body too large (413)', await send(api.url, { method: 'POST', path: '/api/bookings', headers: { authorization: `Bearer ${w.tokens.ann}`, 'content-type': 'application/json' }, body: 'x'.repeat(20_000) })]);
      answers.push(['text/plain (415)', await send(api.url, { method: 'POST', path: '/api/bookings', headers: { authorization: `Bearer ${w.tokens.ann}`, 'content-type': 'text/plain' }, body: '{}' })]);
      answers.push(['a card number (400)', await send(api.url, { method: 'GET', path: '/api/events?category=4242424242424242' })]);
      answers.push(['the board (401)', await send(board.url, { method: 'GET', path: '/admin/queues' })]);
      // an unexpected error: 500
      const broken = await startApi({ ...engine, bookings: { ...engine.bookings, list: async () => Promise.reject(new TypeError('boom')) } });
      answers.push(['an unexpected error (500)', await send(broken.url, { method: 'GET', path: '/api/bookings', headers: { authorization: `Bearer ${w.tokens.ann}` } })]);
      await broken.close();
      const limited = await startApi(engine, { rateLimit: { perUser: 1, perIp: 0, windowSeconds: 60, trustProxyHops: 0 } });
      const t = await token('header-checker');
      await send(limited.url, { method: 'POST', path: `/api/events/${w.queued.id}/queue`, headers: { authorization: `Bearer ${t}` } });
      answers.push(['rate limited (429)', await send(limited.url, { method: 'POST', path: `/api/events/${w.queued.id}/queue`, headers: { authorization: `Bearer ${t}` } })]);
      await limited.close();

      const statuses = new Set(answers.map(([, r]) => r.status));
      for (const s of [200, 201, 202, 400, 401, 403, 404, 413, 415, 429, 500]) expect(statuses, `an answer with ${s}`).toContain(s);
      for (const [what, r] of answers) expect(headersOf(r.headers), `${what} (${r.status})`).toEqual(SECURITY);
      expect(answers.some(([, r]) => r.headers.get('content-type') === 'application/pdf')).toBe(true);
      expect(answers.some(([, r]) => r.headers.get('content-type')?.startsWith('text/event-stream'))).toBe(true);
      expect(answers.some(([, r]) => r.headers.get('content-type')?.startsWith('text/html'))).toBe(true);
    });
  });

  it('no secret, token or card number in any log line of a whole session', async ({ clock }) => {
    const secrets: string[] = [TEST_JWT_SECRET, WHSEC];
    const seen = (t: string) => (secrets.push(t), t);
    const bad = await badTokens('carl');
    const carl = seen(await token('carl'));
    const dora = seen(await token('dora'));
    Object.values(bad).filter(Boolean).forEach(seen);
    const call = (method: string, path: string, t: string | undefined, body?: unknown, headers: Record<string, string> = {}) =>
      api.call(method, path, { ...(t ? { token: t } : {}), ...(body !== undefined ? { body } : {}), headers });
    // failing "logins": every bad token, on several routes
    for (const t of Object.values(bad)) {
      await call('GET', '/api/bookings', t);
      await call('POST', '/api/bookings', t, { eventId: w.ev.id, ticketCount: 1 });
      await call('GET', `/api/queue/${w.ids.annPlace}?access_token=${encodeURIComponent(t)}`, undefined);
    }
    // a normal purchase with an admission pass; the pass used twice and stolen
    await call('POST', `/api/events/${w.queued.id}/queue`, carl);
    await engine.waitingRoom.admit(w.queued.id, 100);
    const place = (await call('POST', `/api/events/${w.queued.id}/queue`, carl)).json.queueId as string;
    const status = await call('GET', `/api/queue/${place}`, carl);
    const pass = seen(status.json.admissionToken as string);
    expect(pass).toMatch(/^AP1\./);
    const booked = await call('POST', '/api/bookings', carl, { eventId: w.queued.id, ticketCount: 1 }, { 'x-admission-token': pass, 'idempotency-key': 'log-1' });
    expect(booked.status).toBe(201);
    await drain(engine, w.queued.id); // recorded by the persist worker before it is paid
    expect((await call('POST', '/api/bookings', carl, { eventId: w.queued.id, ticketCount: 1 }, { 'x-admission-token': pass })).status).toBe(403);
    expect((await call('POST', '/api/bookings', dora, { eventId: w.queued.id, ticketCount: 1 }, { 'x-admission-token': pass })).status).toBe(403);
    await call('GET', `/api/queue/${place}/events?access_token=${carl}`, undefined);
    // card numbers, everywhere they could be typed
    const cards = ['4242424242424242', '4000 0566 5566 5556', '5555-5555-5555-4444', '378282246310005'];
    for (const card of cards) {
      secrets.push(card, card.replace(/[ -]/g, ''));
      expect((await call('POST', '/api/payments', carl, { bookingId: booked.json.bookingId, paymentMethodId: card })).json.type).toBe('/problems/raw-card-data');
      await call('POST', '/api/payments', carl, { bookingId: booked.json.bookingId, paymentMethodId: 'pm_card_visa', holderName: `Carl ${card}` });
      await call('GET', `/api/events?category=${encodeURIComponent(card)}`, undefined);
      await call('POST', '/api/bookings', carl, { eventId: w.ev.id, ticketCount: 1 }, { 'idempotency-key': card.replace(/ /g, '-') });
    }
    // a payment, a decline, a refund
    expect((await call('POST', '/api/payments', carl, { bookingId: booked.json.bookingId, paymentMethodId: 'pm_card_chargeDeclined', holderEmail: 'carl@example.com' })).status).toBe(402);
    expect((await call('POST', '/api/payments', carl, { bookingId: booked.json.bookingId, paymentMethodId: 'pm_card_visa' })).status).toBe(200);
    await call('POST', `/api/bookings/${booked.json.bookingId}/refund`, carl, { reason: 'changed plans' });
    // webhooks with bad signatures (logged as warnings) and the admin board's link
    await api.call('POST', '/api/webhooks/stripe', { body: { id: 'evt_x' }, headers: { 'stripe-signature': `t=${Math.floor(clock.now() / 1000)},v1=${'0'.repeat(64)}` } });
    await api.call('POST', '/api/webhooks/stripe', { body: { id: 'evt_y' } });
    await fetch(`${board.url}/admin/queues?access_token=${seen(w.tokens.admin)}`, { redirect: 'manual' });
    // an unexpected error (logged with its error) and a dependency that is away (503)
    const broken = await startApi({ ...engine, bookings: { ...engine.bookings, list: async () => Promise.reject(new TypeError('cannot read properties of undefined')) } }, { log: log.log });
    expect((await broken.call('GET', '/api/bookings', { token: carl })).status).toBe(500);
    await broken.close();

    const text = log.lines.join('\n');
    expect(text).toContain('unhandled error'); // the session did log: the check below is not vacuous
    expect(text).toContain('stripe webhook signature rejected');
    for (const s of secrets) {
      expect(text.includes(s), `a log line holds ${s.slice(0, 12)}…`).toBe(false);
      if (s.split('.').length === 3) expect(text.includes(s.split('.')[2]!) && s.split('.')[2]!.length > 10, 'a JWT signature in a log line').toBe(false);
    }
    for (const needle of ['sk_', 'whsec_', 'Bearer ', 'SG.']) expect(text, needle).not.toContain(needle);
  });

  // runs even when a test failed (a 'closes' test would not), so the namespace of database 7 never leaks
  afterAll(async () => {
    await api?.close();
    await closeBoard?.();
    await closeEngine?.();
    // the bull-board queues wrote `<ns>:bull:{…}:meta` into the default database: nothing of them is left behind
    if (bullKeysLeft) expect(await bullKeysLeft()).toEqual([]);
  });
});
