/**
 * The load generator, run in its own process: autocannon against one URL, bearer tokens taken in turn.
 * Input: one JSON document on stdin {url, method, body?, tokens?, connections, durationSec, title}.
 * Output: one JSON line with throughput, latency percentiles and the status code counts.
 */
import type { EventEmitter } from 'node:events';
import autocannon from 'autocannon';

type Input = {
  url: string;
  method: 'GET' | 'POST';
  body?: string;
  tokens?: string[];
  /** Instead of one URL: paths (on url's origin) each with its own token, taken in turn. */
  targets?: { path: string; token: string }[];
  connections: number;
  durationSec: number;
  title: string;
};
const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Input;

const statuses: Record<string, number> = {};
const times: number[] = [];
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : 0);
let nextRequest = 0;
const instance = autocannon(
  {
    url: input.url,
    connections: input.connections,
    duration: input.durationSec,
    title: input.title,
    initialContext: {},
    requests: [
      {
        method: input.method,
        // each request takes the next buyer token in turn (many buyers, each under the per-buyer cap)
        setupRequest: (req) => {
          const target = input.targets?.length ? input.targets[nextRequest % input.targets.length] : undefined;
          const token = target?.token ?? (input.tokens?.length ? input.tokens[nextRequest % input.tokens.length] : undefined);
          nextRequest++;
          return {
            ...req,
            ...(target ? { path: target.path } : {}),
            headers: { ...req.headers, 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
            body: input.body,
          };
        },
        onResponse: (status: number) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
        },
      },
    ],
  },
  (err, r) => {
    if (err) throw err;
    const sorted = times.sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        title: input.title,
        connections: input.connections,
        durationSec: r.duration,
        requests: r.requests.total,
        sent: r.requests.sent,
        throughputRps: r.requests.average,
        latencyMs: {
          avg: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1),
          p50: pct(sorted, 50),
          p95: pct(sorted, 95),
          p99: pct(sorted, 99),
          max: sorted.at(-1) ?? 0,
        },
        errors: r.errors,
        timeouts: r.timeouts,
        non2xx: r.non2xx,
        statuses,
      }),
    );
  },
);
const events = instance as unknown as EventEmitter;
events.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
  times.push(responseTime);
});
let last = 0;
events.on('tick', (counter: { counter: number }) => {
  last += counter.counter;
  process.stderr.write(`\r  ${input.title}: ${last} requests`);
});
events.on('done', () => process.stderr.write('\n'));
