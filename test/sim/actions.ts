import type { BookingId, EventId, UserId } from '../../engine/ids.js';
import { outcome, resumeOp, runOp } from './calls.js';
import { actor, label, markPaid, pickBooking, register, type Sim } from './context.js';
import { caughtUp, persist, runJob } from './workers.js';

/**
 * The operations a step can run, one named function each, and ACTIONS, the table a step draws from by weight. Each
 * returns its line of the trace. To add one, write its function and add it to ACTIONS with a weight (how often it
 * runs; 0 = not possible now). Any change to the table or its order changes what every seed runs (the draw is by
 * weight over the whole table): note it in the commit, and rerun the regression seeds of test/sim/sim.test.ts.
 */
export type Action = {
  name: string;
  /** How likely this step runs it (relative to the others), from the state now; 0 = not now. */
  weight: (sim: Sim) => number;
  run: (sim: Sim) => Promise<string>;
};

/** The waiting jobs a worker could pick up now, and the buyers who have a place in the waiting room. */
const waitingJobs = (sim: Sim) => sim.jobs.waiting();
const withPlace = (sim: Sim) => sim.sc.users.filter((u) => sim.passes.has(u));

/** The text of a hold's answer; registers the booking it made. */
const held = (sim: Sim, user: UserId, eventId: EventId) => (v: unknown) => {
  const { reservation, replayed } = v as { reservation: { bookingId: BookingId; ticketCount: number; seats: string[] }; replayed: boolean };
  const ref = register(sim, reservation.bookingId, user, eventId);
  return `${replayed ? 'replayed' : 'held'} b${ref.n} x${reservation.ticketCount}${reservation.seats.length ? ` [${reservation.seats.join(' ')}]` : ''}`;
};

// ---- holds ----

async function holdGa(sim: Sim) {
  const { rng, engine } = sim;
  const { users, open, gaTier } = sim.sc;
  const user = rng.pick(users);
  const n = rng.int(1, 4);
  const key = rng.chance(0.2) ? `k${rng.int(0, 3)}` : undefined;
  const s = await runOp(sim, 'hold', undefined, () => engine.bookings.create({ userId: user, eventId: open.id, tierId: gaTier, ticketCount: n, idempotencyKey: key }));
  return `hold-ga ${user} x${n}${key ? ` key=${key}` : ''} -> ${outcome(sim, 'hold-ga', s, held(sim, user, open.id))}`;
}

async function holdSeats(sim: Sim) {
  const { rng, engine } = sim;
  const { users, open, seats } = sim.sc;
  const user = rng.pick(users);
  const pick = rng.sample(seats, rng.int(1, 3));
  const s = await runOp(sim, 'hold', undefined, () => engine.bookings.create({ userId: user, eventId: open.id, ticketCount: pick.length, seatPreferences: { seatIds: pick } }));
  return `hold-seats ${user} [${pick.join(' ')}] -> ${outcome(sim, 'hold-seats', s, held(sim, user, open.id))}`;
}

async function holdBest(sim: Sim) {
  const { rng, engine } = sim;
  const { users, open, sections, seatTier } = sim.sc;
  const user = rng.pick(users);
  const n = rng.int(1, 4);
  const section = rng.chance(0.5) ? rng.pick(sections).id : undefined;
  const adjacent = rng.chance(0.6);
  const s = await runOp(sim, 'hold', undefined, () =>
    engine.bookings.create({ userId: user, eventId: open.id, tierId: section ? undefined : seatTier, ticketCount: n, seatPreferences: { section, adjacent } }),
  );
  return `hold-best ${user} x${n} section=${section ?? '-'} adjacent=${adjacent} -> ${outcome(sim, 'hold-best', s, held(sim, user, open.id))}`;
}

async function holdQueued(sim: Sim) {
  const { rng, engine, passes } = sim;
  const { users, queued } = sim.sc;
  const user = rng.pick(users);
  const how = rng.weighted([['own', 8], ['stolen', 1], ['none', 1]] as const);
  const other = passes.get(rng.pick(users))?.token;
  const token = how === 'own' ? passes.get(user)?.token : how === 'stolen' ? other : undefined;
  const n = rng.int(1, 3);
  const s = await runOp(sim, 'hold', undefined, () => engine.bookings.create({ userId: user, eventId: queued.id, ticketCount: n, admissionToken: token }));
  return `hold-queued ${user} x${n} pass=${token ? how : 'none'} -> ${outcome(sim, 'hold-queued', s, held(sim, user, queued.id))}`;
}

/** New buyers keep arriving (otherwise every buyer soon reaches the ticket cap or loses their place in line). */
async function arrive(sim: Sim) {
  const user = `u${sim.sc.arrivals++}` as UserId;
  sim.sc.users.push(user);
  return `arrive ${user}`;
}

// ---- the waiting room ----

async function join(sim: Sim) {
  const { rng, engine, passes } = sim;
  const user = rng.pick(sim.sc.users);
  const s = await runOp(sim, 'join', undefined, () => engine.waitingRoom.join(sim.sc.queued.id, user));
  return `join ${user} -> ${outcome(sim, 'join', s, (v) => {
    const { created, status } = v as { created: boolean; status: { queueId: string; status: string } };
    passes.set(user, { ...passes.get(user), queueId: status.queueId });
    return `${created ? 'joined' : 'already in'} ${status.status}`;
  })}`;
}

async function status(sim: Sim) {
  const { rng, engine, passes } = sim;
  const user = rng.pick(withPlace(sim));
  const asker = rng.chance(0.05) ? rng.pick(sim.sc.users) : user;
  const place = passes.get(user)!;
  const s = await runOp(sim, 'status', undefined, () => engine.waitingRoom.status(place.queueId, asker));
  return `status ${user} asked by ${asker} -> ${outcome(sim, 'status', s, (v) => {
    const st = v as { status: string; admissionToken?: string; aheadOfYou: number | null };
    if (st.admissionToken && asker === user) place.token = st.admissionToken;
    return `${st.status} ahead=${st.aheadOfYou ?? '-'}`;
  })}`;
}

async function admit(sim: Sim) {
  const n = sim.rng.int(1, 3);
  const s = await runOp(sim, 'admit', undefined, () => sim.engine.waitingRoom.admit(sim.sc.queued.id, n));
  return `admit up to ${n} -> ${outcome(sim, 'admit', s, (v) => (v ? `admitted ${(v as { admitted: number }).admitted}` : 'idle'))}`;
}

async function leave(sim: Sim) {
  const user = sim.rng.pick(withPlace(sim));
  const s = await runOp(sim, 'leave', undefined, () => sim.engine.waitingRoom.leave(sim.passes.get(user)!.queueId, user));
  return `leave ${user} -> ${outcome(sim, 'leave', s)}`;
}

// ---- bookings and payments ----

async function cancel(sim: Sim) {
  const b = pickBooking(sim, 'fresh')!;
  const who = actor(sim, b);
  const s = await runOp(sim, 'cancel', b.id, () => sim.engine.bookings.cancel(b.id, who));
  return `cancel b${b.n} by ${who} -> ${outcome(sim, 'cancel', s)}`;
}

async function pay(sim: Sim) {
  const b = pickBooking(sim, 'fresh')!;
  const who = actor(sim, b);
  const pm = sim.rng.weighted([['pm_card_visa', 14], ['pm_card_chargeDeclined', 3], ['pm_card_chargeDeclinedInsufficientFunds', 1], ['pm_card_authenticationRequired', 1], ['pm_unknown_method', 1]] as const);
  await caughtUp(sim, b.eventId);
  const s = await runOp(sim, 'pay', b.id, () => sim.engine.payments.pay({ bookingId: b.id, userId: who, paymentMethodId: pm }));
  return `pay b${b.n} by ${who} ${pm} -> ${outcome(sim, 'pay', s, (v) => {
    markPaid(sim, b.id, v);
    const r = v as { outcome: string; code?: string };
    return r.code ? `${r.outcome} ${r.code}` : r.outcome;
  })}`;
}

/** A call parked at the provider goes on. */
async function resume(sim: Sim) {
  const p = sim.rng.pick(sim.parked);
  if (p.bookingId) await caughtUp(sim, sim.byId.get(p.bookingId)!.eventId);
  const s = await resumeOp(sim, p);
  return `resume ${p.label} ${p.bookingId ? label(sim, p.bookingId) : ''} -> ${outcome(sim, p.label, s, (v) => {
    if (p.bookingId) markPaid(sim, p.bookingId, v);
    const r = v as { outcome?: string } | string | null;
    return typeof r === 'object' && r?.outcome ? r.outcome : String(r ?? 'ok');
  })}`;
}

/** What POST /api/webhooks/stripe does for payment_intent.amount_capturable_updated (duplicates and any order). */
async function webhook(sim: Sim) {
  const { engine } = sim;
  const a = sim.rng.pick(sim.authorized);
  await caughtUp(sim, sim.byId.get(a.bookingId)!.eventId);
  const s = await runOp(sim, 'webhook', a.bookingId, async () => {
    const attempt = (await engine.payments.byProviderRef(a.ref)) ?? (await engine.payments.attempts(a.bookingId)).find((x) => x.attempt === a.attempt) ?? null;
    if (!attempt || (attempt.status !== 'pending' && attempt.status !== 'authorized')) return `nothing to do (${attempt?.status ?? 'no attempt'})`;
    const r = await engine.payments.complete(attempt.bookingId, attempt.attempt, a.ref);
    markPaid(sim, a.bookingId, r);
    return r.outcome;
  });
  return `webhook authorized ${label(sim, a.bookingId)} a${a.attempt} -> ${outcome(sim, 'webhook', s, String)}`;
}

/** A worker picks up a waiting settle or refund job; now and then it dies after the work (the job stalls). */
async function job(sim: Sim) {
  const { rng, clock } = sim;
  const job = rng.pick(waitingJobs(sim));
  if (job.dueAt > clock.now()) clock.set(job.dueAt); // the worker picks it up when its delay ends
  if (job.kind === 'settle') await caughtUp(sim, sim.byId.get(job.bookingId)!.eventId);
  const stallAfter = rng.chance(0.05);
  const s = await runJob(sim, job, stallAfter);
  return `${job.kind} job ${label(sim, job.bookingId)}${job.kind === 'settle' ? ` a${job.attempt}` : ''} run ${job.runs}${stallAfter ? ' (worker dies after the work)' : ''} -> ${outcome(sim, `${job.kind} job`, s, (v) => {
    markPaid(sim, job.bookingId, v);
    const r = v as { outcome?: string } | string;
    return typeof r === 'string' ? r : (r.outcome ?? 'ok');
  })}`;
}

async function refund(sim: Sim) {
  const b = pickBooking(sim, 'paid')!;
  const who = actor(sim, b);
  const s = await runOp(sim, 'refund', b.id, () => sim.engine.refunds.request(b.id, who, sim.rng.chance(0.5) ? 'cannot come' : undefined));
  return `refund b${b.n} by ${who} -> ${outcome(sim, 'refund', s, (v) => (v as { decision: string }).decision)}`;
}

/** An admin decides a refund request of the queued event (within its refund cutoff). */
async function decide(sim: Sim) {
  const b = pickBooking(sim, 'paid', sim.sc.queued.id)!;
  const approve = sim.rng.chance(0.5);
  const s = await runOp(sim, 'decide', b.id, () => sim.engine.refunds.decide(b.id, approve, 'admin'));
  return `admin ${approve ? 'approves' : 'denies'} refund of b${b.n} -> ${outcome(sim, 'decide', s, (v) => (v as { status: string }).status)}`;
}

// ---- time, the sweeper and the persist worker ----

async function sweepAll(sim: Sim) {
  let n = 0;
  for (const id of sim.sc.eventIds) n += await sim.engine.holds.sweep(id);
  return n;
}

async function advance(sim: Sim) {
  const ms = sim.rng.pick([1_000, 5_000, 20_000, 61_000, 125_000]);
  sim.clock.advance(ms);
  if (!sim.rng.chance(0.7)) return `advance ${ms} ms`;
  return `advance ${ms} ms, sweep -> expired ${await sweepAll(sim)}`;
}

async function sweep(sim: Sim) {
  return `sweep -> expired ${await sweepAll(sim)}`;
}

async function persistStep(sim: Sim) {
  const { rng } = sim;
  const ev = rng.pick(sim.sc.events);
  const batch = rng.int(1, 25);
  const mode = rng.weighted([['ok', 8], ['no-ack', 1.5], ['read-only', 0.5]] as const);
  return `persist ${ev === sim.sc.open ? 'open' : 'queued'} batch=${batch} mode=${mode} -> ${await persist(sim, ev.id, batch, mode)}`;
}

/** The table a step draws from. The order is part of every seed's run: append new actions at the end. */
export const ACTIONS: readonly Action[] = [
  { name: 'hold-ga', weight: () => 10, run: holdGa },
  { name: 'hold-seats', weight: () => 7, run: holdSeats },
  { name: 'hold-best', weight: () => 6, run: holdBest },
  { name: 'hold-queued', weight: () => 6, run: holdQueued },
  { name: 'arrive', weight: () => 1.5, run: arrive },
  { name: 'join', weight: () => 5, run: join },
  { name: 'status', weight: (sim) => (withPlace(sim).length ? 5 : 0), run: status },
  { name: 'admit', weight: () => 4, run: admit },
  { name: 'leave', weight: (sim) => (withPlace(sim).length ? 1 : 0), run: leave },
  { name: 'cancel', weight: (sim) => (sim.bookings.length ? 5 : 0), run: cancel },
  { name: 'pay', weight: (sim) => (sim.bookings.length ? 12 : 0), run: pay },
  { name: 'resume', weight: (sim) => (sim.parked.length ? 5 : 0), run: resume },
  { name: 'webhook', weight: (sim) => (sim.authorized.length ? 3 : 0), run: webhook },
  { name: 'job', weight: (sim) => (waitingJobs(sim).length ? 6 : 0), run: job },
  { name: 'refund', weight: (sim) => (sim.bookings.length ? 4 : 0), run: refund },
  { name: 'decide', weight: (sim) => (sim.bookings.some((b) => b.eventId === sim.sc.queued.id) ? 2 : 0), run: decide },
  { name: 'advance', weight: () => 6, run: advance },
  { name: 'sweep', weight: () => 3, run: sweep },
  { name: 'persist', weight: () => 10, run: persistStep },
];

/** Draws the step's action by weight among those possible now. */
export function pickAction(sim: Sim): Action {
  const table = ACTIONS.map((a) => [a, a.weight(sim)] as const).filter(([, w]) => w > 0);
  return sim.rng.weighted(table);
}
