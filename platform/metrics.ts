import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Floodgate's metrics: `floodgate_` prefix, base units, `_total` counters, and no user or booking ids or raw
 * URLs in labels (routes are templates). One registry per process (API or workers).
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
      help: 'Reservations cancelled by their buyer',
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
    persistBatchSeconds: new Histogram({
      name: 'floodgate_persist_batch_duration_seconds',
      help: 'Time to apply one outbox batch to Postgres',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    outboxBacklog: new Gauge({
      name: 'floodgate_outbox_backlog_entries',
      help: 'Outbox entries not yet applied to Postgres (all events)',
      registers: [registry],
    }),
    outboxOldestAge: new Gauge({
      name: 'floodgate_outbox_oldest_entry_age_seconds',
      help: 'Age of the oldest outbox entry not yet applied to Postgres',
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
