import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.js';

/** What the cluster primary serves: AggregatorRegistry.aggregate over each API process's registry, as text. */
async function summed(...processes: ReturnType<typeof createMetrics>[]): Promise<string> {
  return AggregatorRegistry.aggregate(await Promise.all(processes.map((m) => m.registry.getMetricsAsJSON()))).metrics();
}

describe('createMetrics, summed over API processes (API_PROCESSES > 1)', () => {
  it('adds counters and histograms up, and takes the largest of a gauge that is the same fact in every process', async () => {
    const a = createMetrics('api');
    const b = createMetrics('api');
    a.holdAttempts.inc({ outcome: 'held' }, 3);
    b.holdAttempts.inc({ outcome: 'held' }, 4);
    b.holdAttempts.inc({ outcome: 'SOLD_OUT' });
    a.httpDuration.observe({ method: 'POST', route: '/api/bookings', status: '201' }, 0.002);
    b.httpDuration.observe({ method: 'POST', route: '/api/bookings', status: '201' }, 0.2);
    // both processes read the same backlog from Redis: 40, not 80
    a.outboxBacklog.set(40);
    b.outboxBacklog.set(40);
    a.queueJobs.set({ queue: 'notify', state: 'waiting' }, 7);
    b.queueJobs.set({ queue: 'notify', state: 'waiting' }, 7);

    const text = await summed(a, b);
    expect(text).toContain('floodgate_hold_attempts_total{outcome="held",service="api"} 7');
    expect(text).toContain('floodgate_hold_attempts_total{outcome="SOLD_OUT",service="api"} 1');
    expect(text).toContain('floodgate_http_request_duration_seconds_count{method="POST",route="/api/bookings",status="201",service="api"} 2');
    expect(text).toContain('floodgate_http_request_duration_seconds_bucket{le="0.0025",method="POST",route="/api/bookings",status="201",service="api"} 1');
    expect(text).toContain('floodgate_outbox_backlog_entries{service="api"} 40');
    expect(text).toContain('floodgate_queue_jobs{queue="notify",state="waiting",service="api"} 7');
  });
});
