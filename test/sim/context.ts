import { fakeClock, type FakeClock } from '../../engine/clock.js';
import type { BookingId, EventId, TierId, UserId } from '../../engine/ids.js';
import { createEngine, type Engine, type EventWithAvailability } from '../../engine/index.js';
import { createSimulatedProvider } from '../../integrations/payments/simulated.js';
import type { PaymentProvider } from '../../engine/payments/provider.js';
import { TEST_ENGINE_CONFIG } from '../config.js';
import { dropPaymentsBookingFk } from '../follow-outbox.js';
import { faultyProvider, jobModel, type AuthorizedRef, type FaultControl, type JobModel } from './faults.js';
import { ALL_WORKAROUNDS, type KnownBug, type SimOptions } from './options.js';
import { streamOf, type Rng } from './prng.js';
import type { World } from './world.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';

/**
 * One simulation run's state and its setup (the world step of test/sim/simulator.ts): the seed's random streams, the
 * fake clock, the fault-injecting payment provider, the job model, the real engine on top of them, the scenario drawn
 * from the seed (buyers, two events), and the bookkeeping every step reads and writes. The steps (test/sim/actions.ts,
 * calls.ts, workers.ts, checks.ts) are plain functions of this state.
 */

export const T0 = Date.UTC(2030, 0, 1);
export const iso = (ms: number) => new Date(ms).toISOString();
const TRACE_KEEP = 200;

export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };
export type Parked = { label: string; bookingId: string | undefined; done: Promise<Settled>; resume: () => void; onDone?: ((s: Settled) => void) | undefined };
export type BookingRef = { n: number; id: BookingId; user: UserId; eventId: EventId; atMs: number; paid: boolean };

/** What the seed decided about the world: buyers (more arrive during the run), an open event with a standing and a
 *  seated tier, and a queued event behind the waiting room. */
export type Scenario = {
  users: UserId[];
  /** The number of the next buyer to arrive. */
  arrivals: number;
  sections: { id: string; rows: number; seatsPerRow: number }[];
  seats: string[];
  open: EventWithAvailability;
  queued: EventWithAvailability;
  events: EventWithAvailability[];
  eventIds: EventId[];
  gaTier: TierId;
  seatTier: TierId;
  sectionTier: Map<string, TierId>;
  /** Event and tier ids are random: messages name them by role, so a seed's report reads the same on every replay. */
  names: Map<string, string>;
};

export type Sim = World & {
  o: SimOptions;
  /** Which operation runs next and with what arguments. */
  rng: Rng;
  /** The scenario (and the deliberate bugs' timing). */
  setup: Rng;
  /** How far the persist worker has got when a payment step starts (its own stream: the op and fault streams stay put). */
  progress: Rng;
  clock: FakeClock;
  /** Switches the provider's faults and parking (test/sim/faults.ts). */
  ctl: FaultControl;
  /** Authorizations the provider granted (webhooks are sent for them). */
  authorized: AuthorizedRef[];
  jobs: JobModel;
  engine: Engine;
  sc: Scenario;
  checkEvery: number;
  stats: Map<string, number>;
  bookings: BookingRef[];
  byId: Map<string, BookingRef>;
  passes: Map<UserId, { queueId: string; token?: string }>;
  /** Operations waiting at the provider (resumed by a later step). */
  parked: Parked[];
  trace: string[];
  step: number;
  /** Exceptions that are neither domain errors nor caused by a fault, seen during the current step. */
  unexpected: string[];
};

export const bump = (sim: Pick<Sim, 'stats'>, k: string, n = 1) => sim.stats.set(k, (sim.stats.get(k) ?? 0) + n);

/** Whether to steer around a known bug (see KNOWN_BUGS in test/sim/options.ts; none at the moment). */
export const workaround = (sim: Sim, b: KnownBug) => (sim.o.workarounds ?? ALL_WORKAROUNDS).includes(b);

/** Fault injection: the real simulated provider behind the seed's faults (test/sim/faults.ts). */
function faultInjection(world: World, seed: number, stats: Map<string, number>) {
  const ctl: FaultControl = { enabled: true, current: null, parked: 0, maxParked: 3 };
  const authorized: AuthorizedRef[] = [];
  const real = createSimulatedProvider({ redis: world.redis, keys: simulatedPaymentKeys(world.ns), timeoutMs: 2_000 });
  const provider: PaymentProvider = faultyProvider(real, streamOf(seed, 2), ctl, { onFault: (call, f) => bump({ stats }, `fault ${call} ${f}`), authorized });
  return { ctl, authorized, provider };
}

/** The scenario, drawn from the seed's setup stream (the order of the draws is part of every seed's run). */
async function createScenario(engine: Engine, setup: Rng, seed: number): Promise<Scenario> {
  const users = Array.from({ length: setup.int(4, 9) }, (_, i) => `u${i}` as UserId);
  const maxPerUser = setup.int(3, 8);
  const sections = [
    { id: 'A', rows: setup.int(1, 3), seatsPerRow: setup.int(3, 6) },
    { id: 'B', rows: 1, seatsPerRow: setup.int(2, 5) },
  ];
  const seatCount = sections.reduce((n, s) => n + s.rows * s.seatsPerRow, 0);
  const seats = sections.flatMap((s) => Array.from({ length: s.rows * s.seatsPerRow }, (_, i) => `${s.id}-${Math.floor(i / s.seatsPerRow) + 1}-${(i % s.seatsPerRow) + 1}`));
  const open: EventWithAvailability = await engine.createEvent({
    name: `sim ${seed} open`, category: 'sim', venue: 'Sim Hall', startsAt: '2031-06-01T20:00:00Z', salesOpenAt: '2029-01-01T00:00:00Z',
    maxTicketsPerUser: maxPerUser,
    tiers: [
      { name: 'Standing', price: 3000, currency: 'EUR', capacity: setup.int(3, 24) },
      { name: 'Seats', price: 9000, currency: 'EUR', capacity: seatCount, seating: { sections } },
    ],
  });
  // the queued event starts within the refund cutoff: its refunds wait for an admin's decision
  const queued: EventWithAvailability = await engine.createEvent({
    name: `sim ${seed} queued`, category: 'sim', venue: 'Sim Arena', startsAt: iso(T0 + 10 * 3600_000), salesOpenAt: iso(T0 - 60_000),
    maxTicketsPerUser: maxPerUser,
    tiers: [{ name: 'Floor', price: 5000, currency: 'EUR', capacity: setup.int(2, 10) }],
    queue: { enabled: true, opensAt: iso(T0 - 120_000), admissionRatePerSecond: setup.int(1, 3), passTtlSeconds: setup.pick([60, 120, 300]) },
  });
  const gaTier = open.tiers[0]!.id;
  const seatTier = open.tiers[1]!.id;
  return {
    users,
    arrivals: users.length,
    sections,
    seats,
    open,
    queued,
    events: [open, queued],
    eventIds: [open.id, queued.id],
    gaTier,
    seatTier,
    sectionTier: new Map<string, TierId>(sections.map((s) => [s.id, seatTier])),
    names: new Map<string, string>([[open.id, 'open'], [queued.id, 'queued'], [gaTier, 'open:Standing'], [seatTier, 'open:Seats'], [queued.tiers[0]!.id, 'queued:Floor']]),
  };
}

/** World setup: the real engine (real Redis scripts, real Postgres) on a fake clock, faulty provider and job model. */
export async function createSim(world: World, o: SimOptions): Promise<Sim> {
  const clock = fakeClock(T0);
  const stats = new Map<string, number>();
  const { ctl, authorized, provider } = faultInjection(world, o.seed, stats);
  const jobs = jobModel(() => clock.now());
  // a payment never waits for the persist worker (whether it has caught up is the seed's decision, see caughtUp in
  // test/sim/workers.ts); its attempt rows do not need the booking recorded (migration 0009; made here until merged)
  await dropPaymentsBookingFk(world.pg);
  const config = TEST_ENGINE_CONFIG;
  const engine: Engine = createEngine({ ns: world.ns, redis: world.redis, pg: world.pg, clock, config, jobs: jobs.sink, provider });
  const setup = streamOf(o.seed, 3);
  const sc = await createScenario(engine, setup, o.seed);
  return {
    ns: world.ns,
    redis: world.redis,
    pg: world.pg,
    o,
    rng: streamOf(o.seed, 1),
    setup,
    progress: streamOf(o.seed, 4),
    clock,
    ctl,
    authorized,
    jobs,
    engine,
    sc,
    checkEvery: o.checkEvery ?? 100,
    stats,
    bookings: [],
    byId: new Map(),
    passes: new Map(),
    parked: [],
    trace: [],
    step: 0,
    unexpected: [],
  };
}

// ---- bookkeeping ----

export const note = (sim: Sim, line: string) => {
  sim.trace.push(`#${sim.step} ${line}`);
  if (!sim.o.keepTrace && sim.trace.length > TRACE_KEEP) sim.trace.shift();
};

/** A booking by its number in this run (`b7`): ids are random, numbers replay. */
export const label = (sim: Sim, id: string) => (sim.byId.has(id) ? `b${sim.byId.get(id)!.n}` : id);

/** A message with every event, tier and booking id replaced by its role or number. */
export const relabel = (sim: Sim, m: string) =>
  m.replace(/\b(?:ev_[a-z0-9]{12}|tr_[a-z0-9]{10})\b/g, (id) => sim.sc.names.get(id) ?? id).replace(/bk_[a-z0-9]{12}_[a-z0-9]{16}/g, (id) => label(sim, id));

export const register = (sim: Sim, id: BookingId, user: UserId, eventId: EventId) => {
  if (sim.byId.has(id)) return sim.byId.get(id)!;
  const ref = { n: sim.bookings.length + 1, id, user, eventId, atMs: sim.clock.now(), paid: false };
  sim.bookings.push(ref);
  sim.byId.set(id, ref);
  return ref;
};

export const markPaid = (sim: Sim, id: string, v: unknown) => {
  if ((v as { outcome?: string } | null)?.outcome === 'succeeded' && sim.byId.has(id)) sim.byId.get(id)!.paid = true;
};

/** Mostly a booking that is likely to be in the state the operation needs (fresh holds to pay or cancel, paid ones
 *  to refund), sometimes any: refusals are part of the workload, but not all of it. */
export const pickBooking = (sim: Sim, want: 'fresh' | 'paid' | 'any', eventId?: EventId): BookingRef | undefined => {
  const { rng, bookings, clock } = sim;
  const pool = eventId ? bookings.filter((b) => b.eventId === eventId) : bookings;
  if (pool.length === 0) return undefined;
  const likely =
    want === 'fresh' ? pool.filter((b) => b.atMs > clock.now() - TEST_ENGINE_CONFIG.holdTtlMs) : want === 'paid' ? pool.filter((b) => b.paid) : [];
  if (likely.length && rng.chance(0.75)) return rng.pick(likely);
  return rng.chance(0.5) ? rng.pick(pool.slice(-8)) : rng.pick(pool);
};

/** Who acts on a booking: its buyer, now and then someone else (who must be refused). */
export const actor = (sim: Sim, b: BookingRef) => (sim.rng.chance(0.05) ? sim.rng.pick(sim.sc.users.filter((u) => u !== b.user)) ?? b.user : b.user);
