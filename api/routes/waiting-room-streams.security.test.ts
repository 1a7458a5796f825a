import type { UserId } from '../../engine/ids.js';
import { globalKeys } from '../../engine/keys.js';
import { gaEvent } from '../../test/events.js';
import { describe, expect, it } from '../../test/fixtures.js';
import { startApi, token, type TestApi } from '../../test/http.js';
import { waitFor } from '../../test/wait.js';

const T0 = Date.UTC(2030, 0, 1, 12, 0, 0);

/** Opens a status stream and reads its first message; `close()` hangs up as a browser tab would. */
async function openStream(api: TestApi, queueId: string, bearer: string) {
  const ctl = new AbortController();
  const res = await fetch(`${api.url}/api/queue/${queueId}/events?access_token=${bearer}`, { signal: ctl.signal });
  let first = '';
  if (res.status === 200) first = new TextDecoder().decode((await res.body!.getReader().read()).value);
  const body = (res.status === 200 ? null : await res.json()) as { type: string; detail: string; status: number } | null;
  return { status: res.status, headers: res.headers, body, first, close: () => ctl.abort() };
}

describe('waiting-room status streams and reads are capped (one user held 300 streams, each a Redis script a second)', () => {
  it('caps open streams per user and per IP across API processes (429 problem+json, Retry-After); a closed stream frees its slot', async ({ engine, clock, onTestFinished }) => {
    clock.set(T0);
    // the sale opens later: every status stays "waiting", so the streams stay open
    const ev = await engine.createEvent({
      ...gaEvent(10), salesOpenAt: new Date(T0 + 3600_000).toISOString(),
      queue: { enabled: true, opensAt: new Date(T0 - 60_000).toISOString(), admissionRatePerSecond: 5, passTtlSeconds: 60 },
    });
    const streams = { perUser: 2, perIp: 3 };
    const [a, b] = [await startApi(engine, { streams }), await startApi(engine, { streams })];
    const open: { close(): void }[] = [];
    onTestFinished(async () => {
      for (const s of open) s.close();
      await Promise.all([a.close(), b.close()]);
    });
    const q: Record<string, { queueId: string; bearer: string }> = {};
    for (const who of ['ann', 'bob', 'cat']) {
      const bearer = await token(who);
      q[who] = { bearer, queueId: (await engine.waitingRoom.join(ev.id, who as UserId)).status.queueId };
    }
    const stream = async (api: TestApi, who: string) => {
      const s = await openStream(api, q[who]!.queueId, q[who]!.bearer);
      open.push(s);
      return s;
    };

    // two streams for ann, one on each API process; a third on either is refused
    const [s1, s2] = [await stream(a, 'ann'), await stream(b, 'ann')];
    expect([s1.status, s2.status]).toEqual([200, 200]);
    expect(s1.first).toMatch(/^event: status\ndata: \{.*"status":"waiting"/);
    const third = await stream(a, 'ann');
    expect(third.status).toBe(429);
    expect(third.headers.get('content-type')).toBe('application/problem+json');
    expect(third.headers.get('retry-after')).toBe('30');
    expect(third.body).toMatchObject({ type: '/problems/too-many-streams', status: 429 });
    expect(third.body!.detail).toMatch(/account/);

    // hanging up frees the slot (on whichever process held it)
    s2.close();
    const again = await waitFor('the closed stream\'s slot is free', async () => {
      const s = await stream(a, 'ann');
      return s.status === 200 ? s : null;
    });
    expect(again.first).toMatch(/"status":"waiting"/);

    // per IP (everyone here is 127.0.0.1): ann 2 + bob 1 = 3, so cat is refused although cat has none open
    expect((await stream(b, 'bob')).status).toBe(200);
    const cat = await stream(a, 'cat');
    expect([cat.status, cat.body!.type]).toEqual([429, '/problems/too-many-streams']);
    expect(cat.body!.detail).toMatch(/address/);
    // a refused stream took nothing: after bob leaves, cat gets in
    open.at(-2)!.close();
    await waitFor('cat gets a stream', async () => (await stream(a, 'cat')).status === 200);
  });

  it('a slot left by a crashed process lapses after its lease, so no slot leaks for good', async ({ engine, clock, redis, ns, onTestFinished }) => {
    clock.set(T0 + 7200_000);
    const ev = await engine.createEvent({
      ...gaEvent(10), salesOpenAt: new Date(T0 + 10 * 3600_000).toISOString(),
      queue: { enabled: true, opensAt: new Date(T0).toISOString(), admissionRatePerSecond: 5, passTtlSeconds: 60 },
    });
    const api = await startApi(engine, { streams: { perUser: 1, perIp: 0, leaseMs: 30_000 } });
    const open: { close(): void }[] = [];
    onTestFinished(async () => {
      for (const s of open) s.close();
      await api.close();
    });
    const dan = await token('dan');
    const { queueId } = (await engine.waitingRoom.join(ev.id, 'dan' as UserId)).status;
    // a process that died while dan's stream was open: its slot is still in Redis, never dropped
    expect(await redis.streamSlot(globalKeys(ns).streams('user', 'dan'), 'crashed', clock.now(), 30_000, 1, 'take')).toEqual([1, 1]);
    const refused = await openStream(api, queueId, dan);
    expect(refused.status).toBe(429);
    clock.advance(30_001);
    const s = await openStream(api, queueId, dan);
    open.push(s);
    expect(s.status).toBe(200);
    // the Redis key expires on its own too (no key is left behind by streams that are gone)
    expect(await redis.pttl(globalKeys(ns).streams('user', 'dan'))).toBeGreaterThan(0);
  });

  it('limits status reads (GET /api/queue/:queueId) per user: 429 rate-limited with Retry-After', async ({ engine, clock, onTestFinished }) => {
    clock.set(T0 + 7200_000);
    const ev = await engine.createEvent({
      ...gaEvent(10), salesOpenAt: new Date(T0 + 10 * 3600_000).toISOString(),
      queue: { enabled: true, opensAt: new Date(T0).toISOString(), admissionRatePerSecond: 5, passTtlSeconds: 60 },
    });
    const api = await startApi(engine, { rateLimit: { perUser: 3, perIp: 0, windowSeconds: 60, trustProxyHops: 0 } });
    onTestFinished(() => api.close());
    const eve = await token('eve');
    const { queueId } = (await engine.waitingRoom.join(ev.id, 'eve' as UserId)).status;
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await api.call('GET', `/api/queue/${queueId}`, { token: eve })).status);
    expect(codes).toEqual([200, 200, 200, 429]);
    const limited = await api.call('GET', `/api/queue/${queueId}`, { token: eve });
    expect([limited.json.type, Number(limited.headers.get('retry-after'))]).toEqual(['/problems/rate-limited', expect.any(Number)]);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // another user is not affected, and leaving (DELETE) is not a status read
    const fay = await token('fay');
    const fayQ = (await engine.waitingRoom.join(ev.id, 'fay' as UserId)).status.queueId;
    expect((await api.call('GET', `/api/queue/${fayQ}`, { token: fay })).status).toBe(200);
    expect((await api.call('DELETE', `/api/queue/${queueId}`, { token: eve })).status).toBe(200);
  });
});
