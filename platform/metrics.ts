import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Floodgate's metrics: `floodgate_` prefix, base units, `_total` counters, and no user or booking ids or raw
 * URLs in labels (routes are templates). One registry per process (API or workers). With API_PROCESSES > 1 the
 * cluster primary sums every API process's registry (platform/cluster.ts): counters and histograms add up; the gauges
 * here are facts read from Redis or Postgres, the same in every process, so they take the largest instead.
 */
export function createMetrics(service: 'api' | 'workers') {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'floodgate_process_' });
  const m = {
    registry,
    httpDuration: new Histogram({
      name: 'floodgate_http_request_duration_seconds',
      help: 'HTTP request latency by route template, method and status code',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      registers: [registry],
    }),
    holdAttempts: new Counter({
      name: 'floodgate_hold_attempts_total',
      help: 'Hold attempts by outcome (held, replayed, or the rejection code)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    bookingsCreated: new Counter({
      name: 'floodgate_bookings_created_total',
      help: 'Reservations created (holds taken)',
      registers: [registry],
    }),
    ticketsHeld: new Counter({
      name: 'floodgate_tickets_held_total',
      help: 'Tickets put on hold',
      registers: [registry],
    }),
    bookingsCancelled: new Counter({
      name: 'floodgate_bookings_cancelled_total',
      help: 'Reservations cancelled, by reason (buyer, payment_failed)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    bookingsConfirmed: new Counter({
      name: 'floodgate_bookings_confirmed_total',
      help: 'Bookings confirmed (payment taken, seats sold)',
      registers: [registry],
    }),
    ticketsSold: new Counter({
      name: 'floodgate_tickets_sold_total',
      help: 'Tickets sold',
      registers: [registry],
    }),
    revenue: new Counter({
      name: 'floodgate_revenue_minor_units_total',
      help: 'Revenue of confirmed bookings in minor units (cents), by currency',
      labelNames: ['currency'] as const,
      registers: [registry],
    }),
    refunds: new Counter({
      name: 'floodgate_refunds_total',
      help: 'Refund requests decided, by outcome (refunded, denied)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    payments: new Counter({
      name: 'floodgate_payments_total',
      help: 'Payment attempts by provider and outcome (succeeded, declined, failed, unavailable)',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    paymentDuration: new Histogram({
      name: 'floodgate_payment_duration_seconds',
      help: 'Time from payment request to its outcome, by provider',
      labelNames: ['provider'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    }),
    timeToBook: new Histogram({
      name: 'floodgate_time_to_book_seconds',
      help: 'From joining the waiting room (or holding, without one) to a confirmed booking',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600],
      registers: [registry],
    }),
    notificationDelay: new Histogram({
      name: 'floodgate_notification_delay_seconds',
      help: 'From confirmation to the message accepted by its transport, by channel (email, sms)',
      labelNames: ['channel'] as const,
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    notifications: new Counter({
      name: 'floodgate_notifications_total',
      help: 'Notifications by channel and outcome (sent, failed)',
      labelNames: ['channel', 'outcome'] as const,
      registers: [registry],
    }),
    sms: new Counter({
      name: 'floodgate_sms_total',
      help: 'SMS sends by outcome: sent (the transport took it), retry (429, 5xx or no answer: tried again later), rejected (an invalid or unreachable number: recorded, never retried), failed (given up after the last retry)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    waitingRoomJoins: new Counter({
      name: 'floodgate_waiting_room_joins_total',
      help: 'People who took a place in a waiting room',
      registers: [registry],
    }),
    waitingRoomAdmitted: new Counter({
      name: 'floodgate_waiting_room_admitted_total',
      help: 'People admitted from a waiting room (passes issued)',
      registers: [registry],
    }),
    waitingRoomWaiting: new Gauge({
      name: 'floodgate_waiting_room_waiting',
      help: 'People waiting in waiting rooms (all events)',
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    waitingRoomPasses: new Gauge({
      name: 'floodgate_waiting_room_passes_outstanding',
      help: 'Admission passes issued and not yet used for a hold (all events)',
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    waitingRoomPassesUnused: new Counter({
      name: 'floodgate_waiting_room_passes_unused_total',
      help: 'Admission passes that ended without a hold: lapsed (not used within the grace period) or left (given back by a buyer who found nothing)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    waitingRoomHeldShare: new Gauge({
      name: 'floodgate_waiting_room_held_share',
      help: 'Share of held tickets admission counts as coming back (observed returned / resolved holds of the sale, conservative prior, bounded)',
      labelNames: ['event'] as const,
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    waitingRoomActiveCap: new Gauge({
      name: 'floodgate_waiting_room_active_cap_tickets',
      help: 'The pace of admission: at most this many tickets in play (reserved by unused passes plus held), from the sold rate x ADMISSION_HOLD_BUDGET x HOLD_TTL_MS',
      labelNames: ['event'] as const,
      registers: [registry],
    }),
    waitingRoomWait: new Histogram({
      name: 'floodgate_waiting_room_wait_seconds',
      help: 'From joining a waiting room to being admitted',
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600],
      registers: [registry],
    }),
    inventoryMismatch: new Gauge({
      name: 'floodgate_inventory_mismatch',
      help: 'Tickets on which Redis and Postgres disagree, summed over live events (0 when exact)',
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    reconcileRuns: new Counter({
      name: 'floodgate_reconcile_runs_total',
      help: 'Reconciliation passes completed',
      registers: [registry],
    }),
    failovers: new Counter({
      name: 'floodgate_failovers_total',
      help: 'Failovers this process noticed: Postgres, another host of PG_HOSTS accepts writes; Redis, another server process (Sentinel failover or restart)',
      labelNames: ['store'] as const,
      registers: [registry],
    }),
    failoverRepairs: new Counter({
      name: 'floodgate_failover_repairs_total',
      help: 'After a failover, events whose mismatch the reconcile worker met: rebuilt from Postgres, refused (not safe without an operator), or failed',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    failoverRecovery: new Gauge({
      name: 'floodgate_failover_recovery_seconds',
      help: 'From the last failover noticed to the first reconcile pass after it with every live event exact (mismatch 0)',
      registers: [registry],
    }),
    queueJobs: new Gauge({
      name: 'floodgate_queue_jobs',
      help: 'BullMQ jobs by queue and state (waiting, active, delayed, failed)',
      labelNames: ['queue', 'state'] as const,
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    jobsStalled: new Counter({
      name: 'floodgate_jobs_stalled_total',
      help: 'BullMQ jobs found stalled (their worker died or blocked) and restarted',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    pgLockWaits: new Gauge({
      name: 'floodgate_pg_lock_waits',
      help: 'Postgres sessions of this database waiting for a lock',
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    pgActiveSessions: new Gauge({
      name: 'floodgate_pg_active_sessions',
      help: 'Postgres sessions of this database running a statement (lock contention = lock waits / these)',
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    pgDeadlocks: new Counter({
      name: 'floodgate_pg_deadlocks_total',
      help: 'Deadlocks Postgres detected in this database',
      registers: [registry],
    }),
    holdsExpired: new Counter({
      name: 'floodgate_holds_expired_total',
      help: 'Holds released by the sweeper because their deadline passed',
      registers: [registry],
    }),
    outboxApplied: new Counter({
      name: 'floodgate_outbox_entries_applied_total',
      help: 'Outbox entries applied to Postgres, by domain event type',
      labelNames: ['type'] as const,
      registers: [registry],
    }),
    outboxDuplicates: new Counter({
      name: 'floodgate_outbox_duplicates_total',
      help: 'Outbox entries skipped because they were already applied (replays)',
      registers: [registry],
    }),
    durableRefusals: new Counter({
      name: 'floodgate_durable_refusals_total',
      help: 'Holds Postgres refused because they would oversell (recorded FAILED, released in Redis)',
      registers: [registry],
    }),
    outboxQuarantined: new Counter({
      name: 'floodgate_outbox_quarantined_total',
      // no labels: the series exists (at 0) from the start, so the alert's increase() sees the first quarantine
      help: 'Poison outbox entries Postgres refused on their data, set aside so the rest of the outbox flows (a hold: recorded FAILED, released in Redis)',
      registers: [registry],
    }),
    persistBatchSeconds: new Histogram({
      name: 'floodgate_persist_batch_duration_seconds',
      help: 'Time to apply one outbox batch to Postgres',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    outboxBacklog: new Gauge({
      name: 'floodgate_outbox_backlog_entries',
      help: 'Outbox entries not yet applied to Postgres (all events)',
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    outboxOldestAge: new Gauge({
      name: 'floodgate_outbox_oldest_entry_age_seconds',
      help: 'Age of the oldest outbox entry not yet applied to Postgres',
      aggregator: 'max', // the same value in every process (read from Redis or Postgres)
      registers: [registry],
    }),
    clientPage: new Histogram({
      name: 'floodgate_client_page_seconds',
      help: "Page timings buyers' browsers report (web app, POST /api/client-timings): metric ttfb, dom_ready, load, lcp; device mobile or desktop (from the viewport width); page",
      labelNames: ['metric', 'device', 'page'] as const,
      buckets: [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 10, 20],
      registers: [registry],
    }),
    waitlistJoins: new Counter({
      name: 'floodgate_waitlist_joins_total',
      help: 'Buyers who joined a sold-out tier\'s waitlist (a repeated join of the same buyer and tier is not counted)',
      registers: [registry],
    }),
    waitlistOffers: new Counter({
      name: 'floodgate_waitlist_offers_total',
      help: 'Waitlist offers made: returned tickets held for the next buyer in line (each a TTL hold)',
      registers: [registry],
    }),
    waitlistOffersTaken: new Counter({
      name: 'floodgate_waitlist_offers_taken_total',
      help: 'Waitlist offers paid for (the offer\'s hold was sold)',
      registers: [registry],
    }),
    waitlistOffersExpired: new Counter({
      name: 'floodgate_waitlist_offers_expired_total',
      help: 'Waitlist offers that ended without a sale (ran out, or the buyer cancelled): their tickets go to the next in line',
      registers: [registry],
    }),
    workerErrors: new Counter({
      name: 'floodgate_worker_errors_total',
      help: 'Errors in background loops, by worker (they retry with backoff)',
      labelNames: ['worker'] as const,
      registers: [registry],
    }),
  };
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;
