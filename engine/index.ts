import { applyOutbox } from './booking/persist.js';
import { createBookings } from './booking/bookings.js';
import { createCatalog, type EventInput } from './catalog/catalog.js';
import type { EngineDeps } from './deps.js';
import { createHolds } from './holds/holds.js';
import { createInventory } from './inventory/inventory.js';
import { createOutbox } from './outbox/outbox.js';
import { createOutboxDrain } from './outbox/drain.js';
import { createWaitingRoom, type QueueSettings } from './waiting-room/waiting-room.js';
import { createPayments } from './payments/payments.js';
import { createRefunds } from './payments/refunds.js';
import { createTickets } from './tickets/tickets.js';
import { createSmsMessages } from './tickets/sms-messages.js';
import { createIdempotency } from './idempotency.js';
import { createRateLimits } from './rate-limits.js';
import { reconcileEvent } from './inventory/reconcile.js';
import { rebuildEvent } from './inventory/rebuild.js';
import type { EventId } from './ids.js';
import { createWebhookEvents } from './payments/webhook-events.js';
import { createStreamSlots } from './waiting-room/stream-slots.js';
import { checkInvariants, type InvariantOptions } from './invariants/invariants.js';
import { pgActivity } from '../platform/pg.js';
import { createSignIn } from './sign-in.js';
import { createWaitlist } from './waitlist/waitlist.js';

export function createEngine(d: EngineDeps) {
  const catalog = createCatalog(d);
  const inventory = createInventory(d);
  const holds = createHolds(d);
  const bookings = createBookings(d, catalog, holds);
  const stream = createOutbox(d);
  const outbox = { ...stream, ...createOutboxDrain(d, stream, holds) };
  const waitingRoom = createWaitingRoom(d);
  const payments = createPayments(d, holds, catalog);
  const refunds = createRefunds(d);
  const tickets = createTickets(d, catalog, bookings);
  const idempotency = createIdempotency(d);
  const rateLimits = createRateLimits(d);
  const reconcile = (eventId: EventId) => reconcileEvent(d, eventId);
  // `d` stays inside: callers reach Redis and Postgres only through the methods below
  return {
    catalog,
    inventory,
    holds,
    bookings,
    outbox,
    waitingRoom,
    /** Waitlists of sold-out general-admission tiers and their offers (holds for the next in line). */
    waitlist: createWaitlist(d),
    payments,
    refunds,
    tickets,
    /** The SMS of each booking: accepted, refused, delivery receipts (apart from the booking's state). */
    sms: createSmsMessages(d),
    idempotency,
    rateLimits,
    /** Passwordless sign-in: one-time e-mail link tokens. */
    signIn: createSignIn(d),
    /** The payment provider's webhook events already handled. */
    webhookEvents: createWebhookEvents(d),
    /** Slots of open status streams, capped per user and per IP across every API process. */
    streamSlots: createStreamSlots(d),
    /** The payment provider's name (`simulated`, `stripe`; `none` when there is none): a metrics label. */
    providerName: d.provider?.name ?? 'none',
    /** Postgres's own counters (lock waits, active sessions, deadlocks), for the reconcile worker's gauges. */
    pgActivity: () => pgActivity(d.pg),
    /** Readiness of the engine's two stores (the API's /ready): each resolves once its store answers. */
    probes: { redis: () => d.redis.ping(), postgres: () => d.pg.query('SELECT 1') },
    /** Creates an event in Postgres, arms its inventory in Redis, and sets its waiting room if asked. */
    async createEvent(input: EventInput & { queue?: QueueSettings | undefined }) {
      const event = await catalog.create(input);
      await inventory.arm(event.id);
      if (input.queue) {
        await waitingRoom.configure(event.id, input.queue);
        catalog.forget(event.id);
      }
      return catalog.get(event.id);
    },
    /** Redis vs Postgres for one event (0 when exact). */
    reconcile,
    /** Floodgate's invariants checked against the real stores (engine/invariants/invariants.ts): tests, faults, bench. */
    checkInvariants: (o?: InvariantOptions) => checkInvariants({ ns: d.ns, redis: d.redis, pg: d.pg, inventory, outbox, reconcile }, o),
    /** Rebuilds an event's Redis state from Postgres (refuses a live event unless forced). */
    rebuild: (eventId: EventId, o: { force?: boolean } = {}) => rebuildEvent(d, outbox, waitingRoom, eventId, o),
    applyOutbox: (entries: Parameters<typeof applyOutbox>[1], onRefused?: Parameters<typeof applyOutbox>[2]) =>
      applyOutbox(d.pg, entries, onRefused),
  };
}
export type Engine = ReturnType<typeof createEngine>;

export type { EngineDeps } from './deps.js';
export type { EngineConfig } from './config.js';
export { DEFAULT_ENGINE_CONFIG } from './config.js';
export * from './errors.js';
export * from './ids.js';
export type { Clock, FakeClock } from './clock.js';
export { systemClock, fakeClock } from './clock.js';
export type { EventInput, EventRecord, EventWithAvailability, TierInput } from './catalog/catalog.js';
export type { Booking } from './booking/bookings-repo.js';
export type { Reservation, CreateBooking } from './booking/bookings.js';
export type { BookingState } from './booking/states.js';
export type { OutboxEntry } from './outbox/outbox.js';
export type { ChargeRecord, InvariantOptions, InvariantReport } from './invariants/invariants.js';
export type { QueueSettings, QueueStatus } from './waiting-room/waiting-room.js';
export { parseQueueId } from './waiting-room/waiting-room.js';
export { createChangeFeed, publishChange, type ChangeFeed } from './waiting-room/changes.js';
export type { PayResult, PaymentAttempt } from './payments/payments.js';
export type { PaymentProvider } from './payments/provider.js';
export type { JobSink } from './jobs.js';
export type { GateResult } from './tickets/tickets.js';
export type { RateLimitCheck, RateLimitGroup, RateLimits } from './rate-limits.js';
export { rateLimits } from './rate-limits.js';
export { userIdOfEmail, safeNext, type SignIn } from './sign-in.js';
export type { WaitlistOffer, WaitlistPlace, OfferEnd } from './waitlist/waitlist.js';
