import { createHash } from 'node:crypto';
import type { UserId } from '../../engine/ids.js';
import { memberOf } from '../../engine/waiting-room/waiting-room.js';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { startApi, token } from '../../test/http.js';
import { snapshotPg, snapshotRedis } from '../../test/state.js';
import { verifyShuffle } from '../../scripts/verify-shuffle.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

describe('waiting room API', () => {
  it('join (201, then 200 with the same place), status, SSE, fairness, leave; 404 for strangers', async ({ engine, deps, clock, onTestFinished }) => {
    clock.set(T0);
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const admin = await token('root', { admin: true });
    const created = await api.call('POST', '/api/admin/events', {
      token: admin,
      body: {
        ...gaEvent(20), salesOpenAt: new Date(T0 + 60_000).toISOString(), maxTicketsPerUser: 2,
        queue: { enabled: true, opensAt: new Date(T0 - 60_000).toISOString(), admissionRatePerSecond: 5, passTtlSeconds: 300 },
      },
    });
    expect(created.status).toBe(201);
    expect(created.json.queue).toMatchObject({ enabled: true, admissionRatePerSecond: 5 });
    expect(created.json.queue.seedHash).toMatch(/^[0-9a-f]{64}$/);
    const ev = created.json;
    const [ann, bob, cat] = await Promise.all(['ann', 'bob', 'cat'].map((u) => token(u)));

    const first = await api.call('POST', `/api/events/${ev.id}/queue`, { token: ann });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ status: 'waiting', position: null, eventId: ev.id });
    const again = await api.call('POST', `/api/events/${ev.id}/queue`, { token: ann });
    expect(again.status).toBe(200);
    expect(again.json.queueId).toBe(first.json.queueId);
    await api.call('POST', `/api/events/${ev.id}/queue`, { token: bob });
    const q = first.json.queueId;

    // before the sale opens nobody books
    const tooEarly = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 1 } });
    expect([tooEarly.status, tooEarly.json.type]).toEqual([409, '/problems/sales-not-open']);

    // before the draw the seed is secret
    expect((await api.call('GET', `/api/events/${ev.id}/queue/fairness`)).json).toMatchObject({ seed: null, preOpening: { count: 2, places: [] } });
    clock.set(T0 + 60_000);
    // after it opens, the booking API refuses anyone without a pass, on a waiting-room event
    const direct = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 1 } });
    expect([direct.status, direct.json.type]).toEqual([403, '/problems/admission-required']);
    const status = await api.call('GET', `/api/queue/${q}`, { token: ann });
    expect(status.status).toBe(200);
    expect(status.json.position).toBeGreaterThanOrEqual(1);
    expect(status.json.aheadOfYou).toBe(status.json.position - 1);
    expect(status.json.estimatedWaitSeconds).toBeGreaterThan(0);
    // someone else's place, or a made-up one: 404 (no existence leak)
    expect((await api.call('GET', `/api/queue/${q}`, { token: cat })).status).toBe(404);
    expect((await api.call('GET', '/api/queue/q_000000000000_0123456789abcdef', { token: cat })).status).toBe(404);
    expect((await api.call('GET', `/api/queue/${q}`)).status).toBe(401);

    // the draw can be checked by anyone, with the verifier
    const lines: string[] = [];
    expect(await verifyShuffle(api.url, ev.id, (s) => lines.push(s))).toBe(true);
    expect(lines.at(-1)).toMatch(/^VERIFIED/);
    // ... but it does not link people: someone who knows the user ids and not the server secret cannot tell who is
    // where (the ids used to be sha256(eventId:userId), which anyone can recompute)
    const published = (await api.call('GET', `/api/events/${ev.id}/queue/fairness`)).json.preOpening.places.map((p: { queueId: string }) => p.queueId.slice(-16));
    expect(published).toHaveLength(2);
    for (const who of ['ann', 'bob', 'root']) {
      const guess = createHash('sha256').update(`${ev.id}:${who}`).digest('hex').slice(0, 16);
      expect(published).not.toContain(guess);
    }
    expect(published).toContain(memberOf(deps.config.admissionSecret, ev.id, 'ann' as UserId));
    expect(memberOf('another-secret-0123456789', ev.id, 'ann' as UserId)).not.toBe(q.slice(-16));

    // admitted: the status carries the pass, and the pass books (once)
    await engine.waitingRoom.admit(ev.id, 10);
    const admitted = await api.call('GET', `/api/queue/${q}?access_token=${ann}`);
    expect(admitted.json).toMatchObject({ status: 'admitted', aheadOfYou: 0 });
    const pass = admitted.json.admissionToken as string;
    const booked = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 1 }, headers: { 'x-admission-token': pass } });
    expect(booked.status).toBe(201);
    const twice = await api.call('POST', '/api/bookings', { token: ann, body: { eventId: ev.id, ticketCount: 1 }, headers: { 'x-admission-token': pass } });
    expect([twice.status, twice.json.type]).toEqual([403, '/problems/admission-required']);
    const stolen = await api.call('POST', '/api/bookings', { token: bob, body: { eventId: ev.id, ticketCount: 1 }, headers: { 'x-admission-token': pass } });
    expect([stolen.status, stolen.json.detail]).toEqual([403, 'the admission pass is not valid (wrong-user)']);

    // Server-Sent Events: the first message is the current status
    const sse = await fetch(`${api.url}/api/queue/${q}/events?access_token=${ann}`);
    expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await sse.text(); // admitted is final: the stream ends after one message
    expect(text).toMatch(/^event: status\ndata: \{.*"status":"admitted"/);

    // leave is final
    const bobQ = (await api.call('POST', `/api/events/${ev.id}/queue`, { token: bob })).json.queueId;
    expect((await api.call('DELETE', `/api/queue/${bobQ}`, { token: bob })).json).toEqual({ queueId: bobQ, status: 'left' });
    expect((await api.call('POST', `/api/events/${ev.id}/queue`, { token: bob })).json.type).toBe('/problems/queue-left');
  });

  it('admin settings: PUT changes the waiting room and keeps the seed; joins before it opens are refused', async ({ engine, clock, redis, ns, pg, onTestFinished }) => {
    clock.set(T0);
    const api = await startApi(engine);
    onTestFinished(() => api.close());
    const ev = await engine.createEvent(gaEvent(10));
    const admin = await token('root', { admin: true });
    const user = await token('early-bird');
    expect((await api.call('POST', `/api/events/${ev.id}/queue`, { token: user })).json.type).toBe('/problems/queue-closed');
    const body = { enabled: true, opensAt: new Date(T0 + 60_000).toISOString(), salesOpenAt: new Date(T0 + 120_000).toISOString(), admissionRatePerSecond: 50, passTtlSeconds: 120, maxTicketsPerUser: 3 };
    expect((await api.call('PUT', `/api/admin/events/${ev.id}/queue`, { token: user, body })).status).toBe(403);
    const set = await api.call('PUT', `/api/admin/events/${ev.id}/queue`, { token: admin, body });
    expect(set.status).toBe(200);
    expect(set.json).not.toHaveProperty('seed');
    const again = await api.call('PUT', `/api/admin/events/${ev.id}/queue`, { token: admin, body: { ...body, admissionRatePerSecond: 80 } });
    expect(again.json.seedHash).toBe(set.json.seedHash);
    expect((await api.call('GET', `/api/events/${ev.id}`)).json).toMatchObject({ maxTicketsPerUser: 3, salesOpenAt: body.salesOpenAt, queue: { admissionRatePerSecond: 80 } });
    const r0 = await snapshotRedis(redis, `${ns}:{evt:${ev.id}}:*`);
    const p0 = await snapshotPg(pg);
    const early = await api.call('POST', `/api/events/${ev.id}/queue`, { token: user });
    expect([early.status, early.json.type, early.json.opensAt]).toEqual([409, '/problems/queue-closed', body.opensAt]);
    expect(await snapshotRedis(redis, `${ns}:{evt:${ev.id}}:*`)).toEqual(r0);
    expect(await snapshotPg(pg)).toEqual(p0);
    const bad = await api.call('PUT', `/api/admin/events/${ev.id}/queue`, { token: admin, body: { ...body, salesOpenAt: new Date(T0).toISOString() } });
    expect([bad.status, bad.json.errors[0].field]).toEqual([400, 'salesOpenAt']);
  });
});
