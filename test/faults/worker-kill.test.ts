import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { BookingId, UserId } from '../../engine/ids.js';
import { createEngine } from '../../engine/index.js';
import { createMetrics } from '../../platform/metrics.js';
import { createOutboxMailer } from '../../integrations/mail/outbox.js';
import { listSimulatedPayments } from '../../integrations/payments/simulated.js';
import { createPersistWorker } from '../../workers/persist/persist.js';
import { notifyProcessor, startJobWorkers } from '../../workers/processors.js';
import { createJobSink } from '../../integrations/queues.js';
import { gaEvent } from '../events.js';
import { drain, waitFor } from '../wait.js';
import { cleanups, killHard, onSaleNow, recordFigures, silent, startOwnRedis, startStack, waitDrained } from './harness.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';

const CHILDREN = join(import.meta.dirname, '..', 'children');

/** Runs a child (through tsx) that is meant to kill itself with SIGKILL; resolves with its signal and output. */
function runChild(file: string, env: Record<string, string>, onStart?: (kill: () => Promise<void>) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(CHILDREN, file)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  onStart?.(() => killHard(child));
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return {
    output: () => out,
    exit: new Promise<{ signal: NodeJS.Signals | null; out: string }>((r) => child.once('exit', (_c, signal) => r({ signal, out }))),
  };
}

/** The message folders of an outbox mailer directory (not its .index / .tmp). */
const messages = async (dir: string) => (await readdir(dir)).filter((f) => !f.startsWith('.'));

/**
 * F5 (F6 of the plan): a worker killed with SIGKILL at each step where an effect has happened but is not yet recorded.
 *   - persist worker: after the Postgres commit, before the outbox ack -> the re-run applies nothing twice;
 *   - payment: after the charge -> covered by workers/processors.test.ts ("a payer killed (SIGKILL) after the capture":
 *     test/children/pay-and-die.ts; the settle job finishes it with one charge), not repeated here;
 *   - notify worker: after the mailer accepted the e-mail, before the delivery is recorded -> no second e-mail.
 */
describe('F5 fault: a worker killed (SIGKILL) between its effect and its record', () => {
  it('persist worker killed after the Postgres commit, before the outbox ack: the re-run applies nothing twice', async ({ onTestFinished }) => {
    const own = cleanups(onTestFinished);
    const redis = own(await startOwnRedis(), (r) => r.stop());
    const s = own(await startStack({ redisUrl: redis.url, persist: false }), (x) => x.close());
    const ev = await s.engine.createEvent(gaEvent(100, onSaleNow()));
    // three bookings recorded (a payment waits for that) and paid: their sales are in the backlog
    const paid: { id: BookingId; user: UserId }[] = [];
    for (let i = 0; i < 3; i++) {
      const user = `pp${i}` as UserId;
      paid.push({ id: (await s.engine.bookings.create({ userId: user, eventId: ev.id, ticketCount: 1 })).reservation.bookingId, user });
    }
    await drain(s.workerEngine, ev.id);
    for (const b of paid) {
      expect((await s.engine.payments.pay({ bookingId: b.id, userId: b.user, paymentMethodId: 'pm_card_visa' })).outcome).toBe('succeeded');
    }
    const ids: { id: BookingId; user: UserId }[] = [];
    for (let i = 0; i < 30; i++) {
      const user = `pk${i}` as UserId;
      const { reservation } = await s.engine.bookings.create({ userId: user, eventId: ev.id, ticketCount: 1 + (i % 3) });
      ids.push({ id: reservation.bookingId, user });
    }
    for (const b of ids.slice(0, 3)) await s.engine.bookings.cancel(b.id, b.user);
    const backlog = (await s.workerEngine.outbox.backlog(ev.id)).entries;
    expect(backlog).toBe(39); // 3 payments started, 3 confirmed, 30 created, 3 cancelled

    const child = runChild('persist-and-die.ts', { REDIS_URL: redis.url, DATABASE_URL: s.databaseUrl, SCHEMA: s.schema, NS: s.ns, LEASE_MS: '1500' }, (k) => own(k, (kill) => kill()));
    const { signal, out } = await child.exit;
    expect(signal, out).toBe('SIGKILL');
    expect(out).toMatch(/committed \d+ of 39/);
    // committed in Postgres, not acknowledged in Redis
    expect((await s.workerEngine.outbox.backlog(ev.id)).entries).toBe(39);
    const snapshot = async () => {
      const q = (sql: string) => s.pg.query(sql, [ev.id]).then((r) => r.rows);
      return {
        bookings: await q('SELECT id, state, ticket_count FROM bookings WHERE event_id = $1 ORDER BY id'),
        transitions: await q('SELECT count(*)::int AS n FROM booking_transitions t JOIN bookings b ON b.id = t.booking_id WHERE b.event_id = $1'),
        tiers: await q('SELECT id, capacity, reserved, sold FROM tiers WHERE event_id = $1'),
      };
    };
    const afterCrash = await snapshot();
    expect(afterCrash.bookings).toHaveLength(33);

    // the re-run: a fresh persist worker takes the lease once the dead one's has lapsed and redoes the unacknowledged batch
    const metrics = createMetrics('workers');
    const rerun = createPersistWorker({ engine: s.workerEngine, log: silent, metrics, leaseMs: 1500 });
    own(rerun, (w) => w.stop()).start();
    const startedAt = Date.now();
    await waitDrained(s.workerEngine, [ev.id], 20_000);
    const tookOverMs = Date.now() - startedAt;
    expect(await snapshot()).toEqual(afterCrash);
    const applied = (await metrics.registry.getSingleMetric('floodgate_outbox_entries_applied_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    const duplicates = (await metrics.registry.getSingleMetric('floodgate_outbox_duplicates_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    expect(applied).toBe(0);
    expect(duplicates).toBe(39);
    const report = await s.workerEngine.checkInvariants({ eventIds: [ev.id], drained: true, charges: await listSimulatedPayments(redis.admin, simulatedPaymentKeys(s.ns)) });
    expect(report.violations).toEqual([]);
    await recordFigures('F5-persist-kill', {
      entries: backlog, committedBeforeKill: afterCrash.bookings.length, reappliedOnRerun: applied, skippedAsReplays: duplicates,
      leaseTakeoverMs: tookOverMs, invariantViolations: report.violations.length,
    });
  });

  /** A paid booking whose notify job is picked up by a child that dies right after the mailer accepted the e-mail. */
  async function killNotifyAfterSend(onTestFinished: (fn: () => Promise<void>) => void) {
    const own = cleanups(onTestFinished);
    const redis = own(await startOwnRedis(), (r) => r.stop());
    const s = own(await startStack({ redisUrl: redis.url }), (x) => x.close());
    const dir = own(await mkdtemp(join(tmpdir(), 'fg-fault-mail-')), (d) => rm(d, { recursive: true, force: true }));
    const bull = own(new Redis(redis.url, { maxRetriesPerRequest: null }), (b) => b.disconnect());
    const sink = own(createJobSink(bull, `${s.ns}:bull`, { sms: false }), (k) => k.close());
    const e = createEngine({ ...s.workerDeps, jobs: sink });
    const ev = await e.createEvent(gaEvent(10, onSaleNow()));
    const user = 'mailed' as UserId;
    const { reservation } = await e.bookings.create({ userId: user, eventId: ev.id, ticketCount: 2 });
    const id = reservation.bookingId;
    expect((await e.payments.pay({ bookingId: id, userId: user, paymentMethodId: 'pm_card_visa' })).outcome).toBe('succeeded');
    // the persist worker records CONFIRMED and asks for the tickets (issue 12, its branch); asked here too: one job id
    await waitFor('CONFIRMED in the record', async () => (await s.pg.query("SELECT 1 FROM bookings WHERE id = $1 AND state = 'CONFIRMED'", [id])).rowCount === 1);
    await sink.deliverTickets(id);
    await waitFor('the notify job queued', async () => (await sink.queues.notify.getJobCounts('waiting')).waiting === 1);

    const child = runChild('notify-and-die.ts', { REDIS_URL: redis.url, DATABASE_URL: s.databaseUrl, SCHEMA: s.schema, NS: s.ns, OUTBOX_DIR: dir, LOCK_MS: '1000' }, (k) => own(k, (kill) => kill()));
    const { signal, out } = await child.exit;
    expect(signal, out).toBe('SIGKILL');
    expect(out).toMatch(/accepted /);
    expect(await messages(dir)).toHaveLength(1);

    // the re-run: BullMQ finds the job stalled (its lock lapsed with the process) and runs it again here
    const deps = { engine: e, log: silent, mailer: createOutboxMailer({ dir }), mailFrom: 'tickets@floodgate.test' };
    own(startJobWorkers(deps, bull, `${s.ns}:bull`, ['notify'], { stalledIntervalMs: 500 }), (w) => w.stop());
    const job = (await sink.queues.notify.getJob(`email-${id}`))!;
    await waitFor('the notify job re-run to its end', async () => ['completed', 'failed', 'delayed'].includes(await job.getState()), 30_000);
    const delivery = async () =>
      (await s.pg.query<{ status: string; message_id: string | null }>("SELECT status, message_id FROM deliveries WHERE booking_id = $1 AND channel = 'email'", [id])).rows[0];
    return { s, e, ev, redis, dir, id, user, deps, job, delivery };
  }

  it('notify worker killed after the e-mail was accepted: the re-run sends no second e-mail; exactly one once the claim is taken over', async ({ onTestFinished }) => {
    const { s, e, ev, redis, dir, id, user, deps, job, delivery } = await killNotifyAfterSend(onTestFinished);
    const rerunState = await job.getState();
    expect(await messages(dir)).toHaveLength(1); // the delivery claim stopped the re-run from sending again
    const claimAfterRerun = (await delivery())!.status;

    // Ten minutes later the claim counts as abandoned and the next run sends again: the outbox mailer's idempotency key
    // (tickets-<bookingId>) returns the first message instead of writing a second one. Postgres' clock is moved, not ours.
    await s.pg.query("UPDATE deliveries SET claimed_at = now() - interval '11 minutes' WHERE booking_id = $1", [id]);
    await notifyProcessor(deps)({ id: 'takeover', data: { bookingId: id, channel: 'email' } } as unknown as Job);
    const folders = await messages(dir);
    expect(folders).toHaveLength(1);
    const first = JSON.parse(await readFile(join(dir, folders[0]!, 'message.json'), 'utf8')) as { messageId: string };
    expect(await delivery()).toEqual({ status: 'sent', message_id: first.messageId });
    expect((await e.bookings.get(id, { userId: user })).status).toBe('TICKETS_DELIVERED');
    const report = await s.workerEngine.checkInvariants({
      eventIds: [ev.id],
      charges: await listSimulatedPayments(redis.admin, simulatedPaymentKeys(s.ns)), emailsPerBooking: new Map([[id, folders.length]]),
    });
    expect(report.violations).toEqual([]);
    await recordFigures('F5-notify-kill', {
      emailsAfterKill: 1, rerunJobState: rerunState, deliveryAfterRerun: claimAfterRerun, emailsAfterTakeover: folders.length,
      deliveryAfterTakeover: 'sent', invariantViolations: report.violations.length,
    });
  });

  // Found by this suite and fixed: the re-run used to complete the job on a fresh 'sending' claim ("already sent") although
  // the send was never recorded, leaving the booking CONFIRMED for good. A fresh claim now fails the run, so BullMQ
  // retries it until the claim is taken over (10 minutes) or recorded.
  it('notify worker killed after the e-mail was accepted: the re-run does not complete the job before the delivery is recorded', async ({ onTestFinished }) => {
    const { job, delivery } = await killNotifyAfterSend(onTestFinished);
    const state = await job.getState();
    // acceptable: the job is retried later (delayed/failed for a retry) or it finished the delivery itself
    if (state === 'completed') expect((await delivery())!.status).toBe('sent');
  });
});
