import { Hono } from 'hono';
import { sign } from 'hono/jwt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AppEnv } from '../env.js';
import { createAuth, createTokenCache } from './auth.js';

const SECRET = 'auth-test-secret-0123456789abcdef';
const T0 = Date.UTC(2030, 0, 1);

function app(o: { cacheSize?: number } = {}) {
  const auth = createAuth(SECRET, o);
  return new Hono<AppEnv>().use('*', auth()).get('/', (c) => c.json(c.var.user));
}
const call = (a: ReturnType<typeof app>, token: string) => a.request('/', { headers: { authorization: `Bearer ${token}` } });
const tokenFor = (sub: string, claims: Record<string, unknown> = {}, secret = SECRET) =>
  sign({ sub, iat: Math.floor(T0 / 1000), exp: Math.floor(T0 / 1000) + 3600, ...claims }, secret, 'HS256');

describe('auth: verified tokens are kept for their lifetime', () => {
  afterEach(() => vi.useRealTimers());

  it('a kept token still expires: 200 before exp (+30 s tolerance), 401 "expired" after, the same as an unkept one', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0);
    const a = app();
    const t = await tokenFor('ann');
    expect(await (await call(a, t)).json()).toEqual({ id: 'ann', admin: false, gate: false });
    vi.setSystemTime(T0 + 3600_000 + 29_000);
    expect((await call(a, t)).status).toBe(200);
    vi.setSystemTime(T0 + 3600_000 + 31_000);
    const late = await call(a, t);
    expect([late.status, ((await late.json()) as { detail: string }).detail]).toEqual([401, 'the token has expired']);
  });

  it('a token that is not valid yet (nbf) is refused even after it was verified once inside its window', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(T0 + 120_000);
    const a = app();
    const t = await tokenFor('bo', { nbf: Math.floor(T0 / 1000) + 60 });
    expect((await call(a, t)).status).toBe(200);
    vi.setSystemTime(T0); // 60 s before nbf, beyond the 30 s tolerance
    expect((await call(a, t)).status).toBe(401);
  });

  it('keeps nothing for a bad token: a forged signature or a changed claim is refused after the real token was kept', async () => {
    const a = app();
    const real = await tokenFor('cy', { exp: Math.floor(Date.now() / 1000) + 3600 });
    expect((await call(a, real)).status).toBe(200);
    const forged = await tokenFor('cy', { exp: Math.floor(Date.now() / 1000) + 3600 }, 'another-secret-0123456789abcdef');
    const [header, , sig] = real.split('.');
    const admin = Buffer.from(JSON.stringify({ sub: 'cy', role: 'admin', exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url');
    for (const bad of [forged, `${header}.${admin}.${sig}`, `${real}x`]) {
      expect((await call(a, bad)).status).toBe(401);
      expect((await call(a, bad)).status).toBe(401); // refused again: not kept
    }
  });

  it('roles come from the kept claims: admin and gate', async () => {
    const a = app();
    const exp = Math.floor(Date.now() / 1000) + 3600;
    for (const [role, want] of [['admin', { admin: true, gate: true }], ['gate', { admin: false, gate: true }]] as const) {
      const t = await tokenFor('dee', { role, exp });
      for (let i = 0; i < 2; i++) expect(await (await call(a, t)).json()).toEqual({ id: 'dee', ...want });
    }
  });
});

describe('createTokenCache', () => {
  const user = (id: string) => ({ id: id as never, admin: false, gate: false });

  it('is bounded: the least recently used token goes first', () => {
    const c = createTokenCache(2);
    c.set('a', { user: user('a'), fromMs: 0, untilMs: 100 });
    c.set('b', { user: user('b'), fromMs: 0, untilMs: 100 });
    expect(c.get('a', 1)?.id).toBe('a'); // a is now the most recent
    c.set('c', { user: user('c'), fromMs: 0, untilMs: 100 });
    expect(c.size).toBe(2);
    expect([c.get('a', 1)?.id, c.get('b', 1), c.get('c', 1)?.id]).toEqual(['a', undefined, 'c']);
  });

  it('answers only inside the validity window, and drops a token past it', () => {
    const c = createTokenCache();
    c.set('t', { user: user('t'), fromMs: 10, untilMs: 20 });
    expect(c.get('t', 5)).toBeUndefined();
    c.set('t', { user: user('t'), fromMs: 10, untilMs: 20 });
    expect(c.get('t', 15)?.id).toBe('t');
    expect(c.get('t', 20)).toBeUndefined();
    expect(c.size).toBe(0);
  });
});
