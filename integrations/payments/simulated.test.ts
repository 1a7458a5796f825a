import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from '../../test/fixtures.js';
import { TEST_REDIS_URL } from '../../test/env.js';
import type { AuthorizeInput } from './provider.js';
import type { Namespace } from '../../engine/ids.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';
import { createSimulatedProvider, listSimulatedPayments, SimulatedPaymentError } from './simulated.js';

const key = (step: string) => `bk_${randomUUID()}:a1:${step}`;
const input = (over: Partial<AuthorizeInput> = {}): AuthorizeInput => ({
  bookingId: `bk_${randomUUID()}`,
  attempt: 1,
  amount: 5000,
  currency: 'EUR',
  paymentMethodId: 'pm_card_visa',
  idempotencyKey: key('authorize'),
  ...over,
});

describe('simulated provider', () => {
  describe('authorize', () => {
    it.for(['pm_card_visa', 'pm_card_mastercard'])('authorizes %s and stores the payment in Redis', async (pm, { redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const req = input({ paymentMethodId: pm, amount: 4200, attempt: 2 });
      const res = await p.authorize(req);
      expect(res).toEqual({ outcome: 'authorized', paymentRef: expect.stringMatching(/^pi_sim_[0-9a-f]{24}$/) });
      const ref = (res as { paymentRef: string }).paymentRef;
      expect(await redis.hget(simulatedPaymentKeys(ns).payment(ref), 'status')).toBe('authorized');
      const mine = (await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((x) => x.bookingId === req.bookingId);
      expect(mine).toEqual([{ ref, bookingId: req.bookingId, attempt: 2, amount: 4200, currency: 'EUR', status: 'authorized', refunded: 0 }]);
    });

    it.for([
      ['pm_card_chargeDeclined', 'card_declined'],
      ['pm_card_chargeDeclinedInsufficientFunds', 'insufficient_funds'],
      ['pm_card_chargeDeclinedExpiredCard', 'expired_card'],
      ['pm_card_authenticationRequired', 'authentication_required'],
      ['pm_card_doesNotExist', 'payment_method_not_found'],
    ])('declines %s with code %s and records a declined payment', async ([pm, code], { redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const req = input({ paymentMethodId: pm });
      const res = await p.authorize(req);
      expect(res).toMatchObject({ outcome: 'declined', code, paymentRef: expect.stringMatching(/^pi_sim_/), message: expect.any(String) });
      const mine = (await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((x) => x.bookingId === req.bookingId);
      expect(mine).toMatchObject([{ status: 'declined', refunded: 0 }]);
      // A declined payment moves no money: capture fails, cancel is a no-op.
      const ref = (res as { paymentRef: string }).paymentRef;
      expect(await p.capture(ref, key('capture'))).toMatchObject({ outcome: 'failed' });
      expect(await p.cancel(ref, key('cancel'))).toEqual({ outcome: 'cancelled' });
    });

    it('answers unavailable for pm_card_timeout after timeoutMs, stores nothing, and frees the key', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns), timeoutMs: 250 });
      const req = input({ paymentMethodId: 'pm_card_timeout' });
      const t0 = Date.now();
      const res = await p.authorize(req);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
      expect(res).toEqual({ outcome: 'unavailable', message: expect.stringContaining('250 ms') });
      expect((await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((x) => x.bookingId === req.bookingId)).toEqual([]);
      expect(await redis.exists(simulatedPaymentKeys(ns).idem(req.idempotencyKey))).toBe(0);
    });

    it('waits latencyMs before answering', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns), latencyMs: [60, 80] });
      const t0 = Date.now();
      expect(await p.authorize(input())).toMatchObject({ outcome: 'authorized' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    });

    it('throws for an amount that is not a positive integer, and stores nothing', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const req = input({ amount: 12.5 });
      await expect(p.authorize(req)).rejects.toMatchObject({ name: 'SimulatedPaymentError', code: 'invalid_request' });
      expect(await redis.exists(simulatedPaymentKeys(ns).idem(req.idempotencyKey))).toBe(0);
    });
  });

  describe('idempotency', () => {
    it('replays the first result for the same key and parameters (one payment)', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const req = input();
      const first = await p.authorize(req);
      const again = await p.authorize({ ...req });
      expect(again).toEqual(first);
      expect((await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((x) => x.bookingId === req.bookingId)).toHaveLength(1);
    });

    it('replays a decline too (the same payment ref)', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const req = input({ paymentMethodId: 'pm_card_chargeDeclined' });
      expect(await p.authorize(req)).toEqual(await p.authorize(req));
    });

    it.for([
      ['amount', { amount: 5001 }],
      ['currency', { currency: 'USD' }],
      ['payment method', { paymentMethodId: 'pm_card_mastercard' }],
    ] as const)('throws idempotency_key_reused when the key comes back with another %s, and changes nothing', async ([, change], { redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const req = input();
      const first = await p.authorize(req);
      const err = await p.authorize({ ...req, ...change }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SimulatedPaymentError);
      expect(err).toMatchObject({ code: 'idempotency_key_reused', message: expect.stringContaining(req.idempotencyKey) });
      const mine = (await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((x) => x.bookingId === req.bookingId);
      expect(mine).toEqual([expect.objectContaining({ ref: (first as { paymentRef: string }).paymentRef, amount: 5000, status: 'authorized' })]);
    });

    it('20 concurrent authorize calls with one key make ONE payment and all answer its ref', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns), latencyMs: [0, 5] });
      const req = input();
      const results = await Promise.all(Array.from({ length: 20 }, () => p.authorize({ ...req })));
      const refs = new Set(results.map((r) => (r.outcome === 'authorized' ? r.paymentRef : r.outcome)));
      expect(refs.size).toBe(1);
      expect([...refs][0]).toMatch(/^pi_sim_/);
      expect((await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).filter((x) => x.bookingId === req.bookingId)).toHaveLength(1);
    });

    it('processes sharing Redis through their own connections see one payment per key, and each other’s payments', async ({ redis, ns, onTestFinished }) => {
      const other = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
      onTestFinished(async () => {
        await other.quit();
      });
      const api = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const worker = createSimulatedProvider({ redis: other, keys: simulatedPaymentKeys(ns) });
      const req = input();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? api : worker).authorize({ ...req })));
      expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
      const ref = (results[0] as { paymentRef: string }).paymentRef;
      expect(await worker.capture(ref, key('capture'))).toEqual({ outcome: 'captured' });
      expect((await listSimulatedPayments(other, simulatedPaymentKeys(ns))).filter((x) => x.bookingId === req.bookingId)).toMatchObject([{ ref, status: 'captured' }]);
    });
  });

  describe('capture, cancel and refund', () => {
    const authorized = async (p: ReturnType<typeof createSimulatedProvider>, amount = 5000) => {
      const res = await p.authorize(input({ amount }));
      if (res.outcome !== 'authorized') throw new Error(`setup: ${res.outcome}`);
      return res.paymentRef;
    };
    const statusOf = async (redis: Redis, ns: Namespace, ref: string) => (await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).find((x) => x.ref === ref);

    it('captures once; a repeat with the same or a new key answers captured', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const ref = await authorized(p);
      const k = key('capture');
      expect(await p.capture(ref, k)).toEqual({ outcome: 'captured' });
      expect(await p.capture(ref, k)).toEqual({ outcome: 'captured' });
      expect(await p.capture(ref, key('capture-2'))).toEqual({ outcome: 'captured' });
      expect(await statusOf(redis, ns, ref)).toMatchObject({ status: 'captured', refunded: 0 });
    });

    it('cancels an authorization; cancel again answers cancelled; capture afterwards fails', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const ref = await authorized(p);
      expect(await p.cancel(ref, key('cancel'))).toEqual({ outcome: 'cancelled' });
      expect(await p.cancel(ref, key('cancel-2'))).toEqual({ outcome: 'cancelled' });
      expect(await p.capture(ref, key('capture'))).toEqual({ outcome: 'failed', message: expect.stringContaining('cancelled') });
      expect(await statusOf(redis, ns, ref)).toMatchObject({ status: 'cancelled' });
    });

    it('does not cancel a captured payment (unavailable: refund instead) and leaves it captured', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const ref = await authorized(p);
      await p.capture(ref, key('capture'));
      const k = key('cancel');
      expect(await p.cancel(ref, k)).toEqual({ outcome: 'unavailable', message: expect.stringContaining('refund') });
      expect(await redis.hexists(simulatedPaymentKeys(ns).payment(ref), `idem:${k}`)).toBe(0); // not saved: unavailable is never replayed
      expect(await statusOf(redis, ns, ref)).toMatchObject({ status: 'captured' });
    });

    it('refunds partially, replays a refund for its key, then refunds the rest', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const ref = await authorized(p, 5000);
      await p.capture(ref, key('capture'));
      const k = key('refund');
      const first = await p.refund(ref, k, 3000);
      expect(first).toEqual({ outcome: 'refunded', refundRef: expect.stringMatching(/^re_sim_/) });
      expect(await p.refund(ref, k, 3000)).toEqual(first);
      expect(await statusOf(redis, ns, ref)).toMatchObject({ status: 'captured', refunded: 3000 });
      const rest = await p.refund(ref, key('refund-rest'));
      expect(rest).toMatchObject({ outcome: 'refunded' });
      expect(rest).not.toEqual(first);
      expect(await statusOf(redis, ns, ref)).toMatchObject({ status: 'refunded', refunded: 5000 });
      // Capturing a refunded payment is still "captured" (it was); a further refund is a caller bug.
      expect(await p.capture(ref, key('capture-again'))).toEqual({ outcome: 'captured' });
      await expect(p.refund(ref, key('refund-3'), 1)).rejects.toMatchObject({ code: 'invalid_request' });
    });

    it('throws for a refund above the unrefunded amount and changes nothing', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const ref = await authorized(p, 5000);
      await p.capture(ref, key('capture'));
      await p.refund(ref, key('refund'), 4000);
      await expect(p.refund(ref, key('refund-2'), 1001)).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringContaining('1000') });
      expect(await statusOf(redis, ns, ref)).toMatchObject({ status: 'captured', refunded: 4000 });
    });

    it('throws for a refund of money never captured', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const ref = await authorized(p);
      await expect(p.refund(ref, key('refund'))).rejects.toMatchObject({ code: 'invalid_request' });
      expect(await statusOf(redis, ns, ref)).toMatchObject({ status: 'authorized', refunded: 0 });
    });

    it('throws resource_missing for an unknown ref, and does not keep the key', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const k = key('capture');
      await expect(p.capture('pi_sim_nope', k)).rejects.toMatchObject({ code: 'resource_missing' });
      expect(await redis.exists(simulatedPaymentKeys(ns).idem(k), simulatedPaymentKeys(ns).payment('pi_sim_nope'))).toBe(0);
    });

    it('races 10 captures against 10 cancels (distinct keys): one side wins and the answers agree with it', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns), latencyMs: [0, 3] });
      const ref = await authorized(p);
      const keys = Array.from({ length: 20 }, (_, i) => key(i % 2 ? `capture-${i}` : `cancel-${i}`));
      const call = (i: number) => (i % 2 ? p.capture(ref, keys[i]!) : p.cancel(ref, keys[i]!));
      const calls = keys.map((_, i) => call(i));
      const outcomes = (await Promise.all(calls)).map((r) => r.outcome);
      const final = await statusOf(redis, ns, ref);
      const captures = outcomes.filter((_, i) => i % 2);
      const cancels = outcomes.filter((_, i) => i % 2 === 0);
      if (final?.status === 'captured') {
        expect(new Set(captures)).toEqual(new Set(['captured']));
        expect(new Set(cancels)).toEqual(new Set(['unavailable']));
      } else {
        expect(final?.status).toBe('cancelled');
        expect(new Set(captures)).toEqual(new Set(['failed']));
        expect(new Set(cancels)).toEqual(new Set(['cancelled']));
      }
      // each saved answer is replayed for its key
      for (const [i, o] of outcomes.entries()) if (o !== 'unavailable') expect((await call(i)).outcome).toBe(o);
    });

    it('10 concurrent refunds of 1000 (distinct keys) on 5000 refund exactly 5000', async ({ redis, ns }) => {
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns) });
      const ref = await authorized(p, 5000);
      await p.capture(ref, key('capture'));
      const settled = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => p.refund(ref, key(`refund-${i}`), 1000)));
      expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(5);
      expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(5);
      expect(await statusOf(redis, ns, ref)).toMatchObject({ status: 'refunded', refunded: 5000 });
    });
  });

  describe('listSimulatedPayments', () => {
    it('lists only the payments under its prefix', async ({ redis, ns }) => {
      const other = `${ns}:other` as Namespace; // inside the file's namespace, so its cleanup removes it
      const p = createSimulatedProvider({ redis, keys: simulatedPaymentKeys(other) });
      const req = input();
      await p.authorize(req);
      const listed = await listSimulatedPayments(redis, simulatedPaymentKeys(other));
      expect(listed).toEqual([expect.objectContaining({ bookingId: req.bookingId, status: 'authorized' })]);
      expect((await listSimulatedPayments(redis, simulatedPaymentKeys(ns))).map((x) => x.bookingId)).not.toContain(req.bookingId);
    });
  });
});
