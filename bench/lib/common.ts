/**
 * Small helpers shared by the benchmark scenarios: flags, percentiles, child processes (always stopped, even on
 * failure), a live progress line, CPU/memory of a process from /proc, and the results files.
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../../engine/index.js';
import type { EventId } from '../../engine/ids.js';
import { checksMarkdown, reportChecks, type Check } from './checks.js';
import { ROOT, API_NODE_FLAGS, say } from './stack.js';
import { stopAll, stopChild, track, trackedPids } from './children.js';

// ---------------------------------------------------------------------------------------------------------------
// Flags: --name value or --name=value

export function flags(argv: string[]) {
  const get = (name: string): string | undefined => {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === `--${name}`) return argv[i + 1];
      if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
    }
    return undefined;
  };
  return {
    num(name: string, def: number): number {
      const v = get(name);
      if (v === undefined) return def;
      const n = Number(v.replace(/_/g, ''));
      if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got ${JSON.stringify(v)}`);
      return n;
    },
    str: (name: string, def: string): string => get(name) ?? def,
    has: (name: string): boolean => argv.includes(`--${name}`),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics

/** The largest / smallest of many numbers (Math.max(...xs) overflows the call stack at a few hundred thousand). */
export const maxOf = (xs: readonly number[]) => xs.reduce((a, b) => (b > a ? b : a), -Infinity);
export const minOf = (xs: readonly number[]) => xs.reduce((a, b) => (b < a ? b : a), Infinity);

export type Summary = { n: number; avg: number; p50: number; p95: number; p99: number; max: number };

/** Nearest-rank percentile of an ascending array. */
export const pct = (sorted: ArrayLike<number>, p: number): number =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : 0;

export function summarize(values: ArrayLike<number>): Summary {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of s) sum += v;
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, avg: r(sum / (s.length || 1)), p50: r(pct(s, 50)), p95: r(pct(s, 95)), p99: r(pct(s, 99)), max: r(s.length ? s[s.length - 1]! : 0) };
}

/** Spearman's rank correlation of two equally long sequences (no ties expected; ties get their first rank). */
export function spearman(a: number[], b: number[]): number {
  const n = a.length;
  if (n < 2) return 1;
  const rank = (xs: number[]) => {
    const idx = xs.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(n);
    idx.forEach(([, i], k) => (r[i] = k));
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  let d2 = 0;
  for (let i = 0; i < n; i++) d2 += (ra[i]! - rb[i]!) ** 2;
  return 1 - (6 * d2) / (n * (n * n - 1));
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const ms = (n: number) => (n >= 100 ? fmt(n) : fmt(n, 1));

// ---------------------------------------------------------------------------------------------------------------
// Tokens: HS256 JWTs signed here (node:crypto), thousands per second, the same format as scripts/dev-token.ts.

const b64 = (s: string) => Buffer.from(s).toString('base64url');
const JWT_HEADER = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
export function signToken(secret: string, userId: string, o: { admin?: boolean; ttlSeconds?: number } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const body = b64(JSON.stringify({ sub: userId, ...(o.admin ? { role: 'admin' } : {}), iat: now, exp: now + (o.ttlSeconds ?? 12 * 3600) }));
  const sig = createHmac('sha256', secret).update(`${JWT_HEADER}.${body}`).digest('base64url');
  return `${JWT_HEADER}.${body}.${sig}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes: every child is registered and stopped by stopAll() (called from finally and on SIGINT/SIGTERM).

export { track, stopChild, stopAll };
let interruptHandlers = false;
/** On Ctrl-C: stop the children, run `cleanup` (the bench stack), exit 130. */
export function onInterrupt(cleanup: () => Promise<void>): void {
  if (interruptHandlers) return;
  interruptHandlers = true;
  const handler = (sig: string) => {
    console.error(`\n[bench] ${sig}: stopping children and cleaning up`);
    void stopAll()
      .then(cleanup)
      .catch((e: unknown) => console.error(e))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', () => handler('SIGINT'));
  process.once('SIGTERM', () => handler('SIGTERM'));
}

/** A free TCP port on 127.0.0.1 (for METRICS_PORT). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts the real workers process (workers/main.ts) with `WORKERS=<which>` and a /metrics port; resolves when its
 * /health answers. `extraEnv` adds or overrides settings (MAIL_PROVIDER, OUTBOX_DIR, HOLD_TTL_MS...).
 */
export async function startWorkers(which: string, env: Record<string, string>, extraEnv: Record<string, string> = {}) {
  const metricsPort = await freePort();
  const child = track(
    spawn(process.execPath, [...API_NODE_FLAGS, '--import', 'tsx', join(ROOT, 'workers', 'main.ts')], {
      env: { ...process.env, ...env, WORKERS: which, METRICS_PORT: String(metricsPort), ...extraEnv },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
  const until = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`workers process (${which}) exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${metricsPort}/health`)).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > until) throw new Error('the workers process did not become healthy within 60 s');
    await sleep(200);
  }
  return {
    child,
    pid: child.pid!,
    metricsPort,
    metrics: async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
    stop: () => stopChild(child, 30_000),
  };
}

export const sleep = (msec: number) => new Promise<void>((r) => setTimeout(r, msec));

// ---------------------------------------------------------------------------------------------------------------
// /proc: CPU seconds and resident memory of a process (Linux).

const TICKS = 100; // USER_HZ on Linux
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS; // utime + stime
  } catch {
    return 0;
  }
}
export function procRssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}
/** CPU seconds of each Postgres process of the machine (user `postgres`), by pid. */
export function postgresCpu(): Map<number, number> {
  try {
    const out = execFileSync('ps', ['-u', 'postgres', '-o', 'pid='], { encoding: 'utf8' });
    return new Map(out.split('\n').map((s) => Number(s.trim())).filter((p) => p > 0).map((p) => [p, procCpuSeconds(p)]));
  } catch {
    return new Map();
  }
}
/** Busy and total jiffies of the whole machine (/proc/stat). */
export function machineCpu(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Is the machine quiet? Load average and other heavy node processes (other engineers' test runs).

export function machineLoad() {
  let others: string[] = [];
  try {
    const out = execFileSync('ps', ['-eo', 'pid,ppid,pcpu,args', '--no-headers'], { encoding: 'utf8' });
    // this run's own processes: itself, its ancestors (npm, sh, tsx) and its children
    const mine = new Set<number>([process.pid, ...trackedPids()]);
    for (let pid = process.ppid, n = 0; pid > 1 && n < 10; n++) {
      mine.add(pid);
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      } catch {
        break;
      }
    }
    others = out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /vitest|bench\/|tsx/.test(l) && !/ps -eo/.test(l))
      .filter((l) => {
        const [pid, ppid] = l.split(/\s+/).map(Number);
        return !mine.has(pid!) && !mine.has(ppid!);
      })
      .map((l) => l.replace(/\s+/g, ' ').slice(0, 160));
  } catch {
    /* ps missing: nothing to add */
  }
  const [one, five, fifteen] = loadavg();
  return { loadAverage: [one, five, fifteen].map((x) => Math.round(x! * 100) / 100), otherNodeProcesses: others };
}

// ---------------------------------------------------------------------------------------------------------------
// Progress: one line rewritten in place on a terminal, a line every few seconds otherwise (CI logs).

export function progressLine(prefix: string) {
  const tty = process.stderr.isTTY;
  let last = 0;
  return {
    update(text: string) {
      const now = Date.now();
      if (tty) process.stderr.write(`\r\x1b[K${prefix} ${text}`);
      else if (now - last >= 5000) {
        process.stderr.write(`${prefix} ${text}\n`);
        last = now;
      }
    },
    done(text?: string) {
      if (tty) process.stderr.write(`\r\x1b[K${text ? `${prefix} ${text}\n` : ''}`);
      else if (text) process.stderr.write(`${prefix} ${text}\n`);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Results files

export const RESULTS_DIR = join(ROOT, 'bench', 'results');
export const today = () => new Date().toISOString().slice(0, 10);

/** Writes bench/results/<name>-<date>.json and .md; returns the paths relative to the repository. */
export async function writeResults(name: string, result: unknown, md: string): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const stamp = today();
  const json = join(RESULTS_DIR, `${name}-${stamp}.json`);
  const mdPath = join(RESULTS_DIR, `${name}-${stamp}.md`);
  await writeFile(json, JSON.stringify(result, null, 2) + '\n');
  await writeFile(mdPath, md.endsWith('\n') ? md : md + '\n');
  return [json, mdPath].map((p) => p.slice(ROOT.length + 1));
}

/** The command line that reproduces this run, as the reader would type it. */
export function commandLine(scenario: string, args: string[]): string {
  return `npm run bench -- ${[scenario, ...args].join(' ')}`.trim();
}

// ---------------------------------------------------------------------------------------------------------------
// The crowd process (bench/crowd.ts)

export type CrowdProgress = {
  type: 'progress';
  t: number;
  done: Record<string, number>;
  perSecond: Record<string, number>;
  inFlight: number;
  counters: Record<string, number>;
  [k: string]: unknown;
};
export type CrowdResult = {
  mode: string;
  durationSec: number;
  latencyMs: Record<string, Summary>;
  statuses: Record<string, Record<string, number>>;
  perSecond: Record<string, number[]>;
  clientQueueMs: Summary;
  counters: Record<string, number>;
  [k: string]: unknown;
};

/** Starts bench/crowd.ts with `input`; `onProgress` gets its progress messages; `send` talks back to it. */
export function startCrowd(input: Record<string, unknown>, onProgress: (p: CrowdProgress) => void) {
  const child = track(
    spawn(process.execPath, ['--max-old-space-size=4096', '--import', 'tsx', join(ROOT, 'bench', 'crowd.ts')], { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] }),
  );
  child.stdin!.end(JSON.stringify(input));
  const out: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.on('message', (m: CrowdProgress) => {
    if (m?.type === 'progress') onProgress(m);
  });
  const result = new Promise<CrowdResult>((resolve, reject) => {
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`the crowd process exited with ${code}`));
      const text = Buffer.concat(out).toString('utf8').trim();
      try {
        resolve(JSON.parse(text.slice(text.lastIndexOf('\n') + 1)) as CrowdResult);
      } catch (err) {
        reject(err as Error);
      }
    });
  });
  return { child, pid: child.pid!, result, send: (m: Record<string, unknown>) => child.connected && child.send(m) };
}

// ---------------------------------------------------------------------------------------------------------------
// Who used the CPU during a phase: named processes (/proc), Redis (INFO cpu) and every Postgres backend.

export function cpuMeter(redisInfo: () => Promise<string>) {
  const redisCpu = async () => {
    const info = await redisInfo();
    return Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  };
  return {
    /** Call stop() before stopping the processes measured. Postgres backends that exit meanwhile lose their last share. */
    /** `pids`: a process, or several counted as one (a cluster primary and its processes). */
    async start(pids: Record<string, number | number[]>) {
      const at = performance.now();
      const cpuOf = (p: number | number[]) => (Array.isArray(p) ? p : [p]).reduce((n, pid) => n + procCpuSeconds(pid), 0);
      const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuOf(p)]));
      const redis0 = await redisCpu();
      const pg0 = postgresCpu();
      const m0 = machineCpu();
      return {
        /** Percent of one core used by each, over the phase (200 = both cores of this machine); `machine` = all processes. */
        async stop(): Promise<Record<string, number>> {
          const sec = (performance.now() - at) / 1000;
          const out: Record<string, number> = {};
          for (const [k, p] of Object.entries(pids)) out[k] = Math.round(((cpuOf(p) - before[k]!) / sec) * 100);
          out.redis = Math.round((((await redisCpu()) - redis0) / sec) * 100);
          let pg = 0;
          for (const [pid, cpu] of postgresCpu()) pg += cpu - (pg0.get(pid) ?? 0);
          out.postgres = Math.round((pg / sec) * 100);
          const m1 = machineCpu();
          out.machine = m1.total > m0.total ? Math.round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 * cpus().length) : 0;
          return out;
        },
      };
    },
  };
}
/** "api 56 %, ..., machine 198 %, everything else 40 %": everything else = the machine minus the processes named. */
export const cpuLine = (c: Record<string, number>) => {
  const named = Object.entries(c).filter(([k]) => k !== 'machine');
  const line = Object.entries(c).map(([k, v]) => `${k} ${v} %`).join(', ');
  return c.machine === undefined ? line : `${line} (everything else, other users' processes included: ${Math.max(0, c.machine - named.reduce((n, [, v]) => n + v, 0))} %)`;
};

// ---------------------------------------------------------------------------------------------------------------
// The outbox mail folder (MAIL_PROVIDER=outbox) and Prometheus histograms

export type OutboxMessage = { bookingId: string; folder: string; createdAtMs: number; writtenAtMs: number; pdfBytes: number; pdfOk: boolean };

/** Every message the outbox mailer wrote into `dir`: the booking (from the idempotency key), when, and whether the PDF is one. */
export async function readOutbox(dir: string): Promise<OutboxMessage[]> {
  const { readdir, readFile, stat, open } = await import('node:fs/promises');
  const out: OutboxMessage[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    try {
      const path = join(dir, name, 'message.json');
      const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      const m = JSON.parse(text) as { idempotencyKey: string; createdAt: string; attachments: { file: string; size: number; contentType: string }[] };
      const pdf = m.attachments.find((a) => a.contentType === 'application/pdf');
      let pdfOk = false;
      if (pdf) {
        const fh = await open(join(dir, name, pdf.file));
        const head = Buffer.alloc(5);
        await fh.read(head, 0, 5, 0);
        await fh.close();
        pdfOk = head.toString('latin1') === '%PDF-' && pdf.size > 1000;
      }
      out.push({ bookingId: m.idempotencyKey.replace(/^tickets-/, ''), folder: name, createdAtMs: Date.parse(m.createdAt), writtenAtMs: st.mtimeMs, pdfBytes: pdf?.size ?? 0, pdfOk });
    } catch {
      /* a folder being written: skipped */
    }
  }
  return out;
}

/** Counts the entries of the outbox folder (messages written so far) cheaply. */
export async function countOutbox(dir: string): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.')).length;
  } catch {
    return 0;
  }
}

/** The q-quantile of a Prometheus histogram as the upper bound of its bucket (summed over label sets), and its count. */
export function histogramQuantile(text: string, metric: string, q: number): { le: number; count: number; sum: number } {
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${metric}_bucket`)) {
      const le = /le="([^"]+)"/.exec(line)?.[1];
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      const key = le === '+Inf' ? Infinity : Number(le);
      buckets.set(key, (buckets.get(key) ?? 0) + v);
    } else if (line.startsWith(`${metric}_count`)) count += Number(line.slice(line.lastIndexOf(' ') + 1));
    else if (line.startsWith(`${metric}_sum`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const want = q * count;
  const hit = sorted.find(([, c]) => c >= want);
  return { le: count ? (hit?.[0] ?? Infinity) : 0, count, sum };
}

/** Deadlocks Postgres has detected in `database` so far (pg_stat_database), to report how many a run caused. */
export async function pgDeadlocks(pool: { query: <R extends Record<string, unknown>>(q: string, v?: unknown[]) => Promise<{ rows: R[] }> }): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()');
  return Number(rows[0]?.n ?? 0);
}

/**
 * Ends a run: appends the checks under `heading` to the report, prints it, reports the checks (a failed one makes the
 * run exit 1) and writes bench/results/<name>-<date>.{json,md}. `also` names any other file the run wrote.
 */
export async function publish(name: string, result: unknown, report: string, checks: Check[], o: { heading: string; also?: string }): Promise<void> {
  const md = [report, '', `## ${o.heading}`, '', ...checksMarkdown(checks), ''].join('\n');
  console.log(`\n${md}`);
  reportChecks(checks);
  const paths = await writeResults(name, result, md);
  say(`wrote ${paths.join(' and ')}${o.also ?? ''}`);
}

/** Waits until the persist worker has put every outbox entry of these events in Postgres; returns the seconds it took. */
export async function waitForOutbox(engine: Engine, eventIds: EventId[], o: { timeoutMs?: number; progress?: (backlog: number) => void } = {}): Promise<number> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  const started = Date.now();
  for (;;) {
    let backlog = 0;
    for (const id of eventIds) backlog += (await engine.outbox.backlog(id)).entries;
    o.progress?.(backlog);
    if (backlog === 0) return (Date.now() - started) / 1000;
    if (Date.now() - started > timeoutMs) throw new Error(`the outbox did not drain within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(200);
  }
}

/**
 * Runs `sample` every `everyMs` while `work` is unfinished (a progress line, memory or Redis samples), then once the
 * work is over waits for the sample in progress and ends the progress line. Resolves with the work's result.
 */
export async function sampleWhile<T>(work: Promise<T>, everyMs: number, sample: () => Promise<void> | void, line?: { done(): void }): Promise<T> {
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sample();
      await sleep(everyMs);
    }
  })();
  try {
    return await work;
  } finally {
    sampling = false;
    await sampler;
    line?.done();
  }
}
