import { describe, expect, it } from '../test/fixtures.js';
import { globalKeys } from './keys.js';
import { SIGN_IN_LINK_TTL_MS, safeNext, userIdOfEmail } from './sign-in.js';

const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));

describe('sign-in links (real Redis)', () => {
  it('a link signs its address in once: the second use is refused', async ({ engine }) => {
    const { token, userId } = await engine.signIn.issue('  Ann@Example.COM ', '/events/ev_abcdefghijkl');
    expect(userId).toBe(userIdOfEmail('ann@example.com'));
    expect(await engine.signIn.redeem(token)).toEqual({ userId, email: 'ann@example.com', next: '/events/ev_abcdefghijkl' });
    expect(await code(engine.signIn.redeem(token))).toBe('SIGN_IN_LINK_INVALID');
  });

  it('of many concurrent uses of one link exactly one signs in', async ({ engine }) => {
    const { token } = await engine.signIn.issue('race@example.com');
    const results = await Promise.all(Array.from({ length: 20 }, () => code(engine.signIn.redeem(token))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'SIGN_IN_LINK_INVALID')).toHaveLength(19);
  });

  it('a link expires after 15 minutes by the engine clock, and an expired link is gone after the attempt', async ({ engine, clock, redis, ns }) => {
    const early = await engine.signIn.issue('bo@example.com');
    clock.advance(SIGN_IN_LINK_TTL_MS - 1);
    expect(await code(engine.signIn.redeem(early.token))).toBe('ok');
    const late = await engine.signIn.issue('bo@example.com');
    clock.advance(SIGN_IN_LINK_TTL_MS);
    expect(await code(engine.signIn.redeem(late.token))).toBe('SIGN_IN_LINK_INVALID');
    expect(await redis.keys(globalKeys(ns).signInLink('*'))).toEqual([]);
  });

  it('stores only the hash of the token, with a Redis TTL as garbage collection', async ({ engine, redis, ns }) => {
    const { token } = await engine.signIn.issue('cy@example.com');
    const keys = await redis.keys(globalKeys(ns).signInLink('*'));
    expect(keys).toHaveLength(1);
    expect(keys[0]).not.toContain(token);
    expect(await redis.get(keys[0]!)).not.toContain(token);
    const ttl = await redis.pttl(keys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(SIGN_IN_LINK_TTL_MS);
    await engine.signIn.redeem(token);
  });

  it('refuses malformed and unknown tokens without touching Redis state', async ({ engine }) => {
    for (const bad of ['', 'short', 'a'.repeat(43), 'x'.repeat(42) + '{', '../../etc']) {
      expect(await code(engine.signIn.redeem(bad))).toBe('SIGN_IN_LINK_INVALID');
    }
  });

  it('returns only to a path of this site', () => {
    expect(safeNext('/bookings/bk_1?x=1')).toBe('/bookings/bk_1?x=1');
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example', 'javascript:alert(1)', '/a b', undefined, '']) expect(safeNext(bad)).toBe('/');
  });
});
