import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { asNamespace, type BookingId, type EventId, type TierId, type UserId } from './ids.js';
import { eventKeys, globalKeys, simulatedPaymentKeys, type EventKeys } from './keys.js';

const ns = asNamespace('fg');
const EVENT = 'ev_abcdefghijkl' as EventId;
const BOOKING = 'bk_abcdefghijkl_0123456789abcdef' as BookingId;
const TIER = 'tr_abcdefghij' as TierId;

/** Every key (and key pattern) of one event, whatever eventKeys adds: a new key that is not listed here fails the test. */
function everyKeyOf(k: EventKeys): string[] {
  return Object.entries(k).map(([name, v]) => {
    if (typeof v === 'string') return v;
    if (name === 'hold') return k.hold(BOOKING);
    if (name === 'idem') return k.idem('user-1' as UserId, 'key:1.x');
    if (name === 'holdRate') return k.holdRate('ip', '2001:db8::1');
    if (name === 'wlLine') return k.wlLine(TIER);
    if (name === 'wlWant') return k.wlWant(TIER);
    throw new Error(`eventKeys.${name}: add it to this test`);
  });
}

describe('eventKeys', () => {
  const k = eventKeys(ns, EVENT);

  it('puts every key of one event on one Redis Cluster slot (patterns too: a SCAN lands on that node)', () => {
    const keys = everyKeyOf(k);
    expect(keys.length).toBe(Object.keys(k).length);
    expect(new Set(keys.map((x) => calculateSlot(x))).size).toBe(1);
    expect(calculateSlot(k.meta)).toBe(calculateSlot('{evt:ev_abcdefghijkl}'));
  });

  it('spreads different events over different slots', () => {
    const slots = new Set(Array.from({ length: 50 }, (_, i) => calculateSlot(eventKeys(ns, `ev_${String(i).padStart(12, '0')}` as EventId).inv)));
    expect(slots.size).toBeGreaterThan(40);
  });

  it('keeps every key under the namespace, and the hold pattern matches exactly the hold keys', () => {
    for (const key of everyKeyOf(k)) expect(key.startsWith('fg:{evt:ev_abcdefghijkl}:')).toBe(true);
    const holdPrefix = k.holdPattern.slice(0, -1);
    expect(k.hold(BOOKING).startsWith(holdPrefix)).toBe(true);
    for (const key of everyKeyOf(k)) if (key !== k.hold(BOOKING) && key !== k.holdPattern) expect(key.startsWith(holdPrefix)).toBe(false);
  });

  it('refuses a namespace that could move the hash tag', () => {
    expect(() => asNamespace('fg{x}')).toThrow(/namespace/);
    expect(() => asNamespace('fg:x')).toThrow(/namespace/);
  });
});

describe('globalKeys', () => {
  const g = globalKeys(ns);

  it('builds the request idempotency record, rate-limit prefixes, stream slots and the BullMQ prefix under the namespace', () => {
    expect(g.idempotency('pay', 'user-1' as UserId, 'k:1')).toBe('fg:idem-pay:user-1:k:1');
    expect(g.rateLimit('hold', 'u')).toBe('fg:rl:hold:u');
    expect(g.rateLimit('status', 'ip')).toBe('fg:rl:status:ip');
    expect(g.rateCounter('pay', 'ip', '10.0.0.1')).toBe(`${g.rateLimit('pay', 'ip')}:10.0.0.1`);
    expect(g.streams('user', 'dan')).toBe('fg:streams:user:dan');
    expect(g.bullPrefix).toBe('fg:bull');
  });

  it('keeps them apart from every event key (no braces: they never share an event slot by accident)', () => {
    const keys = [g.events, g.queues, g.idempotency('pay', 'u1' as UserId, 'k'), g.rateLimit('pay', 'u'), g.streams('ip', '1.2.3.4'), g.bullPrefix];
    for (const key of keys) expect(key).not.toMatch(/[{}]/);
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('simulatedPaymentKeys', () => {
  const s = simulatedPaymentKeys(ns);

  it('builds the layout the simulated provider documents; the payment pattern matches payments only', () => {
    expect(s.payment('pi_1')).toBe('fg:simpay:pi_1');
    expect(s.idem('k1')).toBe('fg:simpay-key:k1');
    const prefix = s.paymentPattern.slice(0, -1);
    expect(s.payment('pi_1').startsWith(prefix)).toBe(true);
    expect(s.idem('k1').startsWith(prefix)).toBe(false);
  });
});
