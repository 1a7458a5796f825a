import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { EventId } from '../../engine/ids.js';
import { eventKeys } from '../../engine/keys.js';
import { createFailoverSignals, watchRedisServer } from '../../platform/failover.js';
import { createMetrics, type Metrics } from '../../platform/metrics.js';
import { createReconcileWorker } from '../../workers/reconcile/reconcile.js';
import { gaEvent } from '../events.js';
import { token } from '../http.js';
import { waitFor } from '../wait.js';
import { cleanups, missingInPostgres, onSaleNow, oversoldInPostgres, recordFigures, redisHolds, startLoad, startOwnRedis, startStack, waitDrained } from './harness.js';
import { startPgPair, startRedisSentinel } from './replicas.js';

/** The value of one sample of a metric (the first whose labels contain `labels`), or 0 when it has none. */
async function sample(metrics: Metrics, name: string, labels = ''): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(labels));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** A reconcile worker as workers/main.ts wires it, with a period long enough that only a failover runs a pass. */
function startReconcile(o: { engine: Parameters<typeof createReconcileWorker>[0]['engine']; failovers: ReturnType<typeof createFailoverSignals>; redisWatch?: { check(): Promise<void> } }) {
  const metrics = createMetrics('workers');
  const lines: { msg: string; mismatch?: number; differences?: unknown[]; rebuildMs?: number }[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) });
  const worker = createReconcileWorker({ engine: o.engine, log, metrics, intervalMs: 600_000, failovers: o.failovers, redisWatch: o.redisWatch, confirmMs: 500 });
  return { worker, metrics, lines };
}

/**
 * Issue 15, item 3: recovery after a failover, by itself. The reconcile worker is told of the failover (a new Redis
 * run_id, another Postgres primary), reconciles every live event at once (its period here is 10 minutes: only the
 * failover can run that pass), and after a Redis failover rebuilds from Postgres what Redis lost. Measured: from the
 * kill to the pass that found every event exact (floodgate_inventory_mismatch 0).
 */
describe('recovery after a failover: reconcile at once, rebuild what Redis lost, mismatch back to 0', () => {
  it('Redis failover without WAIT: the hold and the payment the promoted replica never got are rebuilt from Postgres during the sale', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const own = cleanups(onTestFinished);
    const set = own(await startRedisSentinel('fgrecover'), (s) => s.stop());
    const stripe = own(await startOwnRedis(), (r) => r.stop());
    const s = own(await startStack({
      redisUrl: 'redis://127.0.0.1:1', // unused: Sentinel names the primary
      redis: { sentinels: set.sentinels, sentinelName: set.name, waitReplicas: 0 }, // no WAIT: a failover can lose acknowledged writes
      providerRedisUrl: stripe.url,
      engineConfig: { holdTtlMs: 600_000 },
    }), (x) => x.close());
    const failovers = createFailoverSignals();
    const watch = watchRedisServer(s.workerDeps.redis, failovers);
    await watch.check(); // the server the workers start on
    const { worker, metrics, lines } = startReconcile({ engine: s.workerEngine, failovers, redisWatch: watch });
    own(worker, (w) => w.stop());
    own(watch, (w) => w.stop());
    const ev = await s.engine.createEvent(gaEvent(5_000, onSaleNow()));
    const k = eventKeys(s.ns, ev.id);
    worker.start();
    await waitFor('the first reconcile pass', async () => (await sample(metrics, 'floodgate_reconcile_runs_total')) === 1);

    const load = own(startLoad({ urls: [s.api.url], eventId: ev.id, clients: 4, thinkMs: 20 }), (l) => l.stop());
    const call = async (path: string, user: string, key: string, body: object) => {
      const res = await fetch(`${s.api.url}${path}`, {
        method: 'POST', body: JSON.stringify(body),
        headers: { authorization: `Bearer ${await token(user)}`, 'content-type': 'application/json', 'idempotency-key': key },
      });
      return { status: res.status, json: (await res.json()) as { bookingId: string } };
    };
    // A holds (and is on the replica); the sale goes on
    const a = await call('/api/bookings', 'rec-a', 'rec-a-1', { eventId: ev.id, ticketCount: 1 });
    expect(a.status).toBe(201);
    await waitFor('holds by the load', () => load.acked().size >= 20, 30_000);
    await waitFor('A recorded', async () => (await missingInPostgres(s.pg, [a.json.bookingId])).length === 0, 30_000);

    // the replica stops reading the replication stream; 48 MB of filler fill the socket buffers between them, so what
    // follows stays in the primary's memory: B's hold (2 tickets) and A's payment, acknowledged to the buyers and
    // written to Postgres by the persist worker, never reach the replica
    await load.pause();
    const primary = await set.primaryPort();
    const [replica] = await set.replicaPorts();
    await waitFor('the replica in sync', async () => {
      const offset = (info: string, f: string) => Number(new RegExp(`${f}:(\\d+)`).exec(info)?.[1]);
      return offset(await set.admin(primary).info('replication'), 'master_repl_offset') === offset(await set.admin(replica!).info('replication'), 'slave_repl_offset');
    }, 10_000);
    set.pause(replica!);
    await set.admin(primary).set(`${s.ns}:filler`, Buffer.alloc(48 * 1024 * 1024, 120));
    const b = await call('/api/bookings', 'rec-b', 'rec-b-1', { eventId: ev.id, ticketCount: 2 });
    expect(b.status).toBe(201);
    expect((await call('/api/payments', 'rec-a', 'rec-a-pay', { bookingId: a.json.bookingId, paymentMethodId: 'pm_card_visa' })).status).toBe(200);
    await waitFor('B and A recorded in Postgres', async () => {
      const { rows } = await s.pg.query<{ id: string; state: string }>('SELECT id, state FROM bookings WHERE id = ANY($1::text[])', [[a.json.bookingId, b.json.bookingId]]);
      return rows.length === 2 && rows.find((r) => r.id === a.json.bookingId)!.state === 'CONFIRMED';
    }, 30_000);
    await waitDrained(s.workerEngine, [ev.id]);

    const killedAt = Date.now();
    await set.kill9Primary();
    set.resume(replica!);
    load.resume(); // buyers go on through the failover and the repair (503s are retried with the same key)
    await set.waitPromoted(primary);
    const promotedMs = Date.now() - killedAt;
    // recovered: the failover noticed, and a pass after it found every event exact
    await waitFor('the recovery', async () => (await sample(metrics, 'floodgate_failovers_total', 'store="redis"')) === 1 && !worker.recovering(), 60_000, 10);
    const recoveredMs = Date.now() - killedAt;
    await waitFor('holds after the repair', () => [...load.acked().values()].some((x) => x.at > killedAt + recoveredMs), 30_000);
    await load.stop();
    await waitDrained(s.workerEngine, [ev.id], 60_000);

    // what was lost, and what the worker did (its log line names the differences it rebuilt)
    const rebuilt = lines.find((l) => l.msg.startsWith('rebuilt from Postgres after a Redis failover'));
    expect(rebuilt?.mismatch).toBeGreaterThan(0);
    expect(await sample(metrics, 'floodgate_failover_repairs_total', 'outcome="rebuilt"')).toBe(1);
    expect(await sample(metrics, 'floodgate_failover_repairs_total', 'outcome="refused"')).toBe(0);
    expect(await sample(metrics, 'floodgate_failover_repairs_total', 'outcome="failed"')).toBe(0);
    expect(await sample(metrics, 'floodgate_inventory_mismatch')).toBe(0);
    const recoverySeconds = await sample(metrics, 'floodgate_failover_recovery_seconds');
    expect(recoverySeconds).toBeGreaterThan(0);
    // the new primary has B's hold and A's sale back, and the counters agree with Postgres
    const now = set.admin(await set.primaryPort());
    expect(await now.hget(k.hold(b.json.bookingId as never), 'st')).toBe('held');
    expect(await now.hget(k.hold(a.json.bookingId as never), 'st')).toBe('sold');
    expect(await now.exists(`${s.ns}:filler`)).toBe(0); // (the replica never got the filler either)
    expect((await s.workerEngine.reconcile(ev.id)).mismatch).toBe(0);
    // B's retry with its Idempotency-Key replays B's booking instead of making a second one
    const retry = await call('/api/bookings', 'rec-b', 'rec-b-1', { eventId: ev.id, ticketCount: 2 });
    expect([retry.status, retry.json.bookingId]).toEqual([201, b.json.bookingId]);
    // every hold the load was told about is in Postgres and in Redis; nothing oversold; the invariants hold
    const acked = [...load.acked().keys()];
    const inRedis = new Set(await redisHolds(now, s.ns, ev.id));
    const notInPostgres = new Set(await missingInPostgres(s.pg, acked));
    expect(acked.filter((id) => notInPostgres.has(id) || !inRedis.has(id))).toEqual([]);
    expect(await oversoldInPostgres(s.pg, [ev.id])).toBe(0);
    expect((await s.check([ev.id])).violations).toEqual([]);
    // buyers during the repair were told "try again" (503), never "not on sale"
    const answers: Record<string, number> = {};
    for (const x of load.answers) answers[`${x.status}${x.code ? ` ${x.code}` : ''}`] = (answers[`${x.status}${x.code ? ` ${x.code}` : ''}`] ?? 0) + 1;
    expect(load.count((x) => x.code === 'EVENT_CLOSED')).toBe(0);
    expect(load.count((x) => x.status >= 500 && x.status !== 503)).toBe(0);

    await recordFigures('F8-recovery-redis', {
      promotedMs, recoveredMs, recoverySecondsAfterNotice: recoverySeconds, rebuiltMismatch: rebuilt?.mismatch, rebuildMs: rebuilt?.rebuildMs, differences: rebuilt?.differences,
      acknowledgedHolds: acked.length, answers,
    });
  });

  it('Postgres failover: the pool tells the worker, which reconciles at once, finds nothing to repair and rebuilds nothing', { timeout: 180_000 }, async ({ onTestFinished }) => {
    const own = cleanups(onTestFinished);
    const pair = own(await startPgPair({ synchronous: true }), (p) => p.stop());
    const stripe = own(await startOwnRedis(), (r) => r.stop());
    const redis = own(await startOwnRedis(), (r) => r.stop());
    const failovers = createFailoverSignals();
    const s = own(await startStack({
      redisUrl: redis.url, providerRedisUrl: stripe.url, databaseUrl: pair.urlOf(pair.primaryPort()), pgHosts: pair.hosts,
      engineConfig: { holdTtlMs: 600_000, catalogCacheMs: 2_000 },
      onPrimaryChange: (from, to) => failovers.emit({ store: 'postgres', from: `${from.host}:${from.port}`, to: `${to.host}:${to.port}`, atMs: Date.now() }),
    }), (x) => x.close());
    const { worker, metrics, lines } = startReconcile({ engine: s.workerEngine, failovers });
    own(worker, (w) => w.stop());
    const ev = await s.engine.createEvent(gaEvent(5_000, onSaleNow()));
    worker.start();
    await waitFor('the first reconcile pass', async () => (await sample(metrics, 'floodgate_reconcile_runs_total')) === 1);
    const load = own(startLoad({ urls: [s.api.url], eventId: ev.id, clients: 4, thinkMs: 20 }), (l) => l.stop());
    await waitFor('holds by the load', () => load.acked().size >= 20, 30_000);

    const killedAt = Date.now();
    await pair.kill9Primary();
    await pair.promoteStandby();
    const promotedMs = Date.now() - killedAt;
    await waitFor('the recovery', async () => (await sample(metrics, 'floodgate_failovers_total', 'store="postgres"')) === 1 && !worker.recovering(), 60_000, 10);
    const recoveredMs = Date.now() - killedAt;
    await load.stop();
    await waitDrained(s.workerEngine, [ev.id as EventId], 60_000);

    expect(await sample(metrics, 'floodgate_reconcile_runs_total')).toBeGreaterThanOrEqual(2); // the failover's pass, not the period's
    expect(await sample(metrics, 'floodgate_inventory_mismatch')).toBe(0);
    expect(await sample(metrics, 'floodgate_failover_repairs_total', 'outcome="rebuilt"')).toBe(0);
    expect(await sample(metrics, 'floodgate_failover_repairs_total', 'outcome="refused"')).toBe(0);
    expect(lines.some((l) => l.msg.startsWith('failover noticed'))).toBe(true);
    const acked = [...load.acked().keys()];
    expect(await missingInPostgres(s.pg, acked)).toEqual([]);
    expect(await oversoldInPostgres(s.pg, [ev.id])).toBe(0);
    expect((await s.check([ev.id])).violations).toEqual([]);
    await recordFigures('F8-recovery-postgres', {
      promotedMs, recoveredMs, recoverySecondsAfterNotice: await sample(metrics, 'floodgate_failover_recovery_seconds'), acknowledgedHolds: acked.length,
    });
  });
});
