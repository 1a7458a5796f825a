import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it, type Fixtures } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { drain, waitFor } from '../../test/wait.js';
import { startApi } from '../../test/http.js';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../../test/env.js';
import { startTwilioDouble } from '../../test/doubles/twilio.js';
import { createEngine, type Engine, type JobSink } from '../../engine/index.js';
import type { BookingId, UserId } from '../../engine/ids.js';
import { createMetrics } from '../../platform/metrics.js';
import type { Pool } from '../../platform/pg.js';
import { createOutboxMailer } from '../../integrations/mail/outbox.js';
import { createJobSink } from '../../integrations/queues.js';
import { createTwilioSms } from '../../integrations/sms/twilio.js';
import { notifyProcessor, startJobWorkers, type ProcessorDeps } from '../processors.js';
import { ticketsSms } from './sms-step.js';

const PUBLIC = 'https://tickets.example.test';
const CALLBACK = `${PUBLIC}/api/webhooks/twilio`;
const silent = pino({ level: 'silent' });

/**
 * The notify stage with SMS on, for real: BullMQ queues and workers, the outbox mailer, the Twilio transport through
 * the SDK against the local double, and the API receiving the double's signed status callbacks (through a "proxy":
 * the double connects to the test API while signing the public URL).
 */
async function stage(f: Pick<Fixtures, 'deps' | 'ns'>, onTestFinished: (fn: () => Promise<void>) => void, o: { autoCallbacks?: string[]; maxRetries?: number; start?: boolean } = {}) {
  const stops: (() => Promise<unknown> | void)[] = [];
  onTestFinished(async () => {
    for (const stop of stops.reverse()) await stop();
  });
  const prefix = `${f.ns}:bull${randomBytes(3).toString('hex')}`;
  const bull = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  stops.push(() => bull.disconnect());
  const sink = createJobSink(bull, prefix, { sms: true });
  stops.push(() => sink.close());
  const e = createEngine({ ...f.deps, jobs: sink });
  const authToken = randomBytes(16).toString('hex');
  const api = await startApi(e, { twilio: { authToken, statusCallbackUrl: CALLBACK } });
  stops.push(() => api.close());
  const twilio = await startTwilioDouble({ authToken, autoCallbacks: o.autoCallbacks ?? [], callbackOrigin: api.url });
  stops.push(() => twilio.close());
  const outbox = await mkdtemp(join(tmpdir(), 'fg-sms-'));
  stops.push(() => rm(outbox, { recursive: true, force: true }));
  const metrics = createMetrics('workers');
  const deps: ProcessorDeps = {
    engine: e, log: silent, metrics, mailer: createOutboxMailer({ dir: outbox }), mailFrom: 'tickets@floodgate.test', publicUrl: PUBLIC,
    sms: createTwilioSms({ accountSid: twilio.accountSid, authToken: twilio.authToken, from: '+15005550006', apiUrl: twilio.url, statusCallbackUrl: CALLBACK, maxRetries: o.maxRetries ?? 3 }),
  };
  if (o.start !== false) {
    const w = startJobWorkers(deps, bull, prefix, ['notify']);
    stops.push(() => w.stop());
  }
  const emails = async () => (await readdir(outbox)).filter((x) => !x.startsWith('.'));
  // sample lines without the registry's default label
  const metric = async (name: string) =>
    (await metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/,service="workers"|service="workers",?/, '').replace('{}', ''));
  return { e, pg: f.deps.pg, sink, api, twilio, deps, outbox, emails, metric, prefix, bull };
}

async function paidWithPhone({ e, sink }: { e: Engine; sink: JobSink }, who: string, phone: string, opts: { name?: string } = {}): Promise<BookingId> {
  const ev = await e.createEvent(gaEvent(10, { name: opts.name ?? 'Night Concert', startsAt: '2031-06-01T20:00:00Z', timeZone: 'Europe/Paris' }));
  const { reservation } = await e.bookings.create({ userId: who as UserId, eventId: ev.id, ticketCount: 2 });
  await drain(e, ev.id);
  const r = await e.payments.pay({ bookingId: reservation.bookingId, userId: who as UserId, paymentMethodId: 'pm_card_visa', holderPhone: phone });
  expect(r.outcome).toBe('succeeded');
  // CONFIRMED in Postgres from the outbox; the persist worker asks for the tickets then (played here by drain + the sink)
  await drain(e, ev.id);
  await sink.deliverTickets(reservation.bookingId);
  return reservation.bookingId;
}

const deliveries = async (pg: Pool, id: BookingId) =>
  (await pg.query<{ channel: string; status: string; message_id: string | null }>('SELECT channel, status, message_id FROM deliveries WHERE booking_id = $1 ORDER BY channel', [id])).rows;

describe('ticketsSms', () => {
  it('says the event, when it starts in its time zone, the booking and the tickets link; long names are cut', () => {
    const text = ticketsSms({ eventName: 'Night  Concert', startsAt: '2031-06-01T20:00:00Z', timeZone: 'Europe/Paris', bookingId: 'bk_x', publicUrl: 'https://t.example/' });
    expect(text).toBe('Night Concert, Sun 1 Jun 2031, 22:00 (CEST). Booking bk_x. Tickets: https://t.example/api/bookings/bk_x/tickets.pdf');
    const long = ticketsSms({ eventName: 'A'.repeat(100), startsAt: '2031-06-01T20:00:00Z', bookingId: 'bk_x', publicUrl: 'https://t.example' });
    expect(long).toMatch(/^A{37}\.\.\., Sun 1 Jun 2031, 20:00 \(UTC\)\./);
  });
});

describe('notify with SMS through Twilio', () => {
  it('sends one SMS per booking through 5xx retries and a duplicate run; the receipts move its status to delivered', async ({ deps, ns, onTestFinished }) => {
    const s = await stage({ deps, ns }, onTestFinished, { autoCallbacks: ['sent', 'delivered'], maxRetries: 1 });
    // the first run meets two 503s (its own retry included) and fails; BullMQ runs it again, which meets one more, then 201
    s.twilio.failNext(3, 503, '0');
    const id = await paidWithPhone(s, 'sam', '+4915123456778');
    const job = (await s.sink.queues.notify.getJob(`sms-${id}`))!;
    await waitFor('the SMS job completed', async () => (await job.getState()) === 'completed');
    await waitFor('the SMS delivered (receipts)', async () => (await s.e.sms.get(id))?.status === 'delivered');
    await waitFor('tickets delivered by e-mail', async () => (await s.e.bookings.get(id, { userId: 'sam' as UserId }))!.status === 'TICKETS_DELIVERED');
    // a second run of the same job (a duplicate) sends nothing
    expect(await notifyProcessor(s.deps)({ id: 'again', data: { bookingId: id, channel: 'sms' } } as unknown as Job)).toEqual({ skipped: 'already sent' });

    expect(s.twilio.requests.map((r) => r.status)).toEqual([503, 503, 503, 201]);
    expect(s.twilio.messages).toHaveLength(1);
    const [m] = s.twilio.messages;
    expect(m!.to).toBe('+4915123456778');
    expect(m!.body).toBe(`Night Concert, Sun 1 Jun 2031, 22:00 (CEST). Booking ${id}. Tickets: ${PUBLIC}/api/bookings/${id}/tickets.pdf`);
    const booking = (await s.e.bookings.get(id, { userId: 'sam' as UserId }))!;
    for (const code of s.e.tickets.codes(booking)) expect(m!.body).not.toContain(code);
    expect(await s.e.sms.get(id)).toMatchObject({ provider: 'twilio', messageSid: m!.sid, status: 'delivered', errorCode: null });
    expect(s.twilio.callbacks.map((c) => [c.status, c.answered])).toEqual([['sent', 200], ['delivered', 200]]);
    expect(await deliveries(s.pg, id)).toEqual([
      { channel: 'email', status: 'sent', message_id: expect.any(String) },
      { channel: 'sms', status: 'sent', message_id: m!.sid },
    ]);
    expect(await s.emails()).toHaveLength(1);
    expect(booking.status).toBe('TICKETS_DELIVERED');
    expect(await s.metric('floodgate_sms_total')).toEqual(expect.arrayContaining(['floodgate_sms_total{outcome="sent"} 1', 'floodgate_sms_total{outcome="retry"} 1', 'floodgate_sms_total{outcome="rejected"} 0']));
    expect(await s.metric('floodgate_notification_delay_seconds')).toEqual(expect.arrayContaining([expect.stringMatching(/^floodgate_notification_delay_seconds_count\{channel="sms"\} 1$/)]));
  });

  it('an invalid number (21211) is a recorded failure; the e-mail still goes out and the booking is TICKETS_DELIVERED', async ({ deps, ns, onTestFinished }) => {
    const s = await stage({ deps, ns }, onTestFinished);
    const id = await paidWithPhone(s, 'ivy', '+15005550001');
    const job = (await s.sink.queues.notify.getJob(`sms-${id}`))!;
    await waitFor('the SMS job completed', async () => (await job.getState()) === 'completed');
    await waitFor('tickets delivered', async () => (await s.e.bookings.get(id, { userId: 'ivy' as UserId }))!.status === 'TICKETS_DELIVERED');
    expect(await s.e.sms.get(id)).toMatchObject({ provider: 'twilio', messageSid: null, status: 'rejected', errorCode: '21211' });
    expect((await s.e.sms.get(id))!.errorMessage).toMatch(/not a valid phone number/);
    expect(s.twilio.messages).toEqual([]);
    expect(s.twilio.requests).toHaveLength(1); // not retried
    expect(await deliveries(s.pg, id)).toEqual([{ channel: 'email', status: 'sent', message_id: expect.any(String) }]);
    expect(await s.emails()).toHaveLength(1);
    expect(await s.metric('floodgate_sms_total')).toEqual(expect.arrayContaining(['floodgate_sms_total{outcome="rejected"} 1', 'floodgate_sms_total{outcome="sent"} 0']));
    // a later run of the job does not try again
    expect(await notifyProcessor(s.deps)({ id: 'again', data: { bookingId: id, channel: 'sms' } } as unknown as Job)).toEqual({ skipped: 'sms rejected' });
    expect(s.twilio.requests).toHaveLength(1);
  });

  it('a 429 whose Retry-After is longer than the transport waits delays the job by exactly that; nothing is sent meanwhile', async ({ deps, ns, onTestFinished }) => {
    const s = await stage({ deps, ns }, onTestFinished);
    s.twilio.failNext(1, 429, '30');
    const id = await paidWithPhone(s, 'ray', '+4915123456779');
    const job = (await s.sink.queues.notify.getJob(`sms-${id}`))!;
    await waitFor('the SMS job delayed', async () => (await job.getState()) === 'delayed');
    const refusedAt = s.twilio.requests[0]!.at;
    // BullMQ keeps a delayed job in a ZSET scored by (due time × 4096 + a counter)
    const score = Number(await s.bull.zscore(`${s.prefix}:{notify}:delayed`, job.id!));
    const dueAt = Math.floor(score / 0x1000);
    expect(dueAt - refusedAt).toBeGreaterThanOrEqual(30_000);
    expect(dueAt - refusedAt).toBeLessThan(31_000);
    expect(s.twilio.requests.map((r) => r.status)).toEqual([429]);
    expect(s.twilio.messages).toEqual([]);
    expect(await s.e.sms.get(id)).toBeNull();
    await waitFor('tickets delivered by e-mail', async () => (await s.e.bookings.get(id, { userId: 'ray' as UserId }))!.status === 'TICKETS_DELIVERED');
    expect(await deliveries(s.pg, id)).toEqual([{ channel: 'email', status: 'sent', message_id: expect.any(String) }]);
    expect(await s.metric('floodgate_sms_total')).toEqual(expect.arrayContaining(['floodgate_sms_total{outcome="retry"} 1']));
    // when it is due, it sends (promoted here instead of waiting 30 s)
    await job.promote();
    await waitFor('the SMS job completed', async () => (await job.getState()) === 'completed');
    expect(s.twilio.messages).toHaveLength(1);
  });

  it('a worker killed after Twilio accepted: the re-run sends nothing; the delivery receipt records the message and the next run completes with it', async ({ deps, ns, onTestFinished }) => {
    const s = await stage({ deps, ns }, onTestFinished, { start: false });
    const id = await paidWithPhone(s, 'kim', '+4915123456770');
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '..', '..', 'test', 'children', 'sms-and-die.ts')], {
      env: {
        ...process.env, REDIS_URL: TEST_REDIS_URL, DATABASE_URL: TEST_DATABASE_URL, SCHEMA: ns, NS: ns, BULL_PREFIX: s.prefix, OUTBOX_DIR: s.outbox, LOCK_MS: '1000',
        TWILIO_API_URL: s.twilio.url, TWILIO_ACCOUNT_SID: s.twilio.accountSid, TWILIO_AUTH_TOKEN: s.twilio.authToken, TWILIO_STATUS_CALLBACK_URL: CALLBACK,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFinished(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const { signal } = await new Promise<{ signal: NodeJS.Signals | null }>((r) => child.once('exit', (_c, sig) => r({ signal: sig })));
    expect(signal, out).toBe('SIGKILL');
    expect(out).toMatch(/accepted SM[0-9a-f]{32}/);
    expect(s.twilio.messages).toHaveLength(1);
    const sid = s.twilio.messages[0]!.sid;
    expect(await deliveries(s.pg, id)).toEqual([
      { channel: 'email', status: 'sent', message_id: expect.any(String) },
      { channel: 'sms', status: 'sending', message_id: null },
    ]);

    const run = () => notifyProcessor(s.deps)({ id: 'rerun', data: { bookingId: id, channel: 'sms' }, opts: { attempts: 10 }, attemptsMade: 1 } as unknown as Job);
    // the re-run finds the claim: the message may have gone out, so it sends nothing and retries later
    await expect(run()).rejects.toThrow(/claimed by another run/);
    expect(s.twilio.messages).toHaveLength(1);
    // Twilio's receipt names the message and the booking (in the callback URL): recorded, and the next run completes
    expect(await s.twilio.callback(sid, 'sent')).toBe(200);
    expect(await s.e.sms.get(id)).toMatchObject({ messageSid: sid, status: 'sent' });
    expect(await run()).toEqual({ sent: sid, from: 'receipt' });
    expect(await deliveries(s.pg, id)).toEqual([
      { channel: 'email', status: 'sent', message_id: expect.any(String) },
      { channel: 'sms', status: 'sent', message_id: sid },
    ]);
    // even once the claim would count as abandoned, nothing is sent again
    await s.pg.query("UPDATE deliveries SET claimed_at = now() - interval '11 minutes' WHERE booking_id = $1", [id]);
    expect(await run()).toEqual({ skipped: 'already sent' });
    expect(s.twilio.requests.filter((r) => r.status === 201)).toHaveLength(1);
  });
});
