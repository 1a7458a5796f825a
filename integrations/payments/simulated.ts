import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import type { Redis } from 'ioredis';
import type { SimulatedPaymentKeys } from '../../engine/keys.js';
import type { RedisClient } from '../../platform/redis.js';
import type { AuthorizeInput, AuthorizeResult, CancelResult, CaptureResult, PaymentProvider, RefundResult } from './provider.js';

/**
 * The simulated payment provider: the default for development and tests. It behaves like Stripe with its test
 * payment methods (table below) and keeps its state in Redis, so the API and every worker process see the same
 * payments.
 *
 * Redis layout (the keys come from `simulatedPaymentKeys(ns)` in engine/keys.ts, the one module that builds keys;
 * `prefix` is the key namespace, e.g. `fg` or `t_<hex>`; it must not contain glob characters):
 * - `<prefix>:simpay:<ref>`       HASH one payment: ref, bookingId, attempt, amount, currency, paymentMethodId,
 *                                 status, refunded (minor units), declineCode, createdAt (ms), and one field
 *                                 `idem:<key>` (`<fingerprint>\n<result JSON>`) per capture, cancel or refund
 *                                 idempotency key whose result is saved. No TTL.
 * - `<prefix>:simpay-key:<key>`   STRING JSON `{fp, state: 'pending' | 'done', result}`: the first result of one
 *                                 authorize idempotency key. 'pending' (only while a `pm_card_timeout` call hangs)
 *                                 lives 30 s, 'done' 24 h (Stripe prunes keys after 24 h).
 *
 * Every command and script touches one key, so the same code runs on Redis Cluster. The cost is a few round trips per
 * call (it stands for a remote service; its own cost must not be what a benchmark measures): authorize writes the
 * payment and claims its key with `SET NX` in one round trip (the loser of a race deletes its payment and replays the
 * winner's); capture, cancel and refund read the payment (HGETALL), decide in JS, and write the decision with its
 * idempotency record only if the payment did not change meanwhile (one compare-and-set script; a lost race reads
 * again). Idempotency keys of capture, cancel and refund are kept per payment: Stripe would also refuse one key
 * reused on another payment, which this provider does not notice (Floodgate's keys name the booking and attempt).
 *
 * State machine: authorized -> captured | cancelled; captured -> refunded (when the refunds reach the amount;
 * partial refunds keep `captured` and raise `refunded`). `declined` is final. Answers per call:
 * | call    | authorized     | captured / refunded              | cancelled | declined  |
 * | capture | captured       | captured (no-op)                 | failed    | failed    |
 * | cancel  | cancelled      | unavailable ("refund instead")   | cancelled | cancelled |
 * | refund  | throws         | refunded (throws past the amount)| throws    | throws    |
 * Throws ({@link SimulatedPaymentError}) stand for Stripe's 400/404 answers, which the Stripe provider throws too:
 * an unknown ref, a refund of money never captured or already returned, and an idempotency key reused with other
 * parameters (Stripe: 400 idempotency_error).
 *
 * Results that are definitive (authorized, declined, captured, failed, cancelled, refunded) are saved under their
 * idempotency key and replayed; `unavailable` answers and throws are not saved, so a retry runs again (as Stripe
 * saves nothing when a request did not execute).
 */

/** How a test payment method answers. */
type Behaviour =
  | { kind: 'authorize' }
  | { kind: 'decline'; code: string; message: string }
  /** Floodgate's own: the provider never answers; the call gives up after `timeoutMs`. */
  | { kind: 'timeout' };

/**
 * The payment methods the simulated provider knows (Stripe's test `pm_…` tokens). Any other `pm_…` is declined
 * with `payment_method_not_found`. Codes follow Stripe's `decline_code ?? code`, except that Stripe reports
 * `generic_decline` for `pm_card_chargeDeclined` where this provider answers `card_declined`.
 */
export const SIMULATED_PAYMENT_METHODS = {
  pm_card_visa: { kind: 'authorize' },
  pm_card_mastercard: { kind: 'authorize' },
  pm_card_chargeDeclined: { kind: 'decline', code: 'card_declined', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: { kind: 'decline', code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  pm_card_chargeDeclinedExpiredCard: { kind: 'decline', code: 'expired_card', message: 'Your card has expired.' },
  /** Stripe answers `requires_action` (3-D Secure); without a buyer present that is a decline. */
  pm_card_authenticationRequired: {
    kind: 'decline',
    code: 'authentication_required',
    message: 'The card requires authentication (3-D Secure); the buyer must confirm the payment in the browser.',
  },
  pm_card_timeout: { kind: 'timeout' },
} as const satisfies Record<string, Behaviour>;

export type SimulatedPaymentStatus = 'authorized' | 'declined' | 'captured' | 'cancelled' | 'refunded';

/** One payment as `listSimulatedPayments` reports it (amounts in minor units). */
export type SimulatedPayment = {
  ref: string;
  bookingId: string;
  attempt: number;
  amount: number;
  currency: string;
  status: SimulatedPaymentStatus;
  /** Sum of the refunds so far (0 … amount). */
  refunded: number;
};

export type SimulatedPaymentErrorCode = 'idempotency_key_reused' | 'resource_missing' | 'invalid_request';

/** A call the simulated provider rejects as Stripe would with a 400/404: a bug in the caller, not a payment outcome. */
export class SimulatedPaymentError extends Error {
  constructor(
    readonly code: SimulatedPaymentErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SimulatedPaymentError';
  }
}

export type SimulatedProviderOptions = {
  redis: RedisClient;
  /** Its keys: `simulatedPaymentKeys(ns)` from engine/keys.ts. */
  keys: SimulatedPaymentKeys;
  /** Added to every call: a fixed delay or a uniform random one in [min, max] ms. Default 0. */
  latencyMs?: number | readonly [number, number];
  /** How long `pm_card_timeout` (and a call waiting on a concurrent one with the same key) waits. Default 10 s. */
  timeoutMs?: number;
};

const PENDING_TTL_MS = 30_000;
const DONE_TTL_MS = 24 * 3600_000;
const POLL_MS = 5;

/**
 * KEYS[1] a payment HASH; ARGV: status and refunded as read, the idempotency field, then field/value pairs to write.
 * Writes them only if the payment is unchanged and the key unused since it was read: 1 written, 0 read again.
 */
const COMPARE_AND_SET = `
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
if (redis.call('HGET', KEYS[1], 'refunded') or '0') ~= ARGV[2] then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
return 1`;

type IdemRecord<R> = { fp: string; state: 'pending' } | { fp: string; state: 'done'; result: R };
/** What one execution decided: `save` results are replayed for the same key; others let a retry run again. */
type Run<R> = { result: R; save: boolean };

type StoredPayment = SimulatedPayment & { paymentMethodId: string };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const newId = (p: string) => `${p}_sim_${randomBytes(12).toString('hex')}`;

export function createSimulatedProvider(opts: SimulatedProviderOptions): PaymentProvider {
  const { redis } = opts;
  const k = opts.keys;
  const timeoutMs = opts.timeoutMs ?? 10_000;

  const latency = async () => {
    const l = opts.latencyMs ?? 0;
    const ms = typeof l === 'number' ? l : l[0] + Math.random() * (l[1] - l[0]);
    if (ms > 0) await sleep(ms);
  };

  /**
   * Runs `run` once per idempotency key: the first caller claims the key with SET NX; later callers with the same
   * parameters get the saved result (waiting while the first one is still running), other parameters throw.
   */
  async function once<R>(key: string, fp: string, busy: () => R, run: () => Promise<Run<R>>): Promise<R> {
    const idemKey = k.idem(key);
    const until = Date.now() + timeoutMs;
    for (;;) {
      const claimed = await redis.set(idemKey, JSON.stringify({ fp, state: 'pending' } satisfies IdemRecord<R>), 'PX', PENDING_TTL_MS, 'NX');
      if (claimed === 'OK') {
        let out: Run<R>;
        try {
          out = await run();
        } catch (err) {
          await redis.del(idemKey);
          throw err;
        }
        if (out.save) await redis.set(idemKey, JSON.stringify({ fp, state: 'done', result: out.result } satisfies IdemRecord<R>), 'PX', DONE_TTL_MS);
        else await redis.del(idemKey);
        return out.result;
      }
      const raw = await redis.get(idemKey);
      if (raw === null) continue; // the owner gave the key up (unavailable or threw): claim it ourselves
      const rec = JSON.parse(raw) as IdemRecord<R>;
      if (rec.fp !== fp) throw keyReused(key, rec.fp, fp);
      if (rec.state === 'done') return rec.result;
      if (Date.now() > until) return busy();
      await sleep(POLL_MS);
    }
  }

  /**
   * Capture, cancel, refund: reads the payment, replays the saved result of `key` (or throws if the key came with other
   * parameters), else lets `decide` answer and writes its decision and the saved result in one compare-and-set (only if
   * status and refunded are still what was read; otherwise it reads again). `unavailable` answers and throws save nothing.
   */
  async function onPayment<R>(
    ref: string,
    key: string,
    fp: string,
    decide: (p: StoredPayment) => { result: R; save: boolean; write?: Record<string, string | number> },
  ): Promise<R> {
    const field = `idem:${key}`;
    for (;;) {
      const h = await redis.hgetall(k.payment(ref));
      if (!h.ref) throw new SimulatedPaymentError('resource_missing', `no such payment: ${ref}`);
      const saved = h[field];
      if (saved !== undefined) {
        const cut = saved.indexOf('\n');
        const savedFp = saved.slice(0, cut);
        if (savedFp !== fp) throw keyReused(key, savedFp, fp);
        return JSON.parse(saved.slice(cut + 1)) as R;
      }
      const d = decide(fromHash(h));
      if (!d.save) return d.result;
      const write = Object.entries({ ...d.write, [field]: `${fp}\n${JSON.stringify(d.result)}` }).flat().map(String);
      const done = await redis.eval(COMPARE_AND_SET, 1, k.payment(ref), h.status!, h.refunded ?? '0', field, ...write);
      if (done === 1) return d.result;
    }
  }

  return {
    name: 'simulated',

    async authorize(input: AuthorizeInput): Promise<AuthorizeResult> {
      if (!Number.isInteger(input.amount) || input.amount < 1) throw new SimulatedPaymentError('invalid_request', `amount must be a positive integer: ${input.amount}`);
      if (!/^[A-Za-z]{3}$/.test(input.currency)) throw new SimulatedPaymentError('invalid_request', `currency must be ISO 4217: ${input.currency}`);
      await latency();
      const fp = `authorize ${input.bookingId} a${input.attempt} ${input.amount} ${input.currency} ${input.paymentMethodId}`;
      const busy = (): AuthorizeResult => ({ outcome: 'unavailable', message: `a request with idempotency key ${input.idempotencyKey} is still in progress` });
      const b: Behaviour | undefined = (SIMULATED_PAYMENT_METHODS as Record<string, Behaviour>)[input.paymentMethodId];
      if (b?.kind === 'timeout') {
        // the key is claimed 'pending' while the call hangs, so a concurrent call with it waits (and then gives up too)
        return once<AuthorizeResult>(input.idempotencyKey, fp, busy, async () => {
          await sleep(timeoutMs);
          return { result: { outcome: 'unavailable', message: `payment provider did not answer within ${timeoutMs} ms` }, save: false };
        });
      }
      for (;;) {
        const ref = newId('pi');
        const declined: { code: string; message: string } | null =
          b === undefined
            ? { code: 'payment_method_not_found', message: `No such PaymentMethod: '${input.paymentMethodId}'` }
            : b.kind === 'decline'
              ? { code: b.code, message: b.message }
              : null;
        const result: AuthorizeResult = declined ? { outcome: 'declined', paymentRef: ref, ...declined } : { outcome: 'authorized', paymentRef: ref };
        // one round trip: the payment, and the key's saved result if the key is new; the loser of a race for the key
        // deletes its payment and answers what the winner saved
        const [, claimed] = await Promise.all([
          redis.hset(k.payment(ref), {
            ref,
            bookingId: input.bookingId,
            attempt: input.attempt,
            amount: input.amount,
            currency: input.currency,
            paymentMethodId: input.paymentMethodId,
            status: declined ? 'declined' : 'authorized',
            refunded: 0,
            declineCode: declined?.code ?? '',
            createdAt: Date.now(),
          }),
          redis.set(k.idem(input.idempotencyKey), JSON.stringify({ fp, state: 'done', result } satisfies IdemRecord<AuthorizeResult>), 'PX', DONE_TTL_MS, 'NX'),
        ]);
        if (claimed === 'OK') return result;
        await redis.del(k.payment(ref));
        const raw = await redis.get(k.idem(input.idempotencyKey));
        if (raw === null) continue; // the key was given up meanwhile: try again
        const rec = JSON.parse(raw) as IdemRecord<AuthorizeResult>;
        if (rec.fp !== fp) throw keyReused(input.idempotencyKey, rec.fp, fp);
        // 'pending' is only ever a pm_card_timeout call's, whose fingerprint differs from this one
        return rec.state === 'done' ? rec.result : busy();
      }
    },

    async capture(paymentRef: string, idempotencyKey: string): Promise<CaptureResult> {
      await latency();
      return onPayment<CaptureResult>(paymentRef, idempotencyKey, `capture ${paymentRef}`, (p) => {
        switch (p.status) {
          case 'authorized':
            return { result: { outcome: 'captured' }, save: true, write: { status: 'captured', capturedAt: Date.now() } };
          case 'captured':
          case 'refunded':
            return { result: { outcome: 'captured' }, save: true };
          case 'cancelled':
            return { result: { outcome: 'failed', message: `payment ${paymentRef} was cancelled` }, save: true };
          case 'declined':
            return { result: { outcome: 'failed', message: `payment ${paymentRef} was declined` }, save: true };
          default:
            return assertNever(p.status);
        }
      });
    },

    async cancel(paymentRef: string, idempotencyKey: string): Promise<CancelResult> {
      await latency();
      return onPayment<CancelResult>(paymentRef, idempotencyKey, `cancel ${paymentRef}`, (p) => {
        switch (p.status) {
          case 'authorized':
            return { result: { outcome: 'cancelled' }, save: true, write: { status: 'cancelled', cancelledAt: Date.now() } };
          case 'cancelled':
          case 'declined':
            return { result: { outcome: 'cancelled' }, save: true };
          case 'captured':
          case 'refunded':
            // Stripe answers 400 payment_intent_unexpected_state; the contract has no such outcome.
            return { result: { outcome: 'unavailable', message: `payment ${paymentRef} is already captured: refund it instead` }, save: false };
          default:
            return assertNever(p.status);
        }
      });
    },

    async refund(paymentRef: string, idempotencyKey: string, amount?: number): Promise<RefundResult> {
      if (amount !== undefined && (!Number.isInteger(amount) || amount < 1)) {
        throw new SimulatedPaymentError('invalid_request', `refund amount must be a positive integer: ${amount}`);
      }
      await latency();
      return onPayment<RefundResult>(paymentRef, idempotencyKey, `refund ${paymentRef} ${amount ?? 'all'}`, (p) => {
        if (p.status !== 'captured' && p.status !== 'refunded') {
          throw new SimulatedPaymentError('invalid_request', `payment ${paymentRef} is ${p.status}: nothing was captured to refund`);
        }
        const remaining = p.amount - p.refunded;
        if (remaining === 0) throw new SimulatedPaymentError('invalid_request', `payment ${paymentRef} has already been refunded`);
        const take = amount ?? remaining;
        if (take > remaining) throw new SimulatedPaymentError('invalid_request', `refund of ${take} exceeds the unrefunded ${remaining} of payment ${paymentRef}`);
        const refunded = p.refunded + take;
        return {
          result: { outcome: 'refunded', refundRef: newId('re') },
          save: true,
          write: { refunded, status: refunded === p.amount ? 'refunded' : 'captured' },
        };
      });
    },
  };
}

/**
 * Every payment under `where` (`simulatedPaymentKeys(ns)`; all shards of a Cluster), oldest first: for invariant checks
 * against bookings.
 */
export async function listSimulatedPayments(redis: RedisClient, k: Pick<SimulatedPaymentKeys, 'paymentPattern'>): Promise<SimulatedPayment[]> {
  const nodes: Redis[] = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', k.paymentPattern, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  const hashes = await Promise.all(keys.map((key) => redis.hgetall(key)));
  return hashes
    .filter((h) => h.ref)
    .sort((a, b) => Number(a.createdAt) - Number(b.createdAt) || a.ref!.localeCompare(b.ref!))
    .map((h) => {
      const { paymentMethodId: _pm, ...p } = fromHash(h);
      return p;
    });
}

/** Stripe's 400 idempotency_error: a key came back with other parameters than its first request's. */
function keyReused(key: string, firstFp: string, fp: string): SimulatedPaymentError {
  return new SimulatedPaymentError('idempotency_key_reused', `idempotency key ${key} was first used with other parameters (${firstFp}); this request: ${fp}`);
}

function fromHash(h: Record<string, string>): StoredPayment {
  return {
    ref: h.ref!,
    bookingId: h.bookingId!,
    attempt: Number(h.attempt),
    amount: Number(h.amount),
    currency: h.currency!,
    status: h.status as SimulatedPaymentStatus,
    refunded: Number(h.refunded ?? 0),
    paymentMethodId: h.paymentMethodId!,
  };
}

function assertNever(x: never): never {
  throw new Error(`unexpected value: ${String(x)}`);
}
