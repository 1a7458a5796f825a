import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { inProcessApi, token } from '../../test/http.js';
import { signInLinkFor } from '../../test/outbox-mail.js';
import { createOutboxMailer } from '../../integrations/mail/outbox.js';
import { userIdOfEmail, type Engine } from '../../engine/index.js';
import { SESSION_COOKIE } from '../middleware/session.js';

const ORIGIN = 'http://localhost';

/** The web app over app.request, with sign-in mail written to a folder of its own. */
async function setUp(engine: Engine, onTestFinished: (fn: () => Promise<void>) => void) {
  const dir = await mkdtemp(join(tmpdir(), 'fg-web-'));
  const api = inProcessApi(engine, { web: { mailer: createOutboxMailer({ dir }) } });
  onTestFinished(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  const form = (path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    api.app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  /** Signs `email` in through the e-mailed link; the session cookie and the CSRF token its pages carry. */
  const signIn = async (email: string, next = '/') => {
    const asked = await form('/signin', { email, next });
    expect(asked.status).toBe(200);
    const link = await signInLinkFor(dir, email);
    expect(link).not.toBeNull();
    const opened = await api.app.request(link!);
    const cookie = /^fg_session=([^;]+)/.exec(opened.headers.get('set-cookie') ?? '')?.[1];
    const page = await api.app.request('/', { headers: { cookie: `${SESSION_COOKIE}=${cookie}` } });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
    return { link: link!, opened, cookie: `${SESSION_COOKIE}=${cookie}`, csrf: csrf! };
  };
  return { api, dir, form, signIn };
}

const onSale = () => ({ ...gaEvent(10, { name: 'Web Night' }), salesOpenAt: new Date(Date.UTC(2029, 0, 1)).toISOString() });

describe('web sign-in', () => {
  it('the e-mailed link signs in once: an HttpOnly SameSite=Lax session cookie, back to the page asked for', async ({ engine, onTestFinished }) => {
    const { api, signIn } = await setUp(engine, onTestFinished);
    const s = await signIn('ann@example.com', '/bookings');
    expect(s.opened.status).toBe(303);
    expect(s.opened.headers.get('location')).toBe('/bookings');
    const setCookie = s.opened.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).toMatch(/Path=\//);
    // the API takes the cookie: the buyer is the one of the e-mail address
    const mine = await api.call('GET', '/api/bookings', { headers: { cookie: s.cookie } });
    expect(mine.status).toBe(200);
    // the link again: refused, no cookie
    const again = await api.app.request(s.link);
    expect(again.status).toBe(400);
    expect(again.headers.get('set-cookie')).toBeNull();
    expect(await again.text()).toContain('not valid any more');
  });

  it('refuses a bad address and an off-site return path', async ({ engine, onTestFinished }) => {
    const { form, dir, signIn } = await setUp(engine, onTestFinished);
    const bad = await form('/signin', { email: 'not-an-address' });
    expect(bad.status).toBe(400);
    expect(await signInLinkFor(dir, 'not-an-address')).toBeNull();
    const s = await signIn('bo@example.com', '//evil.example/x');
    expect(s.opened.headers.get('location')).toBe('/');
  });
});

describe('sign-in mail limits', () => {
  it('sends at most 3 links per address in 10 minutes: the 4th ask is refused and sends nothing', async ({ engine, onTestFinished }) => {
    const { form, dir } = await setUp(engine, onTestFinished);
    const email = 'flood@example.com';
    for (let i = 0; i < 3; i++) expect((await form('/signin', { email })).status).toBe(200);
    const mails = async () => (await readdir(dir)).filter((f) => !f.startsWith('.')).length;
    expect(await mails()).toBe(3);
    const fourth = await form('/signin', { email });
    expect(fourth.status).toBe(429);
    expect(await fourth.text()).toContain('Too many sign-in links');
    expect(await mails()).toBe(3);
  });
});

describe('CSRF with the session cookie', () => {
  it('the API refuses a cookie-signed write without the CSRF token, and holds nothing', async ({ engine, onTestFinished }) => {
    const { api, signIn } = await setUp(engine, onTestFinished);
    const ev = await engine.createEvent(onSale());
    const s = await signIn('cy@example.com');
    const body = { eventId: ev.id, tierId: ev.tiers[0]!.id, ticketCount: 1 };
    for (const csrf of [undefined, 'wrong', `${s.csrf}x`]) {
      const r = await api.call('POST', '/api/bookings', { body, headers: { cookie: s.cookie, ...(csrf ? { 'x-csrf-token': csrf } : {}) } });
      expect(r.status).toBe(403);
      expect(r.json.type).toBe('/problems/csrf');
    }
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(10);
    const ok = await api.call('POST', '/api/bookings', { body, headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    expect(ok.status).toBe(201);
    const b = await engine.bookings.get(ok.json.bookingId, { userId: userIdOfEmail('cy@example.com') });
    expect(b.ticketCount).toBe(1);
    // a bearer token needs no CSRF token (no browser sends it on its own)
    const bearer = await api.call('POST', '/api/bookings', { body, token: await token('api-user') });
    expect(bearer.status).toBe(201);
  });

  it("the web app's forms need the session's token and this origin", async ({ engine, onTestFinished }) => {
    const { api, form, signIn } = await setUp(engine, onTestFinished);
    const ev = await engine.createEvent(onSale());
    const s = await signIn('di@example.com');
    const fields = { tierId: ev.tiers[0]!.id, count: '2', key: 'key-0123456789' };
    const noToken = await form(`/events/${ev.id}/hold`, fields, { cookie: s.cookie });
    expect(noToken.status).toBe(403);
    const otherSite = await form(`/events/${ev.id}/hold`, { ...fields, _csrf: s.csrf }, { cookie: s.cookie, origin: 'https://evil.example' });
    expect(otherSite.status).toBe(403);
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(10);
    expect((await api.call('GET', '/api/bookings', { headers: { cookie: s.cookie } })).json.bookings).toEqual([]);
    // the public origin (PUBLIC_BASE_URL) is this site too, as behind a proxy that ends TLS
    const viaProxy = await form(`/events/${ev.id}/hold`, { ...fields, count: '1', _csrf: s.csrf }, { cookie: s.cookie, origin: 'http://floodgate.test' });
    expect(viaProxy.status).toBe(303);
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(9);
    const held = await form(`/events/${ev.id}/hold`, { ...fields, key: 'key-abcdefghij', _csrf: s.csrf }, { cookie: s.cookie });
    expect(held.status).toBe(303);
    expect(held.headers.get('location')).toMatch(/^\/bookings\/bk_[a-z0-9_]+$/);
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(7);
  });

  it('pages send a CSP with no inline script, and escape what they show', async ({ engine, onTestFinished }) => {
    const { api } = await setUp(engine, onTestFinished);
    const ev = await engine.createEvent({ ...onSale(), name: '<script>alert(1)</script> & Friends' });
    for (const path of ['/', `/events/${ev.id}`, '/signin']) {
      const r = await api.app.request(path);
      expect(r.status).toBe(200);
      const policy = r.headers.get('content-security-policy')!;
      expect(policy).toMatch(/script-src 'self'(;|$)/);
      const text = await r.text();
      expect(text).not.toContain('<script>alert(1)</script>');
      expect([...text.matchAll(/<script\b([^>]*)>/g)].map((m) => m[1])).toEqual([' src="/assets/web.js" defer']);
    }
    expect(await (await api.app.request(`/events/${ev.id}`)).text()).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; Friends');
  });
});

describe('page timings (POST /api/client-timings)', () => {
  const count = async (api: { metrics: { registry: { getSingleMetricAsString(n: string): Promise<string> } } }, labels: string) => {
    const text = await api.metrics.registry.getSingleMetricAsString('floodgate_client_page_seconds');
    const m = new RegExp(`floodgate_client_page_seconds_count\\{[^}]*${labels.split(',').join('[^}]*')}[^}]*\\} (\\d+)`).exec(text);
    return m ? Number(m[1]) : 0;
  };

  it('records each timing in the histogram by metric, device and page', async ({ engine, onTestFinished }) => {
    const { api } = await setUp(engine, onTestFinished);
    const r = await api.call('POST', '/api/client-timings', { body: { page: 'checkout', device: 'mobile', ttfbMs: 120, domReadyMs: 480, loadMs: 900, lcpMs: 700 } });
    expect(r.status).toBe(204);
    for (const metric of ['ttfb', 'dom_ready', 'load', 'lcp']) expect(await count(api, `metric="${metric}",device="mobile",page="checkout"`)).toBe(1);
  });

  it('refuses what would make new series or absurd values, and records nothing of it', async ({ engine, onTestFinished }) => {
    const { api } = await setUp(engine, onTestFinished);
    const ok = { page: 'events', device: 'desktop', ttfbMs: 1, domReadyMs: 2, loadMs: 3 };
    for (const [field, body] of [
      ['page', { ...ok, page: 'evil' }],
      ['device', { ...ok, device: 'tablet' }],
      ['loadMs', { ...ok, loadMs: -1 }],
      ['ttfbMs', { ...ok, ttfbMs: 1e12 }],
      ['extra', { ...ok, extra: 'x' }],
    ] as const) {
      const r = await api.call('POST', '/api/client-timings', { body });
      expect(r.status).toBe(400);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
      if (field !== 'extra') expect(r.json.errors[0].field).toBe(field);
    }
    expect(await count(api, 'metric="load"')).toBe(0);
  });
});
