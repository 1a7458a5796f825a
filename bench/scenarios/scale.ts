/**
 * `npm run bench -- scale`: what limits what on this machine. POST /api/bookings at 1,000 connections (fixed, 10 s per
 * phase), four phases:
 *   A. one API process, one hot event;          B. one API process, 100 events (the connections spread over them);
 *   C. two API processes, one hot event;        D. two API processes, 100 events.
 * With two API processes (bench/server.ts on two ports), two load-generator processes start together, half the
 * connections each. The persist worker (workers process, WORKERS=persist) drains during every phase. For each phase:
 * throughput, latency, and the CPU each process used (API(s), workers, Redis, Postgres, load generators, whole machine).
 * Options: --connections 1000 --duration 10 --events 100 --users 30000
 */
import type { EventId } from '../../engine/ids.js';
import { benchStack, machineFacts, runLoad, say, startServer, type LoadResult } from '../lib/stack.js';
import { acknowledgedCheck, countersCheck, invariantsCheck, type Check, type TierState } from '../lib/checks.js';
import { commandLine, cpuLine, cpuMeter, flags, fmt, machineLoad, ms, onInterrupt, signToken, sleep, startWorkers, stopAll, publish } from '../lib/common.js';

type Phase = { name: string; processes: 1 | 2; events: number };

export async function run(args: string[]): Promise<void> {
  const f = flags(args);
  const connections = f.num('connections', 1000);
  const durationSec = f.num('duration', 10);
  const manyEvents = f.num('events', 100);
  const users = f.num('users', 30_000);
  const command = commandLine('scale', args);
  const before = machineLoad();
  const phases: Phase[] = [
    { name: 'A. 1 API process, 1 event', processes: 1, events: 1 },
    { name: `B. 1 API process, ${manyEvents} events`, processes: 1, events: manyEvents },
    { name: 'C. 2 API processes, 1 event', processes: 2, events: 1 },
    { name: `D. 2 API processes, ${manyEvents} events`, processes: 2, events: manyEvents },
  ];

  const stack = await benchStack();
  onInterrupt(() => stack.cleanup());
  const { engine, redis } = stack;
  try {
    say(`stack: schema ${stack.schema}, key namespace ${stack.ns}; load average ${before.loadAverage.join(' ')}`);
    const tokens = Array.from({ length: users }, (_, i) => signToken(stack.jwtSecret, `sc-${i}`));
    const startsAt = new Date(Date.now() + 86400_000).toISOString();
    const meter = cpuMeter(() => redis.info('cpu'));
    const out: {
      phase: Phase; eventIds: EventId[]; loads: LoadResult[]; rps: number; latencyMs: { p50: number; p95: number; p99: number }; cpu: Record<string, number>; drainSec: number;
    }[] = [];

    for (const phase of phases) {
      say(`${phase.name}: ${connections} connections for ${durationSec} s`);
      const events = await Promise.all(
        Array.from({ length: phase.events }, (_, i) =>
          engine.createEvent({ name: `${phase.name} #${i}`, category: 'bench', venue: 'Bench', startsAt, maxTicketsPerUser: 100,
            tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity: 10_000_000 }] }),
        ),
      );
      // bodies taken in turn: consecutive requests go to different events
      const bodies = Array.from({ length: 4096 }, (_, i) => {
        const ev = events[i % events.length]!;
        const tickets = 1 + Math.floor(Math.random() * 4);
        return { body: JSON.stringify({ eventId: ev.id, tierId: ev.tiers[0]!.id, ticketCount: tickets }), tickets };
      });
      const apis = await Promise.all(Array.from({ length: phase.processes }, () => startServer('floodgate', stack.env)));
      const workers = await startWorkers('persist', stack.env);
      let loads: LoadResult[];
      let cpu: Record<string, number>;
      let drainSec: number;
      try {
        const pids: Record<string, number> = Object.fromEntries(apis.map((a, i) => [`api${phase.processes > 1 ? i + 1 : ''}`, a.child.pid!]));
        const m = await meter.start({ ...pids, workers: workers.pid });
        loads = await Promise.all(
          apis.map((a, i) =>
            runLoad({
              title: `${phase.name.slice(0, 2)}${phase.processes > 1 ? ` gen ${i + 1}` : ''}`, url: `http://127.0.0.1:${a.port}/api/bookings`, method: 'POST',
              bodies: i === 0 ? bodies : [...bodies.slice(1), bodies[0]!], tokens: i === 0 ? tokens : [...tokens].reverse(),
              idempotencyPrefix: `sc-${out.length}-${i}-${stack.ns}`, connections: Math.round(connections / phase.processes), durationSec,
            }),
          ),
        );
        cpu = await m.stop();
        const started = Date.now();
        for (;;) {
          let backlog = 0;
          for (const ev of events) backlog += (await engine.outbox.backlog(ev.id as EventId)).entries;
          if (backlog === 0) break;
          if (Date.now() - started > 300_000) throw new Error('the outbox did not drain within 5 minutes');
          await sleep(250);
        }
        drainSec = (Date.now() - started) / 1000;
      } finally {
        await Promise.all(apis.map((a) => a.stop()));
        await workers.stop();
      }
      const rps = loads.reduce((n, l) => n + (l.plateauRps ?? l.throughputRps), 0);
      // latency over both generators: weighted by requests (each generator's own percentiles are kept in the JSON)
      const w = (k: 'p50' | 'p95' | 'p99') => loads.reduce((n, l) => n + l.latencyMs[k] * l.requests, 0) / loads.reduce((n, l) => n + l.requests, 0);
      out.push({ phase, eventIds: events.map((e) => e.id as EventId), loads, rps, latencyMs: { p50: w('p50'), p95: w('p95'), p99: w('p99') }, cpu: cpu!, drainSec: drainSec! });
      say(`   ${fmt(rps)} req/s; CPU: ${cpuLine({ ...cpu!, 'load generators': loads.reduce((n, l) => n + Math.round(((l.cpuSeconds ?? 0) / l.durationSec) * 100), 0) })}`);
    }

    say('checking');
    const checks: Check[] = [];
    for (const p of out) {
      const label = p.phase.name.slice(0, 2).replace('.', '');
      const states: Record<string, TierState> = {};
      for (const id of p.eventIds) for (const [tier, s] of Object.entries(await engine.inventory.redisState(id))) states[tier] = s;
      const held = Object.values(states).reduce((n, s) => n + s.held + s.sold, 0);
      checks.push(countersCheck(`phase ${label}: ${p.eventIds.length} event(s)`, states));
      checks.push(acknowledgedCheck(`phase ${label}`, {
        acknowledgedTickets: p.loads.reduce((n, l) => n + (l.ticketsAcknowledged ?? 0), 0), sentTicketsMax: p.loads.reduce((n, l) => n + (l.ticketsSent ?? 0), 0), storeTickets: held,
      }));
      checks.push(invariantsCheck(`phase ${label} (drained: Redis == Postgres for every event)`, await engine.checkInvariants({ eventIds: p.eventIds, drained: true })));
    }
    const facts = await machineFacts(stack.redis, stack.pool);
    const base = out[0]!.rps;
    const result = {
      scenario: 'scale', command, date: new Date().toISOString(), machine: facts, machineBefore: before, machineAfter: machineLoad(), connections, durationSec, users,
      phases: out.map((p) => ({
        name: p.phase.name, processes: p.phase.processes, events: p.phase.events, rps: p.rps, relativeToA: p.rps / base, latencyMs: p.latencyMs, drainSec: p.drainSec,
        cpuPercentOfOneCore: { ...p.cpu, loadGenerators: p.loads.reduce((n, l) => n + Math.round(((l.cpuSeconds ?? 0) / l.durationSec) * 100), 0) } as Record<string, number>,
        statuses: p.loads.map((l) => l.statuses), errors: p.loads.reduce((n, l) => n + l.errors, 0), loads: p.loads.map(({ timeline: _t, ...rest }) => rest),
      })),
      checks, ok: checks.every((c) => c.ok),
    };
    const md = [
      `# Scale: events and API processes, ${result.date.slice(0, 10)}`,
      '',
      `Command: \`${command}\``,
      '',
      `Machine: ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Node ${facts.node}, Redis ${facts.redis}, PostgreSQL ${facts.postgres}. ` +
        `Load average (1/5/15 min) before the run: ${before.loadAverage.join(' / ')}, after: ${machineLoad().loadAverage.join(' / ')}; other users' node processes (tests, simulations) ` +
        `running at the start: ${before.otherNodeProcesses.length}, at the end: ${machineLoad().otherNodeProcesses.length}.`,
      '',
      `POST /api/bookings, 1-4 tickets per request, ${connections} connections in total for ${durationSec} s per phase (autocannon; with two API processes, two ` +
        `load generators of ${connections / 2} connections start together, one per process). The workers process (WORKERS=persist) drains the outbox during ` +
        'every phase. CPU is percent of one core over the phase (2 cores = 200 %; "machine" counts every process, including other users\').',
      '',
      '| phase | req/s | vs A | p50 ms | p95 ms | p99 ms | errors | drain after s | CPU: API(s) | workers | Redis | Postgres | load gen(s) | machine |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...result.phases.map((p) => {
        const c = p.cpuPercentOfOneCore;
        const api = Object.entries(c).filter(([k]) => k.startsWith('api')).map(([, v]) => `${v} %`).join(' + ');
        return `| ${p.name} | **${fmt(p.rps)}** | ${p.relativeToA.toFixed(2)}x | ${ms(p.latencyMs.p50)} | ${ms(p.latencyMs.p95)} | ${ms(p.latencyMs.p99)} | ${p.errors} | ${fmt(p.drainSec, 1)} | ${api} | ${c.workers} % | ${c.redis} % | ${c.postgres} % | ${c.loadGenerators} % | ${c.machine} % |`;
      }),
    ].join('\n');
    await publish('scale', result, md, checks, { heading: 'Correctness (after each phase drained)' });
  } finally {
    await stopAll();
    await stack.cleanup();
  }
}
