/**
 * The load generator, run in its own process: autocannon against one URL, bearer tokens taken in turn.
 * Input: one JSON document on stdin {url, method, body?, tokens?, connections, durationSec, title, ...} (see Input).
 * Output: one JSON line with throughput, latency percentiles, the status code counts, the tickets acknowledged
 * (sum of the ticket counts of the requests answered 201) and a per-second timeline.
 *
 * Ramp: autocannon has no stages, so `ramp` runs `steps` autocannon instances in this one process, started one after
 * the other over `upSec` and stopped one after the other over `downSec` (the latest started stops first): the number of
 * open connections climbs 0 -> connections, stays there `holdSec`, and falls back to 0 in steps of connections/steps,
 * like the k6 stages `0s:0,10s:1000,20s:1000,30s:0`.
 */
import type { EventEmitter } from 'node:events';
import autocannon from 'autocannon';

type Input = {
  url: string;
  method: 'GET' | 'POST';
  body?: string;
  /** Bodies taken in turn (instead of `body`), each with the number of tickets it asks for. */
  bodies?: { body: string; tickets: number }[];
  tokens?: string[];
  /** Instead of one URL: paths (on url's origin) each with its own token, taken in turn. */
  targets?: { path: string; token: string }[];
  /** Sends `Idempotency-Key: <prefix>-<n>` (unique per request), as a real client does. */
  idempotencyPrefix?: string;
  connections: number;
  durationSec: number;
  ramp?: { upSec: number; holdSec: number; downSec: number; steps: number };
  /** Per-request timeout, seconds (autocannon's default 10). */
  timeoutSec?: number;
  title: string;
};
const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Input;

const statuses: Record<string, number> = {};
const times: number[] = [];
const timesBy = new Map<number, number[]>();
const startedAt = Date.now();
/** Per second since the start: responses by class. */
const timeline: { t: number; responses: number; ok: number; soldOut: number; other: number; connections: number }[] = [];
let openConnections = 0;
const slot = () => {
  const t = Math.floor((Date.now() - startedAt) / 1000);
  while (timeline.length <= t) timeline.push({ t: timeline.length, responses: 0, ok: 0, soldOut: 0, other: 0, connections: openConnections });
  return timeline[t]!;
};
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : 0);
const fixedTickets = (() => {
  try {
    const n = input.body ? (JSON.parse(input.body) as { ticketCount?: unknown }).ticketCount : undefined;
    return typeof n === 'number' ? n : 0;
  } catch {
    return 0;
  }
})();
let nextRequest = 0;
let ticketsSent = 0;
let ticketsAcknowledged = 0;

type Ctx = { tickets?: number };
const requests = [
  {
    method: input.method,
    // each request takes the next buyer token in turn (many buyers, each under the per-buyer cap)
    setupRequest: (req: Record<string, unknown>, context: Ctx) => {
      const n = nextRequest++;
      const target = input.targets?.length ? input.targets[n % input.targets.length] : undefined;
      const token = target?.token ?? (input.tokens?.length ? input.tokens[n % input.tokens.length] : undefined);
      const b = input.bodies?.length ? input.bodies[n % input.bodies.length]! : undefined;
      const tickets = b ? b.tickets : fixedTickets;
      context.tickets = tickets;
      ticketsSent += tickets;
      return {
        ...req,
        ...(target ? { path: target.path } : {}),
        headers: {
          ...(req.headers as Record<string, string>),
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(input.idempotencyPrefix ? { 'idempotency-key': `${input.idempotencyPrefix}-${n}` } : {}),
        },
        body: b ? b.body : input.body,
      };
    },
    onResponse: (status: number, _body: unknown, context: Ctx) => {
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === 201) ticketsAcknowledged += context.tickets ?? 0;
      const s = slot();
      s.responses++;
      if (status >= 200 && status < 300) s.ok++;
      else if (status === 409) s.soldOut++;
      else s.other++;
    },
  },
];

type Result = { duration: number; requests: { total: number; sent: number }; errors: number; timeouts: number; non2xx: number };

function runOne(connections: number, durationSec: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    openConnections += connections;
    const instance = autocannon(
      {
        url: input.url,
        connections,
        duration: durationSec,
        timeout: input.timeoutSec ?? 10,
        title: input.title,
        initialContext: {},
        // autocannon's own types do not know the context argument
        requests: requests as never,
      },
      (err, r) => {
        openConnections -= connections;
        if (err) reject(err);
        else resolve(r as unknown as Result);
      },
    );
    const events = instance as unknown as EventEmitter;
    events.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
      times.push(responseTime);
      let list = timesBy.get(status);
      if (!list) timesBy.set(status, (list = []));
      list.push(responseTime);
    });
  });
}

const ticker = setInterval(() => {
  const s = slot();
  const done = timeline.reduce((n, x) => n + x.responses, 0);
  const prev = timeline[s.t - 1]?.responses ?? 0;
  process.stderr.write(`\r\x1b[K  ${input.title}: ${done} responses, ${prev}/s last second, ${openConnections} connections open, t=${s.t}s`);
}, 1000);

let results: Result[];
let wallSec: number;
if (input.ramp) {
  const { upSec, holdSec, downSec, steps } = input.ramp;
  const per = Math.floor(input.connections / steps);
  const total = upSec + holdSec + downSec;
  results = await Promise.all(
    Array.from({ length: steps }, async (_, k) => {
      const start = (k * upSec) / steps;
      const stop = total - (k * downSec) / steps;
      await new Promise((r) => setTimeout(r, start * 1000));
      const conns = k === steps - 1 ? input.connections - per * (steps - 1) : per;
      return runOne(conns, stop - start);
    }),
  );
  wallSec = total;
} else {
  results = [await runOne(input.connections, input.durationSec)];
  wallSec = results[0]!.duration;
}
clearInterval(ticker);
process.stderr.write('\n');

const sorted = times.sort((a, b) => a - b);
const summary = (xs: number[]) => {
  const s = xs.sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s.at(-1) ?? 0 };
};
const requestsTotal = results.reduce((n, r) => n + r.requests.total, 0);
// throughput while every connection was open (the plateau of a ramp; the whole run otherwise, minus the first second)
const plateau = input.ramp
  ? timeline.filter((x) => x.t >= input.ramp!.upSec && x.t < input.ramp!.upSec + input.ramp!.holdSec)
  : timeline.filter((x) => x.t >= 1 && x.t < Math.floor(wallSec));
console.log(
  JSON.stringify({
    title: input.title,
    connections: input.connections,
    durationSec: wallSec,
    ramp: input.ramp ?? null,
    requests: requestsTotal,
    sent: results.reduce((n, r) => n + r.requests.sent, 0),
    throughputRps: requestsTotal / wallSec,
    plateauRps: plateau.length ? plateau.reduce((n, x) => n + x.responses, 0) / plateau.length : requestsTotal / wallSec,
    latencyMs: {
      avg: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
      p50: pct(sorted, 50),
      p95: pct(sorted, 95),
      p99: pct(sorted, 99),
      max: sorted.at(-1) ?? 0,
    },
    latencyByStatus: Object.fromEntries([...timesBy].map(([s, xs]) => [String(s), summary(xs)])),
    errors: results.reduce((n, r) => n + r.errors, 0),
    timeouts: results.reduce((n, r) => n + r.timeouts, 0),
    non2xx: results.reduce((n, r) => n + r.non2xx, 0),
    statuses,
    ticketsSent,
    ticketsAcknowledged,
    timeline,
    /** CPU seconds this load generator used (user + system), start-up included. */
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  }),
);
