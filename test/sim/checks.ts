import type { InvariantReport } from '../../engine/index.js';
import { eventKeys, simulatedPaymentKeys } from '../../engine/keys.js';
import { listSimulatedPayments } from '../../integrations/payments/simulated.js';
import { bump, label, type Sim } from './context.js';

/**
 * The invariants: cheap ones after every step, the full oracle (engine/invariants/invariants.ts) every `checkEvery`
 * steps with its money rules for settled bookings only, and the final check once everything has settled and drained.
 */

/** Booking states that have been paid for (as engine/invariants/invariants.ts counts them). */
const PAID = new Set(['CONFIRMED', 'TICKETS_DELIVERED', 'REFUND_REQUESTED', 'REFUND_DENIED']);

const relabelBookings = (sim: Sim, x: string) => x.replace(/bk_[a-z0-9_]+/g, (id) => label(sim, id));

/** Per tier in Redis: capacity == available + held + sold, no counter below zero, seat maps agree with the counters;
 *  buyers' counters never negative; Postgres tiers within capacity. */
export async function cheapChecks(sim: Sim): Promise<string[]> {
  const { engine, redis, pg, ns } = sim;
  const { events, open, sectionTier, seatTier, eventIds } = sim.sc;
  const v: string[] = [];
  for (const ev of events) {
    const k = eventKeys(ns, ev.id);
    const [inv, smap, buyers] = await Promise.all([engine.inventory.redisState(ev.id), redis.hgetall(k.smap), redis.hgetall(k.buyers)]);
    for (const [tier, t] of Object.entries(inv)) {
      if (t.cap !== t.free + t.held + t.sold) v.push(`redis ${tier}: capacity ${t.cap} != available ${t.free} + held ${t.held} + sold ${t.sold}`);
      if (t.free < 0 || t.held < 0 || t.sold < 0) v.push(`redis ${tier}: a counter below zero ${JSON.stringify(t)}`);
    }
    if (ev === open) {
      const seen = { free: 0, held: 0, sold: 0 };
      for (const [section, map] of Object.entries(smap)) {
        if (sectionTier.get(section) !== seatTier) continue;
        for (const ch of map) seen[ch === '.' ? 'free' : ch === 'h' ? 'held' : 'sold']++;
      }
      const t = inv[seatTier]!;
      if (seen.free !== t.free || seen.held !== t.held || seen.sold !== t.sold) {
        v.push(`redis seat maps (${JSON.stringify(seen)}) disagree with the seated tier's counters (${JSON.stringify(t)})`);
      }
    }
    for (const [user, n] of Object.entries(buyers)) if (Number(n) < 0) v.push(`redis ${ev.id}: buyer ${user} holds ${n} tickets`);
  }
  const { rows } = await pg.query<{ id: string; capacity: number; reserved: number; sold: number }>(
    'SELECT id, capacity, reserved, sold FROM tiers WHERE event_id = ANY($1::text[])',
    [eventIds],
  );
  for (const t of rows) if (t.reserved < 0 || t.sold < 0 || t.reserved + t.sold > t.capacity) v.push(`postgres tier ${t.id}: reserved ${t.reserved} + sold ${t.sold} vs capacity ${t.capacity}`);
  return v;
}

/** The provider's charges for this run's bookings. */
const myCharges = async (sim: Sim) => (await listSimulatedPayments(sim.redis, simulatedPaymentKeys(sim.ns))).filter((c) => sim.byId.has(c.bookingId));

/**
 * The full oracle at a checkpoint, with the money rules of the oracle applied only to bookings that are settled now:
 * no parked call, no refund job queued or running, no payment attempt still pending or authorized (those are between
 * two steps of a payment that a job, a webhook or a retry will finish). The final check applies them to every booking.
 */
export async function deepCheck(sim: Sim): Promise<string[]> {
  const { engine, redis, pg, ns, parked, jobs } = sim;
  const { eventIds } = sim.sc;
  bump(sim, 'oracle checks');
  // every attempt still open must have a settle job that will finish it
  const settling = new Set([...jobs.jobs.values()].filter((j) => j.kind === 'settle' && (j.state === 'waiting' || j.state === 'active')).map((j) => `${j.bookingId}:a${j.attempt}`));
  const report = await engine.checkInvariants({ eventIds, settling });
  const v = [...report.violations];
  const busy = new Set(parked.flatMap((p) => (p.bookingId ? [p.bookingId] : [])));
  for (const j of jobs.jobs.values()) if (j.kind === 'refund' && (j.state === 'waiting' || j.state === 'active')) busy.add(j.bookingId);
  const { rows: open } = await pg.query<{ booking_id: string }>(
    `SELECT DISTINCT p.booking_id FROM payments p JOIN bookings b ON b.id = p.booking_id
      WHERE b.event_id = ANY($1::text[]) AND p.status IN ('pending', 'authorized')`,
    [eventIds],
  );
  for (const r of open) busy.add(r.booking_id);
  // entries not yet applied: Postgres has not caught up with these bookings (e.g. a late payment's re-take)
  for (const id of eventIds) for (const [, f] of await redis.xrange(eventKeys(ns, id).outbox, '-', '+')) busy.add(f[f.indexOf('bookingId') + 1]!);
  const { rows } = await pg.query<{ id: string; state: string }>('SELECT id, state FROM bookings WHERE event_id = ANY($1::text[])', [eventIds]);
  const charges = await myCharges(sim);
  for (const b of rows) {
    if (busy.has(b.id)) continue;
    const mine = charges.filter((c) => c.bookingId === b.id);
    const captured = mine.filter((c) => c.status === 'captured').length;
    const refunded = mine.filter((c) => c.status === 'refunded').length;
    if (captured + refunded > 1) v.push(`booking ${b.id}: charged ${captured + refunded} times`);
    if (captured === 1 && !PAID.has(b.state)) v.push(`money without a ticket: booking ${b.id} is ${b.state} but its charge is captured`);
    if (refunded === 1 && b.state !== 'REFUNDED') v.push(`booking ${b.id} is ${b.state} but its charge was refunded`);
    if (PAID.has(b.state) && captured !== 1) v.push(`a ticket without money: booking ${b.id} is ${b.state} without exactly one captured charge`);
  }
  return v.map((x) => relabelBookings(sim, x));
}

/**
 * The final check, once faults are off and everything has settled and drained: the cheap invariants, no job failed
 * for good, the oracle with `drained: true` and the provider's charges, and no authorization left open.
 */
export async function finalCheck(sim: Sim): Promise<{ broken: string[]; figures: InvariantReport['figures'] }> {
  const failed = [...sim.jobs.jobs.values()].filter((j) => j.state === 'failed');
  const broken = [
    ...sim.unexpected,
    ...(await cheapChecks(sim)),
    ...failed.map((j) => `job ${relabelBookings(sim, j.id)} failed for good after ${j.attemptsMade} attempts`),
  ];
  const charges = await myCharges(sim);
  const report = await sim.engine.checkInvariants({ eventIds: sim.sc.eventIds, charges, drained: true });
  broken.push(...report.violations.map((x) => relabelBookings(sim, x)));
  for (const c of charges) if (c.status === 'authorized') broken.push(`authorization left open: ${label(sim, c.bookingId)} attempt ${c.attempt} was authorized and never captured or cancelled`);
  bump(sim, 'oracle checks');
  return { broken, figures: report.figures };
}
