/**
 * `npm run bench -- soak`: a constant, moderate arrival rate for a while (default 200 visitors/s for 60 s; `--duration`
 * makes it longer), each visitor doing one thing as in k6's soak.js: 35 % list the catalog, 25 % read the event, 40 % book
 * 1-4 tickets, read the booking back and cancel half of them (the other half expire: HOLD_TTL_MS is short here, so the
 * sweeper is busy during the run). Reports p95 per 10-s window (latency stability), the API process's resident memory
 * every second, and the invariants at the end (after the persist worker drained the outbox).
 * Processes: one API (bench/server.ts), the workers (WORKERS=persist,sweeper), the crowd (bench/crowd.ts).
 * Options: --duration 60 --rate 200 --users 500 --capacity 50000 --hold-ttl 20 (seconds) --window 10
 */
import type { EventId } from '../../engine/ids.js';
import { benchStack, machineFacts, say, startServer } from '../lib/stack.js';
import { floodgateEventChecks, type Check } from '../lib/checks.js';
import { commandLine, cpuLine, cpuMeter, flags, fmt, machineLoad, ms, onInterrupt, pgDeadlocks, procRssMiB, progressLine, startCrowd, startWorkers, stopAll, type CrowdResult, publish, waitForOutbox, sampleWhile } from '../lib/common.js';

type Window = { from: number; requests: number; p50: number; p95: number; byKind: Record<string, { n: number; p95: number }> };

export async function run(args: string[]): Promise<void> {
  const f = flags(args);
  const durationSec = f.num('duration', 60);
  const rate = f.num('rate', 200);
  const users = f.num('users', 500);
  const capacity = f.num('capacity', 50_000);
  const holdTtlSec = f.num('hold-ttl', 20);
  const command = commandLine('soak', args);
  const before = machineLoad();

  const stack = await benchStack();
  onInterrupt(() => stack.cleanup());
  const { engine, redis } = stack;
  try {
    say(`stack: schema ${stack.schema}, key namespace ${stack.ns}; load average ${before.loadAverage.join(' ')}`);
    const ev = await engine.createEvent({
      name: 'Soak', category: 'bench', venue: 'Bench', startsAt: new Date(Date.now() + 86400_000).toISOString(), maxTicketsPerUser: 100,
      tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity }],
    });
    const eventId = ev.id as EventId;
    const env = { ...stack.env, HOLD_TTL_MS: String(holdTtlSec * 1000), SWEEP_INTERVAL_MS: '2000' };
    const deadlocks0 = await pgDeadlocks(stack.pool);
    const api = await startServer('floodgate', env);
    const workers = await startWorkers('persist,sweeper', env);
    const memory: { t: number; apiRssMiB: number; workersRssMiB: number }[] = [];
    let crowd: CrowdResult;
    let cpu: Record<string, number>;
    try {
      say(`soak: ${rate} visitors/s for ${durationSec} s (35 % catalog, 25 % event, 40 % book -> read -> cancel half), holds expire after ${holdTtlSec} s`);
      const meter = cpuMeter(() => redis.info('cpu'));
      const m = await meter.start({ api: api.child.pid!, workers: workers.pid });
      const line = progressLine('[bench]');
      const t0 = Date.now();
      let last: { perSecond: Record<string, number>; counters: Record<string, number> } = { perSecond: {}, counters: {} };
      const c = startCrowd(
        { mode: 'soak', base: `http://127.0.0.1:${api.port}`, secret: stack.jwtSecret, sockets: 200, userPrefix: `soak-${stack.ns}`, eventId, tierId: ev.tiers[0]!.id, rate, durationSec, users },
        (p) => (last = p),
      );
      crowd = await sampleWhile(c.result, 1000, async () => {
        const t = Math.round((Date.now() - t0) / 1000);
        const sample = { t, apiRssMiB: Math.round(procRssMiB(api.child.pid!) * 10) / 10, workersRssMiB: Math.round(procRssMiB(workers.pid) * 10) / 10 };
        memory.push(sample);
        const reqs = Object.values(last.perSecond).reduce((a, b) => a + b, 0);
        line.update(`t=${t}s/${durationSec}s ${reqs} req/s, API RSS ${sample.apiRssMiB} MiB, workers RSS ${sample.workersRssMiB} MiB, unexpected answers ${last.counters.unexpected ?? 0}`);
      }, line);
      cpu = await m.stop();
      say('waiting for the persist worker to drain the outbox');
      await waitForOutbox(engine, [eventId]);
    } finally {
      await api.stop();
      await workers.stop();
    }

    const deadlocks = (await pgDeadlocks(stack.pool)) - deadlocks0;
    const acknowledged = Number(crowd.ticketsAcknowledged ?? 0);
    const store = await floodgateEventChecks(engine, 'soak', eventId, { acknowledgedTickets: null, sentTicketsMax: acknowledged, capacity });
    // held + sold now <= everything acknowledged (cancelled and expired tickets are back in stock)
    const { rows } = await stack.pool.query<{ state: string; n: string }>('SELECT state, count(*) AS n FROM bookings WHERE event_id = $1 GROUP BY state', [eventId]);
    const states = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    const windows = crowd.windows as Window[];
    const full = windows.filter((w) => w.from + 10 <= durationSec);
    const p95s = full.map((w) => w.p95).sort((a, b) => a - b);
    const medianP95 = p95s[Math.floor(p95s.length / 2)] ?? 0;
    const worstP95 = p95s.at(-1) ?? 0;
    const warm = memory.filter((x) => x.t >= Math.min(10, durationSec / 3));
    const rssGrowthPerMin = warm.length > 1 ? ((warm.at(-1)!.apiRssMiB - warm[0]!.apiRssMiB) / (warm.at(-1)!.t - warm[0]!.t)) * 60 : 0;
    const unexpected = crowd.counters.unexpected ?? 0;
    const allRequests = Object.values(crowd.latencyMs).reduce((n, l) => n + l.n, 0);
    const serverErrors = Object.values(crowd.statuses).reduce((n, st) => n + Object.entries(st).filter(([s]) => s === '0' || s.startsWith('5')).reduce((a, [, c]) => a + c, 0), 0);
    const checks: Check[] = [
      ...store.checks,
      {
        name: 'soak: tickets in the store never exceed what was acknowledged (cancelled and expired ones went back)',
        ok: Object.values(store.redis).reduce((n, t) => n + t.held + t.sold, 0) <= acknowledged,
        detail: `held + sold ${Object.values(store.redis).reduce((n, t) => n + t.held + t.sold, 0)} <= acknowledged ${acknowledged}; bookings by state ${JSON.stringify(states)}`,
      },
    ];
    const facts = await machineFacts(stack.redis, stack.pool);
    const result = {
      scenario: 'soak', command, date: new Date().toISOString(), machine: facts, machineBefore: before, machineAfter: machineLoad(),
      settings: { durationSec, rate, users, capacity, holdTtlSec },
      latencyMs: crowd.latencyMs, statuses: crowd.statuses, windows, stability: { medianWindowP95: medianP95, worstWindowP95: worstP95, ratio: medianP95 ? worstP95 / medianP95 : 0 },
      memory, rssGrowthMiBPerMinute: rssGrowthPerMin, requests: allRequests, unexpectedAnswers: unexpected, serverErrorsAndTimeouts: serverErrors,
      counters: crowd.counters, bookingsByState: states, ticketsAcknowledged: acknowledged, ticketsCancelled: crowd.ticketsCancelled,
      cpuPercentOfOneCore: { ...cpu!, crowd: Math.round((Number(crowd.cpuSeconds) / crowd.durationSec) * 100) },
      stores: { redis: store.redis, postgres: store.postgres }, invariants: store.invariants, checks, ok: checks.every((c) => c.ok),
    };
    const kinds: [string, string][] = [['events_list', 'GET /api/events?status=on_sale'], ['event_detail', 'GET /api/events/:id'], ['booking', 'POST /api/bookings'],
      ['booking_get', 'GET /api/bookings/:id'], ['booking_cancel', 'DELETE /api/bookings/:id']];
    const memAt = (t: number) => memory.reduce((best, x) => (Math.abs(x.t - t) < Math.abs(best.t - t) ? x : best), memory[0]!);
    const md = [
      `# Soak, ${result.date.slice(0, 10)}`,
      '',
      `Command: \`${command}\``,
      '',
      `Machine: ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Node ${facts.node}, Redis ${facts.redis}, PostgreSQL ${facts.postgres}. ` +
        `Load average (1/5/15 min) before the run: ${before.loadAverage.join(' / ')}, after: ${machineLoad().loadAverage.join(' / ')}; other users' node processes (tests, simulations) ` +
        `running at the start: ${before.otherNodeProcesses.length}, at the end: ${machineLoad().otherNodeProcesses.length}.`,
      `Processes: one API (bench/server.ts), the workers (WORKERS=persist,sweeper, HOLD_TTL_MS=${holdTtlSec * 1000}), the crowd (bench/crowd.ts), Redis, Postgres.`,
      '',
      `Load: ${rate} visitors/s (open loop) for ${durationSec} s: 35 % list the catalog, 25 % read the event, 40 % book 1-4 tickets (one of ${users} buyers), ` +
        `read the booking back after 0.2-0.8 s and cancel half of them after another 0.2-0.8 s; the other half expire after ${holdTtlSec} s (the sweeper).`,
      '',
      '| request | count | p50 ms | p95 ms | p99 ms | max ms | statuses |',
      '|---|---|---|---|---|---|---|',
      ...kinds.map(([k, name]) => {
        const l = crowd.latencyMs[k];
        return l ? `| ${name} | ${fmt(l.n)} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.max)} | ${JSON.stringify(crowd.statuses[k] ?? {})} |` : `| ${name} | 0 | | | | | |`;
      }),
      '',
      'Per 10-s window: requests finished, p50 and p95 of every request, the slowest kind\'s p95, and the API\'s resident memory at the end of the window.',
      '',
      '| window | requests | p50 ms | p95 ms | slowest kind (p95 ms) | API RSS MiB |',
      '|---|---|---|---|---|---|',
      ...full.map((w) => {
        const [kind, worst] = Object.entries(w.byKind).sort((a, b) => b[1].p95 - a[1].p95)[0] ?? ['-', { p95: 0 }];
        return `| ${w.from}-${w.from + 10} s | ${fmt(w.requests)} | ${ms(w.p50)} | ${ms(w.p95)} | ${kind} (${ms(worst.p95)}) | ${memAt(w.from + 10)?.apiRssMiB ?? '-'} |`;
      }),
      '',
      `**Latency stability: worst window p95 ${ms(worstP95)} ms vs median window p95 ${ms(medianP95)} ms (${(medianP95 ? worstP95 / medianP95 : 0).toFixed(2)}x).**`,
      '',
      `API resident memory (RSS): ${memory.length ? `${memAt(0).apiRssMiB} MiB at the start, ${memAt(10).apiRssMiB} MiB at 10 s, ${Math.max(...memory.map((x) => x.apiRssMiB))} MiB at most, ` +
        `${memory.at(-1)!.apiRssMiB} MiB at the end` : 'not sampled'}; **growth after the first 10 s: ${rssGrowthPerMin.toFixed(1)} MiB/min**. Workers RSS at the end: ${memory.at(-1)?.workersRssMiB ?? 0} MiB.`,
      '',
      `Bookings by state at the end: ${JSON.stringify(states)}. Unexpected answers (anything but the documented success, 409 or 422): ${unexpected} of ${fmt(allRequests)} requests; ` +
        `5xx and timeouts: ${serverErrors}. Postgres deadlocks during the run: ${deadlocks}. CPU, percent of one core: ${cpuLine(result.cpuPercentOfOneCore)}.`,
    ].join('\n');
    await publish('soak', result, md, checks, { heading: 'Correctness (after the drain)' });
  } finally {
    await stopAll();
    await stack.cleanup();
  }
}
