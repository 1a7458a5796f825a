import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { Logger } from './logger.js';
import { serveMetrics } from './metrics-server.js';

/**
 * Several processes of one server behind one port (node:cluster). The primary serves nothing itself: it forks
 * `processes` workers, which listen on the same port (the primary accepts each connection and hands it to the next
 * worker in turn, node's default round-robin), starts again a worker that dies (with a backoff, logged), passes
 * SIGTERM/SIGINT on to every worker so each drains its requests (its own shutdown, as a single process does), and
 * serves the workers' metrics summed on the metrics port (prom-client's AggregatorRegistry).
 */

/** One process per core: the API's work per request is JavaScript on one thread, so one process uses one core. */
export const defaultProcesses = (): number => availableParallelism();

/** True in a process the primary forked. */
export const isClusterWorker = (): boolean => cluster.isWorker;

/**
 * In a worker: answer the primary's metric requests with `registry` (the primary sums what every worker answers).
 * A single process (not forked) does nothing here: it serves its own registry.
 */
export function shareMetricsWithPrimary(registry: Registry): void {
  if (!cluster.isWorker) return;
  new AggregatorRegistry(); // installs the worker's listener for the primary's requests
  AggregatorRegistry.setRegistries([registry]);
}

export type PrimaryOptions = {
  /** The service ('api'): the `service` label of the metrics and the log lines. */
  service: string;
  processes: number;
  log: Logger;
  /** Where to serve the summed /metrics (and /health); none: no metrics port. Port 0: a free one (`metricsPort`). */
  metrics?: { host: string; port: number } | undefined;
  /** Delay before the first restart of a worker; it doubles for each quick death, up to `max` (ms). */
  restartDelayMs?: { first: number; max: number };
  /** A worker that ran this long before it died is restarted after `restartDelayMs.first` again (ms). */
  stableAfterMs?: number;
};

export type Primary = {
  /** Resolves once every first worker listens; rejects (after stopping the others) if one exits before. */
  ready: Promise<{ port: number }>;
  /** The port of the summed /metrics, when served. */
  metricsPort: number | undefined;
  /** The pids of the workers running now. */
  pids(): number[];
  /** SIGTERM to every worker, then the metrics port closed; resolves with 0 when every worker ended cleanly, else 1. */
  stop(): Promise<number>;
};

const CLEAN_SIGNALS = new Set(['SIGTERM', 'SIGINT']);

/** Starts the primary: forks the workers (this same program, `cluster.fork()`), watches and restarts them. */
export async function startPrimary(o: PrimaryOptions): Promise<Primary> {
  if (!cluster.isPrimary) throw new Error('startPrimary: not the primary process');
  const { log } = o;
  const first = o.restartDelayMs?.first ?? 250;
  const max = o.restartDelayMs?.max ?? 30_000;
  const stableAfterMs = o.stableAfterMs ?? 30_000;

  const registry = new Registry();
  registry.setDefaultLabels({ service: o.service });
  const restarts = new Counter({
    name: 'floodgate_cluster_worker_restarts_total',
    help: 'Processes of this service the cluster primary started again after one exited (crash, kill or out of memory)',
    registers: [registry],
  });
  const live = new Gauge({
    name: 'floodgate_cluster_workers',
    help: 'Processes of this service listening, as the cluster primary sees them (API_PROCESSES wanted)',
    registers: [registry],
  });
  const wanted = new Gauge({
    name: 'floodgate_cluster_workers_wanted',
    help: 'Processes of this service the cluster primary keeps running (API_PROCESSES)',
    registers: [registry],
  });
  wanted.set(o.processes);
  const aggregator = new AggregatorRegistry();

  type Slot = { worker: Worker | undefined; startedAt: number; listening: boolean; delayMs: number; timer: NodeJS.Timeout | undefined };
  const slots: Slot[] = Array.from({ length: o.processes }, () => ({ worker: undefined, startedAt: 0, listening: false, delayMs: first, timer: undefined }));
  let started = false; // every first worker listened
  let stopping: Promise<number> | undefined;
  let unclean = false;
  let port = 0;
  let resolveReady!: (v: { port: number }) => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<{ port: number }>((res, rej) => ((resolveReady = res), (rejectReady = rej)));
  ready.catch(() => {}); // the caller awaits it; a rejection is never left unhandled here
  const exited = new Set<Promise<void>>();
  const countLive = () => live.set(slots.filter((s) => s.listening).length);

  const fork = (slot: Slot) => {
    slot.timer = undefined;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.listening = false;
    const pid = worker.process.pid;
    let markExited!: () => void;
    const done = new Promise<void>((resolve) => (markExited = resolve)); // once the exit below is handled
    exited.add(done);
    void done.then(() => exited.delete(done));
    worker.once('listening', (address: AddressInfo) => {
      slot.listening = true;
      countLive();
      port = address.port;
      log.info({ pid, port: address.port }, `${o.service} process listening`);
      if (!started && slots.every((s) => s.listening)) {
        started = true;
        resolveReady({ port });
      }
    });
    worker.once('exit', (code: number | null, signal: string | null) => {
      // node's primary stops handing connections to a worker once its IPC channel is closed: wait for that, so
      // that nothing (the log line included) happens while a connection could still go to the dead process
      const closed = worker.isConnected() ? new Promise((resolve) => worker.once('disconnect', resolve)) : Promise.resolve();
      void closed.then(() => onExit(slot, pid, code, signal)).finally(markExited);
    });
  };

  const onExit = (slot: Slot, pid: number | undefined, code: number | null, signal: string | null) => {
    slot.worker = undefined;
    slot.listening = false;
    countLive();
    if (stopping) {
      if (code !== 0 && !(signal && CLEAN_SIGNALS.has(signal))) unclean = true;
      log.info({ pid, code, signal }, `${o.service} process stopped`);
      return;
    }
    if (!started) {
      // as a single process that fails to start: stop the others and fail
      log.error({ pid, code, signal }, `${o.service} process exited before it was listening`);
      const err = new Error(`an ${o.service} process exited before it was listening (${signal ?? `exit code ${code}`})`);
      void stop().then(() => rejectReady(err));
      return;
    }
    // a worker that ran a while starts the backoff over; one that keeps dying waits longer each time
    const lived = Date.now() - slot.startedAt;
    const delayMs = lived >= stableAfterMs ? first : slot.delayMs;
    slot.delayMs = Math.min(max, delayMs * 2);
    restarts.inc();
    log.warn({ pid, code, signal, livedMs: lived, restartInMs: delayMs }, `${o.service} process exited; starting another`);
    slot.timer = setTimeout(() => fork(slot), delayMs);
  };

  const stop = (): Promise<number> =>
    (stopping ??= (async () => {
      for (const s of slots) {
        if (s.timer) clearTimeout(s.timer);
        s.timer = undefined;
      }
      const running = slots.flatMap((s) => (s.worker ? [s.worker] : []));
      log.info({ processes: running.length }, `stopping ${o.service} processes`);
      for (const w of running) w.process.kill('SIGTERM');
      while (exited.size) await Promise.all([...exited]);
      if (metricsServer) await new Promise<void>((r) => metricsServer!.close(() => r()));
      return unclean ? 1 : 0;
    })());

  // the workers' metrics summed, then the primary's own; a worker that does not answer within 5 s fails the scrape
  const metricsServer = o.metrics
    ? await serveMetrics(
        {
          registry: {
            contentType: registry.contentType,
            metrics: async () => `${(await aggregator.clusterMetrics()).trimEnd()}\n${await registry.metrics()}`,
          },
        },
        o.metrics.host,
        o.metrics.port,
      )
    : undefined;
  const metricsPort = metricsServer ? (metricsServer.address() as AddressInfo).port : undefined;

  log.info({ processes: o.processes, metricsPort }, `starting ${o.processes} ${o.service} processes`);
  for (const s of slots) fork(s);
  return {
    ready,
    metricsPort,
    pids: () => slots.flatMap((s) => (s.worker?.process.pid ? [s.worker.process.pid] : [])),
    stop,
  };
}

/**
 * A primary as a whole program: starts, stops on SIGTERM or SIGINT (every worker drains, then the primary exits with
 * their verdict), exits 1 if a worker fails to start. `onReady` runs once every worker listens.
 */
export async function runPrimary(o: PrimaryOptions, onReady?: (p: Primary, port: number) => void): Promise<void> {
  const primary = await startPrimary(o);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    // `on`: a terminal's Ctrl-C reaches the workers too, and a second signal must not kill the primary mid-stop
    process.on(sig, () => {
      o.log.info(`${sig} received, stopping`);
      void primary.stop().then((code) => process.exit(code));
    });
  }
  const { port } = await primary.ready; // a failed start rejects: runMain prints it and exits 1
  onReady?.(primary, port);
}
