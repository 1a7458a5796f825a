/**
 * `npm run bench -- e2e`: the whole purchase under load. Buyers arrive at a fixed rate (default 50/s for 5 s; the
 * issue's aim is 1,000 bookings/s), each holds 1-4 tickets (POST /api/bookings), types in the card details (1-3 s, --think)
 * and pays with the simulated provider (POST /api/payments, pm_card_visa) -> CONFIRMED -> the notify worker renders the ticket PDF and writes the
 * e-mail into a temporary outbox folder. The workers run in their own process (WORKERS=persist,payment,sweeper) and
 * --notify-processes notify processes (MAIL_PROVIDER=outbox, OUTBOX_DIR=<temp>); the API is one bench/server.ts process; the buyers are bench/crowd.ts.
 * After the arrivals stop, the run waits until every confirmed booking's e-mail is written (or --drain-timeout).
 *
 * Measured: confirmations per second and PDFs per second; "time to book" (client: hold request sent -> payment answered
 * 200), "payment latency" (client: POST /api/payments), "notification delay" (payment answered 200 on the client ->
 * message.json of that booking written in the outbox folder, both on this machine's clock), each p50/p95/p99; and, as a
 * cross-check, the workers' own histograms from their /metrics (METRICS_PORT): floodgate_notification_delay_seconds
 * (confirmed in Postgres -> accepted by the transport) and floodgate_time_to_book_seconds (hold -> confirmed), bucketed.
 * Options: --rate 50 (the issue's aim is 1,000/s; 50/s is what this 2-core machine sustains) --duration 5 --think 1000-3000 (ms; 0 pays at once) --max-in-flight 5000 --sockets 500
 *          --drain-timeout 900 --provider-latency 0 --persist-batch <PERSIST_BATCH_SIZE, default the engine's 500>
 *          --notify-processes 1 (0: notify runs inside the one workers process)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asNamespace, type EventId } from '../../engine/ids.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';
import { listSimulatedPayments } from '../../integrations/payments/simulated.js';
import { benchStack, machineFacts, say, startServer } from '../lib/stack.js';
import { floodgateEventChecks, type Check } from '../lib/checks.js';
import { commandLine, countOutbox, cpuLine, cpuMeter, flags, fmt, histogramQuantile, machineLoad, ms, onInterrupt, pgDeadlocks, progressLine, readOutbox, sleep, startCrowd, startWorkers, stopAll, summarize, type CrowdResult, publish, sampleWhile } from '../lib/common.js';

export async function run(args: string[]): Promise<void> {
  const f = flags(args);
  const rate = f.num('rate', 50);
  const durationSec = f.num('duration', 5);
  const maxInFlight = f.num('max-in-flight', 5000);
  const think = f.str('think', '1000-3000').split('-').map(Number);
  const thinkMs: [number, number] = [think[0] ?? 0, think[1] ?? think[0] ?? 0];
  const sockets = f.num('sockets', 500);
  const drainTimeoutSec = f.num('drain-timeout', 900);
  const providerLatency = f.str('provider-latency', '0');
  const persistBatch = f.str('persist-batch', '');
  const notifyProcesses = f.num('notify-processes', 1);
  const command = commandLine('e2e', args);
  const before = machineLoad();

  const stack = await benchStack();
  const outboxDir = await mkdtemp(join(tmpdir(), 'floodgate-e2e-'));
  const cleanup = async () => {
    await rm(outboxDir, { recursive: true, force: true });
    await stack.cleanup();
  };
  onInterrupt(cleanup);
  const { engine, redis } = stack;
  try {
    say(`stack: schema ${stack.schema}, key namespace ${stack.ns}, outbox folder ${outboxDir}; load average ${before.loadAverage.join(' ')}`);
    const ev = await engine.createEvent({
      name: 'End to end', category: 'bench', venue: 'Bench Arena', startsAt: new Date(Date.now() + 86400_000).toISOString(), maxTicketsPerUser: 4,
      tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity: 10_000_000 }],
    });
    const eventId = ev.id as EventId;
    const env = { ...stack.env, SMS_PROVIDER: 'none', SIMULATED_LATENCY_MS: providerLatency, ...(persistBatch ? { PERSIST_BATCH_SIZE: persistBatch } : {}) };
    const deadlocks0 = await pgDeadlocks(stack.pool);
    const api = await startServer('floodgate', env);
    const mail = { MAIL_PROVIDER: 'outbox', OUTBOX_DIR: outboxDir };
    // ticket PDFs are CPU work: by default they render in a notify process of their own, so they do not hold up the persist worker
    const workers = await startWorkers(notifyProcesses > 0 ? 'persist,payment,sweeper' : 'persist,payment,notify,sweeper', env, mail);
    const notifiers = await Promise.all(Array.from({ length: notifyProcesses }, () => startWorkers('notify', env, mail)));
    const pids = () => ({ api: api.child.pid!, workers: workers.pid, ...Object.fromEntries(notifiers.map((n, i) => [`notify${i + 1}`, n.pid])) });
    let crowd: CrowdResult;
    let cpuRun: Record<string, number>;
    let cpuDrain: Record<string, number>;
    let deliveredAllAfterSec: number | null = null;
    let workersMetrics = '';
    let apiMetrics = '';
    const progress: { t: number; confirmed: number; delivered: number }[] = [];
    try {
      say(`arrivals: ${rate} buyers/s for ${durationSec} s (at most ${maxInFlight} in flight), each holds 1-4 tickets and pays at once (simulated provider, latency ${providerLatency} ms)`);
      const meter = cpuMeter(() => redis.info('cpu'));
      let m = await meter.start(pids());
      const line = progressLine('[bench]');
      const t0 = Date.now();
      let confirmed = 0;
      let last: { perSecond: Record<string, number>; counters: Record<string, number>; inFlight: number } = { perSecond: {}, counters: {}, inFlight: 0 };
      const c = startCrowd(
        { mode: 'e2e', base: `http://127.0.0.1:${api.port}`, secret: stack.jwtSecret, sockets, userPrefix: `e2e-${stack.ns}`, eventId, tierId: ev.tiers[0]!.id, rate, durationSec, maxInFlight, thinkMs },
        (p) => {
          last = p;
          confirmed = Number(p.confirmed ?? 0);
        },
      );
      crowd = await sampleWhile(c.result, 1000, async () => {
        const delivered = await countOutbox(outboxDir);
        const t = Math.round((Date.now() - t0) / 1000);
        progress.push({ t, confirmed, delivered });
        line.update(`t=${t}s confirmed ${fmt(confirmed)} (${last.perSecond.pay ?? 0}/s), e-mails with PDF ${fmt(delivered)}, in flight ${last.inFlight}, dropped arrivals ${last.counters.droppedArrivals ?? 0}`);
      }, line);
      cpuRun = await m.stop();
      const paid = (crowd.confirmed as unknown[]).length;
      say(`arrivals over: ${fmt(paid)} payments answered 200; waiting for every confirmed booking's e-mail (at most ${drainTimeoutSec} s)`);
      m = await meter.start(pids());
      const drainStart = Date.now();
      let quiet = 0;
      for (;;) {
        const delivered = await countOutbox(outboxDir);
        // every booking Postgres has CONFIRMED (a payment the client gave up on may have succeeded) must get its e-mail
        const { rows } = await stack.pool.query<{ confirmed: string; pending: string }>(
          `SELECT count(*) FILTER (WHERE state IN ('CONFIRMED', 'TICKETS_DELIVERED')) AS confirmed, count(*) FILTER (WHERE state = 'PAYMENT_PENDING') AS pending
             FROM bookings WHERE event_id = $1`,
          [eventId],
        );
        const inPg = Number(rows[0]!.confirmed);
        progress.push({ t: Math.round((Date.now() - t0) / 1000), confirmed: inPg, delivered });
        line.update(`e-mails with PDF ${fmt(delivered)} of ${fmt(inPg)} confirmed in Postgres, ${Math.round((Date.now() - drainStart) / 1000)} s after the last arrival`);
        quiet = delivered >= inPg && delivered >= paid && Number(rows[0]!.pending) === 0 ? quiet + 1 : 0;
        if (quiet >= 2) {
          deliveredAllAfterSec = (Date.now() - drainStart) / 1000;
          break;
        }
        if (Date.now() - drainStart > drainTimeoutSec * 1000) break;
        await sleep(1000);
      }
      line.done();
      cpuDrain = await m.stop();
      while ((await engine.outbox.backlog(eventId)).entries > 0) await sleep(200);
      workersMetrics = (await Promise.all([workers, ...notifiers].map((w) => w.metrics()))).join('\n');
      apiMetrics = await (await fetch(`http://127.0.0.1:${api.metricsPort}/metrics`)).text();
    } finally {
      await api.stop();
      await Promise.all([workers.stop(), ...notifiers.map((n) => n.stop())]);
    }

    const deadlocks = (await pgDeadlocks(stack.pool)) - deadlocks0;
    const confirmedList = crowd.confirmed as [string, number, number, number][];
    const messages = await readOutbox(outboxDir);
    const payTimeouts = crowd.statuses.pay?.['0'] ?? 0;
    const confirmedAt = new Map(confirmedList.map(([id, , , at]) => [id, at]));
    const emails = new Map<string, number>();
    for (const msg of messages) emails.set(msg.bookingId, (emails.get(msg.bookingId) ?? 0) + 1);
    const delays = messages.filter((x) => confirmedAt.has(x.bookingId)).map((x) => x.writtenAtMs - confirmedAt.get(x.bookingId)!);
    const delay = summarize(delays);
    const perSec = (times: number[]) => {
      if (!times.length) return { avg: 0, whileBusy: 0, peak: 0, firstToLastSec: 0, busySeconds: 0 };
      const lo = Math.min(...times);
      const hi = Math.max(...times);
      const counts = new Map<number, number>();
      for (const t of times) counts.set(Math.floor((t - lo) / 1000), (counts.get(Math.floor((t - lo) / 1000)) ?? 0) + 1);
      const span = Math.max(1, (hi - lo) / 1000);
      // seconds in which at least one happened: the rate while there was work (a straggler does not dilute it)
      return { avg: times.length / span, whileBusy: times.length / counts.size, peak: Math.max(...counts.values()), firstToLastSec: span, busySeconds: counts.size };
    };
    const confirmations = perSec(confirmedList.map((x) => x[3]));
    const pdfs = perSec(messages.map((x) => x.writtenAtMs));
    const missing = confirmedList.filter(([id]) => !emails.has(id)).length;
    const acknowledged = Number(crowd.ticketsAcknowledged ?? 0);
    const charges = await listSimulatedPayments(redis, simulatedPaymentKeys(asNamespace(stack.ns)));
    const store = await floodgateEventChecks(engine, 'e2e', eventId, {
      acknowledgedTickets: acknowledged, sentTicketsMax: acknowledged + 4 * (crowd.counters.holdErrors ?? 0), capacity: 10_000_000, charges, emailsPerBooking: emails,
    });
    const { rows } = await stack.pool.query<{ state: string; n: string }>('SELECT state, count(*) AS n FROM bookings WHERE event_id = $1 GROUP BY state', [eventId]);
    const states = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    const badPdfs = messages.filter((x) => !x.pdfOk).length;
    const checks: Check[] = [
      ...store.checks,
      {
        name: 'e2e: every confirmed booking is CONFIRMED or TICKETS_DELIVERED in Postgres (none lost)',
        ok: (states.CONFIRMED ?? 0) + (states.TICKETS_DELIVERED ?? 0) >= confirmedList.length,
        detail: `client saw ${confirmedList.length} confirmations; Postgres: ${JSON.stringify(states)}`,
      },
      { name: 'e2e: every ticket e-mail carries a PDF', ok: badPdfs === 0, detail: `${messages.length} messages, ${badPdfs} without a valid PDF` },
      { name: 'e2e: at most one e-mail per booking', ok: [...emails.values()].every((n) => n === 1), detail: `${messages.length} messages for ${emails.size} bookings` },
    ];
    const notif = histogramQuantile(workersMetrics, 'floodgate_notification_delay_seconds', 0.95);
    const ttb = histogramQuantile(workersMetrics, 'floodgate_time_to_book_seconds', 0.95);
    const payHist = histogramQuantile(apiMetrics, 'floodgate_payment_duration_seconds', 0.95);
    const facts = await machineFacts(stack.redis, stack.pool);
    const keepsUp = deliveredAllAfterSec !== null && pdfs.whileBusy >= confirmations.whileBusy * 0.95;
    const result = {
      scenario: 'e2e', command, date: new Date().toISOString(), machine: facts, machineBefore: before, machineAfter: machineLoad(),
      settings: { rate, durationSec, maxInFlight, sockets, drainTimeoutSec, providerLatencyMs: providerLatency, thinkMs },
      paymentTimeouts: payTimeouts, postgresDeadlocks: deadlocks, persistBatchSize: persistBatch || 'default (500)',
      confirmed: confirmedList.length, ticketsAcknowledged: acknowledged, emailsWritten: messages.length, emailsMissing: missing, deliveredAllAfterSec,
      confirmationsPerSecond: confirmations, pdfsPerSecond: pdfs, keepsUp,
      clientSide: { payWithRetriesMs: crowd.payWithRetriesMs, timeToBookMs: crowd.timeToBookMs, timeToBookWithoutThinkMs: crowd.serverTimeToBookMs, paymentLatencyMs: crowd.latencyMs.pay, holdLatencyMs: crowd.latencyMs.hold, notificationDelayMs: delay },
      workersMetrics: {
        notificationDelaySecondsP95AtMost: notif.le, notificationDelayMeanSec: notif.count ? notif.sum / notif.count : 0, notifications: notif.count,
        timeToBookSecondsP95AtMost: ttb.le, timeToBookMeanSec: ttb.count ? ttb.sum / ttb.count : 0,
        apiPaymentDurationSecondsP95AtMost: payHist.le,
      },
      statuses: crowd.statuses, counters: crowd.counters, bookingsByState: states,
      cpuPercentOfOneCore: { arrivals: { ...cpuRun!, crowd: Math.round((Number(crowd.cpuSeconds) / crowd.durationSec) * 100) }, drain: cpuDrain! },
      progress, checks, ok: checks.every((c) => c.ok),
    };
    const s = (x: { p50: number; p95: number; p99: number } | undefined) => (x ? `${ms(x.p50)} / **${ms(x.p95)}** / ${ms(x.p99)}` : '-');
    const sec = (x: { p50: number; p95: number; p99: number }) => `${fmt(x.p50 / 1000, 2)} / **${fmt(x.p95 / 1000, 2)}** / ${fmt(x.p99 / 1000, 2)}`;
    const md = [
      `# End to end: hold -> pay -> confirmed -> e-mail with the ticket PDF, ${result.date.slice(0, 10)}`,
      '',
      `Command: \`${command}\``,
      '',
      `Machine: ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Node ${facts.node}, Redis ${facts.redis}, PostgreSQL ${facts.postgres}. ` +
        `Load average (1/5/15 min) before the run: ${before.loadAverage.join(' / ')}, after: ${machineLoad().loadAverage.join(' / ')}; other users' node processes (tests, simulations) ` +
        `running at the start: ${before.otherNodeProcesses.length}, at the end: ${machineLoad().otherNodeProcesses.length}.`,
      (notifyProcesses > 0
        ? `Processes: one API (bench/server.ts), one workers process (workers/main.ts, WORKERS=persist,payment,sweeper) and ${notifyProcesses} notify process(es) ` +
          '(WORKERS=notify, MAIL_PROVIDER=outbox into a temporary folder; NOTIFY_CONCURRENCY jobs at a time each, 32 per render thread by default), the buyers'
        : 'Processes: one API (bench/server.ts), one workers process (workers/main.ts, WORKERS=persist,payment,notify,sweeper, MAIL_PROVIDER=outbox into a temporary folder; ' +
          'the notify worker runs 8 jobs at a time), the buyers') +
        ` (bench/crowd.ts, ${sockets} keep-alive connections), Redis, Postgres.`,
      '',
      `Offered load: ${rate} buyers/s for ${durationSec} s (open loop, at most ${maxInFlight} in flight; ${fmt(crowd.counters.droppedArrivals ?? 0)} arrivals dropped because ` +
        `${maxInFlight} were already in flight). Each holds 1-4 tickets, ` +
        (thinkMs[1] > 0 ? `types in the card details for ${thinkMs[0] / 1000}-${thinkMs[1] / 1000} s, ` : '') +
        `and pays (simulated provider, ${providerLatency} ms latency, pm_card_visa). Requests time out on the client after 10 s; ` +
        'a 503 or a timeout is retried after 1-2 s with the same Idempotency-Key (at most 5 tries), as the API asks.',
      '',
      '| figure | value |',
      '|---|---|',
      `| bookings confirmed (payment 200) | ${fmt(confirmedList.length)} (${fmt(acknowledged)} tickets held) |`,
      `| confirmations per second | **${fmt(confirmations.whileBusy, 1)}** per busy second (${confirmations.busySeconds} s with confirmations; ${fmt(confirmations.avg, 1)}/s from the first to the last), peak ${fmt(confirmations.peak)} in one second |`,
      `| PDFs (e-mails with the ticket PDF) per second | **${fmt(pdfs.whileBusy, 1)}** per busy second (${pdfs.busySeconds} s with e-mails; ${fmt(pdfs.avg, 1)}/s from the first to the last), peak ${fmt(pdfs.peak)} in one second |`,
      `| every e-mail written | ${deliveredAllAfterSec === null ? `**no**: ${fmt(missing)} still missing after ${drainTimeoutSec} s` : `${fmt(deliveredAllAfterSec, 1)} s after the last arrival`} |`,
      `| delivery keeps up with confirmations | **${keepsUp ? 'yes' : 'no'}** (PDFs/s ${fmt(pdfs.whileBusy, 1)} vs confirmations/s ${fmt(confirmations.whileBusy, 1)}) |`,
      `| time to book, p50 / p95 / p99 ms (client: hold sent -> payment 200, typing included) | ${s(crowd.timeToBookMs as never)} |`,
      `| time to book without the typing, p50 / p95 / p99 ms (hold latency + payment latency) | ${s(crowd.serverTimeToBookMs as never)} |`,
      `| payment latency, p50 / p95 / p99 ms (client: one POST /api/payments) | ${s(crowd.latencyMs.pay)} (${fmt(payTimeouts)} timed out on the client, ${fmt(crowd.statuses.pay?.['503'] ?? 0)} answered 503) |`,
      `| payment until answered 200, retries included, p50 / p95 / p99 ms | ${s(crowd.payWithRetriesMs as never)} (${fmt(crowd.counters['retries:pay'] ?? 0)} retries after a 503 or a timeout, same Idempotency-Key, at most 5 tries) |`,
      `| hold latency, p50 / p95 / p99 ms (client: POST /api/bookings) | ${s(crowd.latencyMs.hold)} |`,
      `| notification delay, p50 / p95 / p99 s (client's payment 200 -> message.json written) | ${sec(delay)} |`,
      `| workers' /metrics: notification delay p95 (bucket) | <= ${notif.le} s (mean ${fmt(notif.count ? notif.sum / notif.count : 0, 2)} s, ${fmt(notif.count)} e-mails) |`,
      `| workers' /metrics: time to book p95 (bucket; hold -> confirmed) | <= ${ttb.le} s (mean ${fmt(ttb.count ? ttb.sum / ttb.count : 0, 2)} s) |`,
      `| API /metrics: payment duration p95 (bucket) | <= ${payHist.le} s |`,
      '',
      `The issue's aim: delivery keeps up with confirmations at 1,000 bookings/s, notification delay p95 under 2 s. Measured: ${fmt(confirmations.whileBusy, 1)} confirmations/s, ` +
        `${fmt(pdfs.whileBusy, 1)} PDFs/s, notification delay p95 ${fmt(delay.p95 / 1000, 1)} s.`,
      '',
      `Postgres deadlocks detected during the run (pg_stat_database, database floodgate_bench): **${deadlocks}** (each one stalls the transactions involved ` +
        'for deadlock_timeout, 1 s by default, before one is aborted and retried). PERSIST_BATCH_SIZE: ' + (persistBatch || 'the default (500)') + '.',
      '',
      `CPU, percent of one core, during the arrivals: ${cpuLine(result.cpuPercentOfOneCore.arrivals)}; while the e-mails were catching up: ${cpuLine(cpuDrain!)}.`,
      `Statuses: ${JSON.stringify(crowd.statuses)}. Bookings by state at the end: ${JSON.stringify(states)}.`,
      `Error answers by request, status and problem type (every attempt, retries included): ${
        Object.entries(crowd.counters).filter(([k]) => k.startsWith('problem:')).map(([k, n]) => `${k.slice(8)} ${fmt(n)}`).join(', ') || 'none'
      }; retries: ${Object.entries(crowd.counters).filter(([k]) => k.startsWith('retries:')).map(([k, n]) => `${k.slice(8)} ${fmt(n)}`).join(', ') || 'none'}.`,
    ].join('\n');
    await publish('e2e', result, md, checks, { heading: 'Correctness (after the drain; checkInvariants with the simulated provider\'s charges and the e-mails per booking)' });
  } finally {
    await stopAll();
    await cleanup();
  }
}
