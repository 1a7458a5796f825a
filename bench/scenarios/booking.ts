/**
 * `npm run bench -- booking`: the seed's scenario, 1,000 connections booking the same event, side by side in one run
 * on the same server layout (one API process, plus the workers process where the design needs one):
 *   1. the framework ceiling: bench/server.ts hello (a bare Hono route, same body and headers);
 *   2. the seed's design: bench/server.ts pg-lock (SELECT ... FOR UPDATE on the tier row, booking written in the
 *      same transaction; bench/lib/pg-lock.ts);
 *   3. Floodgate's hot path: one Lua call, the persist worker draining the outbox into Postgres *during* the run.
 * Load shape: the k6 script's stages (0 -> 1,000 connections in 10 s, 10 s at 1,000, back to 0 in 10 s) by autocannon
 * instances started and stopped in steps of 100 (see bench/load.ts); no think time (each connection sends its next
 * request when the previous one is answered). Every request asks for 1-4 tickets with its own Idempotency-Key, the
 * buyers' tokens taken in turn. Event with ample stock (10,000,000) for throughput; then a short scarce phase (1,000
 * tickets, fixed 1,000 connections) for pg-lock and Floodgate: sold-out handling and 0 oversell under contention.
 * Options: --connections 1000 --up 10 --hold 10 --down 10 --steps 10 (or --fixed --duration 30) --scarce 1000
 *          --scarce-duration 10 --users 30000 --ample 10000000 --api-processes 1.
 * --api-processes N: every server (ceiling, pg-lock, Floodgate) runs as N processes on one port behind a cluster
 * primary, as api/main.ts does with API_PROCESSES=N (platform/cluster.ts); the API's CPU is that of all of them,
 * the primary included. Default 1: one process, the layout of every earlier run. Run it with 1 and with N to compare;
 * an N-process run writes bench/results/booking-api<N>-<date>.{json,md}, beside the one-process booking-<date>.*.
 */
import type { EventId } from '../../engine/ids.js';
import { benchStack, machineFacts, runLoad, say, startServer, type LoadResult } from '../lib/stack.js';
import { floodgateEventChecks, pgLockEventChecks, type Check } from '../lib/checks.js';
import { commandLine, cpuLine, cpuMeter, flags, fmt, machineLoad, ms, onInterrupt, signToken, startWorkers, stopAll, publish, waitForOutbox } from '../lib/common.js';

export async function run(args: string[]): Promise<void> {
  const f = flags(args);
  const connections = f.num('connections', 1000);
  const fixed = f.has('fixed');
  const ramp = fixed ? undefined : { upSec: f.num('up', 10), holdSec: f.num('hold', 10), downSec: f.num('down', 10), steps: f.num('steps', 10) };
  const durationSec = fixed ? f.num('duration', 30) : ramp!.upSec + ramp!.holdSec + ramp!.downSec;
  const scarce = f.num('scarce', 1000);
  const scarceSec = f.num('scarce-duration', 10);
  const users = f.num('users', 30_000);
  const ample = f.num('ample', 10_000_000);
  const apiProcesses = f.num('api-processes', 1);
  if (!Number.isInteger(apiProcesses) || apiProcesses < 1) throw new Error(`--api-processes must be a whole number from 1, got ${apiProcesses}`);
  const layout = apiProcesses === 1 ? 'one API process' : `${apiProcesses} API processes on one port behind a cluster primary (as API_PROCESSES=${apiProcesses})`;
  const command = commandLine('booking', args);
  const before = machineLoad();

  const stack = await benchStack();
  onInterrupt(() => stack.cleanup());
  const { engine } = stack;
  try {
    say(`stack: database floodgate_bench, schema ${stack.schema}, key namespace ${stack.ns}; load average ${before.loadAverage.join(' ')}; ${layout} per server`);
    if (before.otherNodeProcesses.length) say(`other node processes running: ${before.otherNodeProcesses.length} (recorded in the results)`);
    const startsAt = new Date(Date.now() + 86400_000).toISOString();
    const mk = (name: string, capacity: number, maxTicketsPerUser: number) =>
      engine.createEvent({ name, category: 'bench', venue: 'Bench', startsAt, maxTicketsPerUser, tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity }] });
    const pgAmple = await mk('pg-lock ample', ample, 100);
    const fgAmple = await mk('Floodgate ample', ample, 100);
    const pgScarce = await mk('pg-lock scarce', scarce, 4);
    const fgScarce = await mk('Floodgate scarce', scarce, 4);
    const tokens = Array.from({ length: users }, (_, i) => signToken(stack.jwtSecret, `bk-${i}`));
    const bodies = (eventId: string, tierId: string) =>
      Array.from({ length: 4096 }, () => {
        const tickets = 1 + Math.floor(Math.random() * 4);
        return { body: JSON.stringify({ eventId, tierId, ticketCount: tickets }), tickets };
      });
    const meter = cpuMeter(() => stack.redis.info('cpu'));
    const load = (title: string, port: number, path: string, b: { body: string; tickets: number }[], o: { ramp?: typeof ramp; sec: number }) =>
      runLoad({
        title, url: `http://127.0.0.1:${port}${path}`, method: 'POST', bodies: b, tokens, connections, durationSec: o.sec,
        idempotencyPrefix: `${title}-${stack.ns}`, ...(o.ramp ? { ramp: o.ramp } : {}),
      });
    const shape = ramp ? `ramp 0 -> ${connections} connections in ${ramp.upSec} s, ${ramp.holdSec} s at ${connections}, -> 0 in ${ramp.downSec} s (${ramp.steps} steps)` : `fixed ${connections} connections for ${durationSec} s`;

    // 1. the framework ceiling
    say(`1/3 framework ceiling: bench/server.ts hello (${shape})`);
    const hello = await startServer('hello', stack.env, { processes: apiProcesses });
    let m = await meter.start({ api: hello.pids });
    let ceiling: LoadResult;
    let ceilingCpu: Record<string, number>;
    try {
      ceiling = await load('hello', hello.port, '/hello', bodies(fgAmple.id, fgAmple.tiers[0]!.id), { ramp, sec: durationSec });
      ceilingCpu = await m.stop();
    } finally {
      await hello.stop();
    }

    // 2. pg-lock: the seed's design, same layout (API process + workers process)
    say(`2/3 the seed's design: bench/server.ts pg-lock, POST /api/bookings (${shape})`);
    const pgApi = await startServer('pg-lock', stack.env, { processes: apiProcesses });
    const pgWorkers = await startWorkers('persist', stack.env);
    let pgLock: LoadResult;
    let pgLockScarce: LoadResult;
    let pgCpu: Record<string, number>;
    try {
      m = await meter.start({ api: pgApi.pids, workers: pgWorkers.pid });
      pgLock = await load('pg-lock', pgApi.port, '/api/bookings', bodies(pgAmple.id, pgAmple.tiers[0]!.id), { ramp, sec: durationSec });
      pgCpu = await m.stop();
      say(`   scarce phase: ${fmt(scarce)} tickets, fixed ${connections} connections for ${scarceSec} s`);
      pgLockScarce = await load('pg-lock-scarce', pgApi.port, '/api/bookings', bodies(pgScarce.id, pgScarce.tiers[0]!.id), { sec: scarceSec });
    } finally {
      await pgApi.stop();
      await pgWorkers.stop();
    }

    // 3. Floodgate, with the persist worker draining the outbox during the run
    say(`3/3 Floodgate: POST /api/bookings, persist worker running (${shape})`);
    const api = await startServer('floodgate', stack.env, { processes: apiProcesses });
    const workers = await startWorkers('persist', stack.env);
    let fg: LoadResult;
    let fgScarceRun: LoadResult;
    let fgCpu: Record<string, number>;
    let drainSec: number;
    try {
      m = await meter.start({ api: api.pids, workers: workers.pid });
      fg = await load('floodgate', api.port, '/api/bookings', bodies(fgAmple.id, fgAmple.tiers[0]!.id), { ramp, sec: durationSec });
      fgCpu = await m.stop();
      say(`   scarce phase: ${fmt(scarce)} tickets, fixed ${connections} connections for ${scarceSec} s`);
      fgScarceRun = await load('floodgate-scarce', api.port, '/api/bookings', bodies(fgScarce.id, fgScarce.tiers[0]!.id), { sec: scarceSec });
      say('   waiting for the persist worker to drain the outbox');
      drainSec = await waitForOutbox(engine, [fgAmple.id as EventId, fgScarce.id as EventId], {
        timeoutMs: 300_000,
        progress: (backlog) => process.stderr.write(`\r\x1b[K   outbox backlog: ${backlog}`),
      });
      process.stderr.write('\n');
    } finally {
      await api.stop();
      await workers.stop();
    }

    say('checking');
    const cap = (r: LoadResult) => ({ acknowledgedTickets: r.ticketsAcknowledged ?? 0, sentTicketsMax: r.ticketsSent ?? 0 });
    const pgA = await pgLockEventChecks(engine, stack.pool, 'pg-lock, ample', pgAmple.id as EventId, { ...cap(pgLock), capacity: ample });
    const pgS = await pgLockEventChecks(engine, stack.pool, 'pg-lock, scarce', pgScarce.id as EventId, { ...cap(pgLockScarce), capacity: scarce });
    const fgA = await floodgateEventChecks(engine, 'Floodgate, ample', fgAmple.id as EventId, { ...cap(fg), capacity: ample });
    const fgS = await floodgateEventChecks(engine, 'Floodgate, scarce', fgScarce.id as EventId, { ...cap(fgScarceRun), capacity: scarce });
    const checks: Check[] = [...pgA.checks, ...pgS.checks, ...fgA.checks, ...fgS.checks];

    const facts = await machineFacts(stack.redis, stack.pool);
    const classify = (r: LoadResult) => {
      const st = r.statuses;
      const sum = (p: (s: number) => boolean) => Object.entries(st).filter(([s]) => p(Number(s))).reduce((n, [, c]) => n + c, 0);
      const s5xx = sum((s) => s >= 500);
      const attempts = r.requests + r.errors;
      return {
        created: st['201'] ?? 0, soldOut: st['409'] ?? 0, other4xx: sum((s) => s >= 400 && s < 500 && s !== 409), s5xx,
        transportErrors: r.errors, timeouts: r.timeouts, errorRate: attempts ? (s5xx + r.errors) / attempts : 0,
      };
    };
    const rows = { ceiling, pgLock, floodgate: fg };
    const ratio = { floodgateToBaseline: (fg.plateauRps ?? fg.throughputRps) / (pgLock.plateauRps ?? pgLock.throughputRps), floodgateToCeiling: (fg.plateauRps ?? fg.throughputRps) / (ceiling.plateauRps ?? ceiling.throughputRps) };
    const ratioWhole = { floodgateToBaseline: fg.throughputRps / pgLock.throughputRps, floodgateToCeiling: fg.throughputRps / ceiling.throughputRps };
    const scarceFig = (r: LoadResult, redisOrPg: { held: number; sold: number; free: number }) => ({
      ...classify(r), ticketsAcknowledged: r.ticketsAcknowledged ?? 0, left: redisOrPg.free, firstSoldOutAtSec: r.timeline?.find((x) => x.soldOut > 0)?.t ?? null,
    });
    const pgScarceState = pgS.state[0]!;
    const fgScarceState = Object.values(fgS.redis)[0]!;
    const result = {
      scenario: 'booking', command, date: new Date().toISOString(), machine: facts, machineBefore: before, machineAfter: machineLoad(),
      shape, connections, durationSec, users, ampleStock: ample, scarceStock: scarce, scarceSec, apiProcesses,
      throughput: Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, { plateauRps: r.plateauRps, wholeRunRps: r.throughputRps, latencyMs: r.latencyMs, ...classify(r) }])),
      ratios: { plateau: ratio, wholeRun: ratioWhole },
      cpuPercentOfOneCore: { ceiling: { ...ceilingCpu, loadGenerator: pct1(ceiling) }, pgLock: { ...pgCpu, loadGenerator: pct1(pgLock) }, floodgate: { ...fgCpu, loadGenerator: pct1(fg) } },
      drainSec,
      scarce: {
        pgLock: scarceFig(pgLockScarce, { held: pgScarceState.reserved, sold: pgScarceState.sold, free: pgScarceState.capacity - pgScarceState.reserved - pgScarceState.sold }),
        floodgate: scarceFig(fgScarceRun, fgScarceState),
      },
      stores: { pgLockAmple: pgA.state, pgLockScarce: pgS.state, floodgateAmple: { redis: fgA.redis, postgres: fgA.postgres }, floodgateScarce: { redis: fgS.redis, postgres: fgS.postgres } },
      checks,
      ok: checks.every((c) => c.ok),
      raw: { ceiling, pgLock, floodgate: fg, pgLockScarce, floodgateScarce: fgScarceRun },
    };

    const line = (name: string, r: LoadResult) => {
      const c = classify(r);
      return `| ${name} | **${fmt(r.plateauRps ?? 0)}** | ${fmt(r.throughputRps)} | ${ms(r.latencyMs.p50)} | ${ms(r.latencyMs.p95)} | ${ms(r.latencyMs.p99)} | ${fmt(c.created)} | ${fmt(c.soldOut)} | ${fmt(c.other4xx)} | ${fmt(c.s5xx)} | ${fmt(c.transportErrors)} | ${(c.errorRate * 100).toFixed(2)} % |`;
    };
    const sline = (name: string, r: LoadResult, s: ReturnType<typeof scarceFig>) =>
      `| ${name} | ${fmt(r.throughputRps)} | ${ms(r.latencyMs.p95)} | ${fmt(s.created)} | ${fmt(s.ticketsAcknowledged)} | ${fmt(s.soldOut)} | ${s.firstSoldOutAtSec ?? '-'} s | ${fmt(s.left)} | ${fmt(s.s5xx + s.transportErrors)} | ${ms(r.latencyByStatus?.['409']?.p95 ?? 0)} |`;
    const md = [
      `# Booking benchmark: framework ceiling vs the seed's pg-lock design vs Floodgate, ${result.date.slice(0, 10)}${apiProcesses === 1 ? '' : `, ${apiProcesses} API processes`}`,
      '',
      `Command: \`${command}\``,
      '',
      `Machine: ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Node ${facts.node}, Redis ${facts.redis}, PostgreSQL ${facts.postgres}. ` +
        `Load average (1/5/15 min) before the run: ${before.loadAverage.join(' / ')}, after: ${machineLoad().loadAverage.join(' / ')}; other users' node processes (tests, simulations) ` +
        `running at the start: ${before.otherNodeProcesses.length}, at the end: ${machineLoad().otherNodeProcesses.length}.`,
      `Everything shares the machine: ${apiProcesses === 1 ? 'one API process (bench/server.ts)' : `${apiProcesses} API processes per server (bench/server.ts behind a cluster primary, as API_PROCESSES=${apiProcesses}; "api" CPU below is all of them, the primary included)`}, the workers process (workers/main.ts, WORKERS=persist) for pg-lock and Floodgate, ` +
        `the load generator (autocannon, its own process), Redis and Postgres.`,
      '',
      `Load: ${shape} (the k6 script's stages; autocannon cannot ramp, so ${ramp ? `${ramp.steps} autocannon instances start and stop in steps` : 'one fixed run'}). ` +
        `No think time: each connection sends its next request as soon as the previous one is answered. Each request books 1-4 tickets (random) with its own ` +
        `Idempotency-Key; ${fmt(users)} buyers' tokens taken in turn. Throughput phase: one event with ample stock (${fmt(ample)} tickets), so nothing sells out.`,
      '',
      '| target | req/s at full load (plateau) | req/s whole run | p50 ms | p95 ms | p99 ms | 201 | 409 sold out | other 4xx | 5xx | timeouts + connection errors | error rate (5xx, timeouts) |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      line('bare Hono route (framework ceiling)', ceiling),
      line('pg-lock: the seed\'s SELECT ... FOR UPDATE (baseline)', pgLock),
      line('Floodgate hot path (Lua), persist worker running', fg),
      '',
      `**Floodgate / baseline: ${ratio.floodgateToBaseline.toFixed(1)}x; Floodgate / ceiling: ${(ratio.floodgateToCeiling * 100).toFixed(1)} %** (plateau, ${connections} connections). ` +
        `Whole run: ${ratioWhole.floodgateToBaseline.toFixed(1)}x and ${(ratioWhole.floodgateToCeiling * 100).toFixed(1)} %.`,
      `Floodgate's outbox was fully in Postgres ${drainSec.toFixed(1)} s after the last request.`,
      '',
      'CPU during each throughput phase, percent of one core (this machine has 2 cores = 200 %):',
      '',
      `- ceiling: ${cpuLine({ ...ceilingCpu, 'load generator': pct1(ceiling) })}`,
      `- pg-lock: ${cpuLine({ ...pgCpu, 'load generator': pct1(pgLock) })}`,
      `- Floodgate: ${cpuLine({ ...fgCpu, 'load generator': pct1(fg) })}`,
      '',
      `## Scarce stock: ${fmt(scarce)} tickets, fixed ${connections} connections for ${scarceSec} s`,
      '',
      '| design | req/s | p95 ms | 201 | tickets acknowledged | 409 sold out | first 409 at | tickets left | 5xx + timeouts | p95 of a 409, ms |',
      '|---|---|---|---|---|---|---|---|---|---|',
      sline('pg-lock', pgLockScarce, result.scarce.pgLock),
      sline('Floodgate', fgScarceRun, result.scarce.floodgate),
      '',
      `Oversold: pg-lock ${Math.max(0, (pgLockScarce.ticketsAcknowledged ?? 0) - scarce)}, Floodgate ${Math.max(0, (fgScarceRun.ticketsAcknowledged ?? 0) - scarce)} ` +
        '(tickets acknowledged with 201 beyond the stock; the store-side checks below count held + sold beyond capacity too). A ticket or three can stay ' +
        'unsold when the last requests ask for more than is left (1-4 tickets each).',
    ].join('\n');
    // a run with N processes is kept beside the one-process run of the same day (booking-api<N>-<date>.*)
    await publish(apiProcesses === 1 ? 'booking' : `booking-api${apiProcesses}`, result, md, checks, { heading: 'Correctness' });
  } finally {
    await stopAll();
    await stack.cleanup();
  }
}

/** The load generator's CPU as percent of one core over its run. */
function pct1(r: LoadResult): number {
  return Math.round(((r.cpuSeconds ?? 0) / r.durationSec) * 100);
}
