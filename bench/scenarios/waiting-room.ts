/**
 * `npm run bench -- waiting-room`: the spike. People arrive at a ramping rate (like k6's waiting-room-spike.js: up in
 * 5 s, steady, down in 5 s), join the event's waiting room (POST /api/events/:id/queue), poll their own place every
 * 1-2 s (GET /api/queue/:queueId), and once admitted book 1-4 tickets with their pass (X-Admission-Token). The real
 * workers process runs the admission worker and the persist worker (WORKERS=admission,persist); the API is one
 * bench/server.ts process; the people are bench/crowd.ts in their own process. The stock sells out during the spike,
 * so late arrivals must hear "sold_out".
 * The driver samples the admission state atomically (MULTI) every 200 ms: passes without a hold x tickets per pass must
 * never exceed what the stock can serve.
 * Options: --rate 1000 (peak joins/s) --up 5 --hold 10 --down 5 --stock 5000 --admission-rate 250 --pass-ttl 60
 *          --poll-min 1 --poll-max 2 --max-wait 120 --sockets 1000
 */
import type { EventId } from '../../engine/ids.js';
import { eventKeys } from '../../engine/keys.js';
import { benchStack, machineFacts, say, startServer } from '../lib/stack.js';
import { floodgateEventChecks, type Check } from '../lib/checks.js';
import { commandLine, cpuLine, cpuMeter, flags, fmt, machineLoad, ms, onInterrupt, progressLine, startCrowd, startWorkers, stopAll, type CrowdResult, publish, waitForOutbox, sampleWhile } from '../lib/common.js';

export async function run(args: string[]): Promise<void> {
  const f = flags(args);
  const peak = f.num('rate', 1000);
  const shape = { upSec: f.num('up', 5), holdSec: f.num('hold', 10), downSec: f.num('down', 5), peak };
  const stock = f.num('stock', 5000);
  const admissionRate = f.num('admission-rate', 250);
  const passTtl = f.num('pass-ttl', 60);
  const poll: [number, number] = [f.num('poll-min', 1), f.num('poll-max', 2)];
  const maxWait = f.num('max-wait', 120);
  const sockets = f.num('sockets', 1000);
  const tpp = 4;
  const command = commandLine('waiting-room', args);
  const before = machineLoad();
  const people = Math.round(peak * (shape.upSec / 2 + shape.holdSec + shape.downSec / 2));

  const stack = await benchStack();
  onInterrupt(() => stack.cleanup());
  const { engine, redis, deps } = stack;
  try {
    say(`stack: schema ${stack.schema}, key namespace ${stack.ns}; load average ${before.loadAverage.join(' ')}`);
    const now = Date.now();
    const ev = await engine.createEvent({
      name: 'Waiting-room spike', category: 'bench', venue: 'Bench', startsAt: new Date(now + 86400_000).toISOString(),
      salesOpenAt: new Date(now - 1000).toISOString(), maxTicketsPerUser: tpp,
      tiers: [{ name: 'General', price: 5000, currency: 'EUR', capacity: stock }],
      queue: { enabled: true, opensAt: new Date(now - 60_000).toISOString(), admissionRatePerSecond: admissionRate, passTtlSeconds: passTtl },
    });
    const eventId = ev.id as EventId;
    const k = eventKeys(deps.ns, eventId);

    const api = await startServer('floodgate', stack.env);
    const workers = await startWorkers('admission,persist', stack.env);
    const meter = cpuMeter(() => redis.info('cpu'));
    let crowd: CrowdResult;
    let cpu: Record<string, number>;
    const samples: { t: number; at: number; outstanding: number; free: number; held: number; admitted: number; waiting: number }[] = [];
    let violations = 0;
    let t0 = Date.now();
    let strictOver = 0;
    try {
      say(`spike: ${fmt(people)} people, 0 -> ${peak} joins/s in ${shape.upSec} s, ${shape.holdSec} s at ${peak}/s, -> 0 in ${shape.downSec} s; ` +
        `stock ${fmt(stock)} tickets, admission ceiling ${admissionRate}/s, pass ${passTtl} s, polls every ${poll[0]}-${poll[1]} s`);
      const m = await meter.start({ api: api.child.pid!, workers: workers.pid });
      const line = progressLine('[bench]');
      let last = { done: {} as Record<string, number>, perSecond: {} as Record<string, number>, counters: {} as Record<string, number> };
      const c = startCrowd(
        {
          mode: 'waiting-room', base: `http://127.0.0.1:${api.port}`, secret: stack.jwtSecret, sockets, userPrefix: `wr-${stack.ns}`,
          eventId, tierId: ev.tiers[0]!.id, arrivals: shape, pollSec: poll, maxWaitSec: maxWait, maxTickets: tpp,
        },
        (p) => (last = p),
      );
      t0 = Date.now();
      const line_ = (s: string) => line.update(s);
      crowd = await sampleWhile(c.result, 200, async () => {
        const r = await redis.multi().zcard(k.wrPasses).hlen(k.wrUsed).hgetall(k.inv).hmget(k.wrCfg, 'admitted', 'cursorLine', 'cursorPre').zcard(k.wrLine).zcard(k.wrPre)
          .hgetall(k.meta).zrange(k.wrPasses, '0', '-1').hgetall(k.wrUsed).exec();
        const [passes, used, inv, cfg, line, pre, meta, passList, usedMap] = r!.map((x) => x[1]) as [number, number, Record<string, string>, (string | null)[], number, number,
          Record<string, string>, string[], Record<string, string>];
        let free = 0;
        let held = 0;
        for (const [field, v] of Object.entries(inv)) {
          if (field.startsWith('free:')) free += Number(v);
          else if (field.startsWith('held:')) held += Number(v);
        }
        const outstanding = passes - used;
        // tickets the unused passes may take: tpp each, less what a sized pass ("up to k", issue 18: pass:<member> in meta) lacks
        const live = new Set(passList);
        let deficit = 0;
        for (const [f, v] of Object.entries(meta)) {
          const m = f.slice(5);
          if (f.startsWith('pass:') && live.has(m) && !(m in usedMap)) deficit += tpp - Number(v);
        }
        const reserved = outstanding * tpp - deficit;
        if (reserved > free + held) violations++;
        if (reserved > free) strictOver++;
        const waiting = line - Number(cfg[1] ?? 0) + pre - Number(cfg[2] ?? 0);
        const at = Date.now();
        samples.push({ t: (at - t0) / 1000, at, outstanding, free, held, admitted: Number(cfg[0] ?? 0), waiting });
        const ps = last.perSecond;
        line_(`t=${Math.round((Date.now() - t0) / 1000)}s joined ${fmt(last.counters.joined ?? 0)}, waiting ${fmt(waiting)}, admitted ${fmt(Number(cfg[0] ?? 0))}, ` +
          `passes unused ${outstanding}, booked ${fmt(last.counters.booked ?? 0)}, free ${fmt(free)} | joins ${ps.join ?? 0}/s polls ${ps.poll ?? 0}/s books ${ps.book ?? 0}/s`);
      }, line);
      cpu = await m.stop();
      say('waiting for the persist worker to drain the outbox');
      await waitForOutbox(engine, [eventId]);
    } finally {
      await api.stop();
      await workers.stop();
    }

    const counters = crowd.counters;
    const acknowledged = Number(crowd.ticketsAcknowledged ?? 0);
    // each "admitted but found nothing" against the atomic sample taken just before it (same machine clock)
    const foundAt = (crowd.foundNothingAt as number[] | undefined) ?? [];
    const heldAt = foundAt.map((at) => {
      let s = samples[0];
      for (const x of samples) if (x.at <= at) s = x;
      return s?.held ?? 0;
    });
    const foundNothing = {
      n: foundAt.length,
      heldMin: heldAt.length ? Math.min(...heldAt) : 0,
      heldMax: heldAt.length ? Math.max(...heldAt) : 0,
      whileNothingHeld: heldAt.filter((h) => h === 0).length,
      firstAtSec: foundAt.length ? (Math.min(...foundAt) - t0) / 1000 : null,
      lastAtSec: foundAt.length ? (Math.max(...foundAt) - t0) / 1000 : null,
    };
    const store = await floodgateEventChecks(engine, 'waiting room', eventId, { acknowledgedTickets: acknowledged, sentTicketsMax: (counters.admitted ?? 0) * tpp, capacity: stock });
    const checks: Check[] = [
      ...store.checks,
      {
        name: 'admission never exceeded what the stock can serve (tickets the passes without a hold may take <= available + held, sampled atomically)',
        ok: violations === 0,
        detail: `${violations} violating samples of ${samples.length}; max unused passes ${Math.max(0, ...samples.map((s) => s.outstanding))}`,
      },
      {
        // The design (issue 3, docs/architecture.md) keeps unused passes x tickets per pass <= available + held: held
        // tickets may come back (expiry, decline, cancel), so an admitted person can find nothing while tickets are held.
        // What it does promise is that this never happens while nothing is held: then every pass is covered by free stock.
        name: 'no admitted person found nothing while no tickets were held (with nothing held, available alone covers every unused pass)',
        ok: foundNothing.whileNothingHeld === 0,
        detail: `${foundNothing.n} of ${counters.admitted ?? 0} admitted people were told 409 with nothing left; ` +
          `tickets held in the store at those moments (sample just before): min ${foundNothing.heldMin}, max ${foundNothing.heldMax}; ` +
          `found nothing while nothing was held: ${foundNothing.whileNothingHeld}`,
      },
    ];
    const rate = (kind: string) => {
      const xs = crowd.perSecond[kind] ?? [];
      const active = xs.filter((x) => x > 0);
      return { peak: Math.max(0, ...xs), avg: active.length ? active.reduce((a, b) => a + b, 0) / active.length : 0 };
    };
    const facts = await machineFacts(stack.redis, stack.pool);
    const ttaRaw = crowd.timeToAdmissionMs as { n: number; p50: number; p95: number; p99: number; max: number };
    const result = {
      scenario: 'waiting-room', command, date: new Date().toISOString(), machine: facts, machineBefore: before, machineAfter: machineLoad(),
      settings: { shape, people, stock, admissionRate, passTtl, poll, maxWait, ticketsPerPass: tpp, sockets },
      latencyMs: crowd.latencyMs, statuses: crowd.statuses, throughput: { join: rate('join'), poll: rate('poll'), book: rate('book') },
      timeToAdmissionMs: ttaRaw, counters, ticketsAcknowledged: acknowledged, cpuPercentOfOneCore: { ...cpu!, crowd: Math.round((Number(crowd.cpuSeconds) / crowd.durationSec) * 100) },
      foundNothing, admission: { samples: samples.length, violations, samplesWhereUnusedPassesExceededFreeStock: strictOver, timeline: samples.filter((_, i) => i % 5 === 0) },
      stores: { redis: store.redis, postgres: store.postgres }, clientQueueMs: crowd.clientQueueMs, checks, ok: checks.every((c) => c.ok),
    };
    const L = crowd.latencyMs;
    const row = (name: string, kind: string) => {
      const l = L[kind];
      const r = rate(kind);
      return l ? `| ${name} | ${fmt(l.n)} | ${fmt(r.peak)} | ${fmt(r.avg)} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${JSON.stringify(crowd.statuses[kind] ?? {})} |` : `| ${name} | 0 | | | | | | |`;
    };
    const md = [
      `# Waiting-room spike, ${result.date.slice(0, 10)}`,
      '',
      `Command: \`${command}\``,
      '',
      `Machine: ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Node ${facts.node}, Redis ${facts.redis}, PostgreSQL ${facts.postgres}. ` +
        `Load average (1/5/15 min) before the run: ${before.loadAverage.join(' / ')}, after: ${machineLoad().loadAverage.join(' / ')}; other users' node processes (tests, simulations) ` +
        `running at the start: ${before.otherNodeProcesses.length}, at the end: ${machineLoad().otherNodeProcesses.length}.`,
      `Processes: one API (bench/server.ts), the workers (workers/main.ts, WORKERS=admission,persist), the crowd (bench/crowd.ts, ${sockets} keep-alive connections), Redis, Postgres.`,
      '',
      `Spike: ${fmt(people)} people arriving at 0 -> ${peak}/s in ${shape.upSec} s, ${shape.holdSec} s at ${peak}/s, -> 0 in ${shape.downSec} s (open loop: arrivals do not wait for ` +
        `the server). Each joins, polls its own place every ${poll[0]}-${poll[1]} s, and once admitted books 1-4 tickets with its pass. Stock ${fmt(stock)} tickets, ` +
        `at most ${tpp} per person (= tickets per pass), admission ceiling ${admissionRate} people/s, passes valid ${passTtl} s.`,
      '',
      '| request | count | peak /s | avg /s (active seconds) | p50 ms | p95 ms | p99 ms | statuses |',
      '|---|---|---|---|---|---|---|---|',
      row('join (POST /api/events/:id/queue)', 'join'),
      row('status poll (GET /api/queue/:queueId)', 'poll'),
      row('book with pass (POST /api/bookings + X-Admission-Token)', 'book'),
      '',
      `Time to admission (from the join request to the poll that said "admitted", client side): **p50 ${fmt(ttaRaw.p50 / 1000, 1)} s, p95 ${fmt(ttaRaw.p95 / 1000, 1)} s** ` +
        `(${fmt(ttaRaw.n)} people admitted; polls every ${poll[0]}-${poll[1]} s add up to that much to each).`,
      '',
      `People: joined ${fmt(counters.joined ?? 0)}, admitted ${fmt(counters.admitted ?? 0)}, booked ${fmt(counters.booked ?? 0)} (${fmt(acknowledged)} tickets), ` +
        `told sold out while waiting ${fmt(counters.toldSoldOut ?? 0)}, admitted but found nothing (409, available 0) ${fmt(counters.admittedButSoldOut ?? 0)}, took what was left ${fmt(counters.admittedTookFewer ?? 0)}, ` +
        `gave up after ${maxWait} s ${fmt(counters.gaveUp ?? 0)}, join failed ${fmt(counters.joinFailed ?? 0)}, poll failed ${fmt(counters.pollFailed ?? 0)}, ` +
        `arrivals dropped ${fmt(counters.droppedArrivals ?? 0)}.`,
      '',
      `Admitted but found nothing: **${fmt(foundNothing.n)}** of ${fmt(counters.admitted ?? 0)} admitted people` +
        (foundNothing.n
          ? `, between ${foundNothing.firstAtSec!.toFixed(1)} s and ${foundNothing.lastAtSec!.toFixed(1)} s into the spike, each while ${fmt(foundNothing.heldMin)}-${fmt(foundNothing.heldMax)} tickets ` +
            'were held by others (the atomic sample just before). By design (issue 3) admission counts held tickets as stock that may come back ' +
            '(unused passes x tickets per pass <= available + held); here no hold is paid, cancelled or expires during the run (holds last an hour), so those ' +
            `tickets never came back. With nothing held, no admitted person found nothing (${foundNothing.whileNothingHeld} did).`
          : '.'),
      '',
      `Admission vs stock, sampled atomically every 200 ms (${fmt(samples.length)} samples): unused passes x ${tpp} > available + held in **${violations}** samples ` +
        `(the engine's invariant); unused passes x ${tpp} > available alone in ${strictOver} samples (the stricter reading: passes that could only be served if ` +
        'held tickets came back).',
      '',
      `CPU, percent of one core: ${cpuLine(result.cpuPercentOfOneCore)}. Client-side queueing (waiting for a free connection): p95 ${ms(crowd.clientQueueMs.p95)} ms.`,
    ].join('\n');
    await publish('waiting-room', result, md, checks, { heading: 'Correctness' });
  } finally {
    await stopAll();
    await stack.cleanup();
  }
}
