import { Redis } from 'ioredis';
import { describe, expect, it } from '../test/fixtures.js';
import { TEST_REDIS_URL } from '../test/env.js';
import { startApi, token } from '../test/http.js';
import { createJobSink } from '../integrations/queues.js';

describe('bull-board at /admin/queues', () => {
  it('admins only: a token in the link becomes a path-scoped HttpOnly cookie; others get 401', async ({ engine, ns, onTestFinished }) => {
    const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const sink = createJobSink(bull, `${ns}:bull`, { sms: false });
    const api = await startApi({ ...engine }, {});
    const board = await startApi(engine, { queues: Object.values(sink.queues) });
    onTestFinished(async () => {
      await api.close();
      await board.close();
      await sink.close();
      bull.disconnect();
    });
    expect((await api.call('GET', '/admin/queues')).status).toBe(404); // no queues given: no board
    expect((await board.call('GET', '/admin/queues')).status).toBe(401);
    expect((await board.call('GET', `/admin/queues?access_token=${await token('someone')}`)).status).toBe(401);
    expect((await board.call('GET', '/admin/queues/api/queues', { token: await token('someone') })).status).toBe(401);
    const admin = await token('root', { admin: true });
    const link = await fetch(`${board.url}/admin/queues?access_token=${admin}`, { redirect: 'manual' });
    expect(link.status).toBe(302);
    expect(link.headers.get('location')).toBe('/admin/queues');
    const cookie = link.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^fg_admin=.*; Max-Age=3600; Path=\/admin\/queues; HttpOnly; SameSite=Strict/);
    const page = await fetch(`${board.url}/admin/queues`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
    const queues = await fetch(`${board.url}/admin/queues/api/queues`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(queues.status).toBe(200);
    const names = ((await queues.json()) as { queues: { name: string }[] }).queues.map((q) => q.name).sort();
    expect(names).toEqual(['{notify}', '{payment}', '{refund}']);
  });
});
