import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { renderTicketsPdf, type TicketPdfInput, type TicketPdfOptions } from './ticket-pdf.js';
import type { RenderReply, RenderRequest } from './ticket-pdf-worker.js';

/**
 * Ticket PDFs rendered on worker threads, so several render at once (one per core) and the event loop of the caller
 * (a notify worker sending mail, waiting on Postgres) never stalls behind a render. Each thread renders one booking
 * at a time; further requests wait in a FIFO queue. A thread that dies fails only the booking it was rendering (the
 * notify job retries) and is replaced; if threads keep dying without answering (three in a row), the pool renders in
 * the calling thread from then on. `threads: 0` renders in the calling thread instead.
 */
export type TicketPdfPool = {
  render(input: TicketPdfInput, options?: TicketPdfOptions): Promise<Uint8Array>;
  /** Render threads (0: renders in the calling thread). */
  readonly threads: number;
  /** Requests waiting for a free thread. */
  readonly queued: number;
  close(): Promise<void>;
};

/** One thread per core, leaving one core for the caller's own event loop; at least one. */
export const defaultRenderThreads = (): number => Math.max(1, availableParallelism() - 1);

const MAX_DEATHS_IN_A_ROW = 3;

/** tsx's register API, resolved from here (an eval'd thread would resolve a bare name from the working directory). */
function tsxApi(): string {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    return 'tsx/esm/api';
  }
}

type Task = { req: RenderRequest; resolve: (pdf: Uint8Array) => void; reject: (err: Error) => void };
/** `ready`: the thread has loaded the renderer (it says so in a first message); only then is it given work. */
type Slot = { worker: Worker; task: Task | null; ready: boolean };

export function createTicketPdfPool(o: {
  threads?: number;
  log?: Logger;
  /** The threads' code (CommonJS source), instead of loading ticket-pdf-worker: for the tests of dying threads. */
  script?: string;
} = {}): TicketPdfPool {
  const threads = o.threads ?? defaultRenderThreads();
  if (!Number.isInteger(threads) || threads < 0) throw new Error(`createTicketPdfPool: threads must be an integer >= 0, not ${threads}`);
  if (threads === 0) return { render: renderTicketsPdf, threads: 0, queued: 0, close: async () => {} };

  // Built, the worker is the .js next to this file. Run from source (tsx, vitest) it is the .ts, and the thread first
  // registers tsx's loader for itself (a loader given to the parent, or in execArgv, does not reach a worker thread).
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(`./ticket-pdf-worker.${ts ? 'ts' : 'js'}`, import.meta.url);
  const source = ts
    ? `import(${JSON.stringify(tsxApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`
    : `import(${JSON.stringify(entry.href)})`;

  const queue: Task[] = [];
  const slots: Slot[] = [];
  let nextId = 1;
  let closed = false;
  /** Threads that died since the last answer; past MAX_DEATHS_IN_A_ROW none is started again. */
  let deaths = 0;
  let inline = false;

  const spawn = (): Slot => {
    // a young generation larger than the default makes far fewer scavenges of a renderer's short-lived buffers
    const worker = new Worker(o.script ?? source, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 48 } });
    const slot: Slot = { worker, task: null, ready: false };
    worker.unref(); // an idle pool never keeps the process alive; close() ends it
    worker.on('message', (reply: RenderReply | { ready: true }) => {
      if ('ready' in reply) {
        slot.ready = true;
        pump();
        return;
      }
      const task = slot.task;
      if (!task || task.req.id !== reply.id) return;
      slot.task = null;
      deaths = 0;
      if ('pdf' in reply) task.resolve(reply.pdf);
      else task.reject(new Error(reply.error));
      pump();
    });
    const died = (err: Error) => {
      const i = slots.indexOf(slot);
      if (i < 0) return;
      slots.splice(i, 1);
      slot.task?.reject(new Error(`ticket PDF render thread died: ${err.message}`));
      slot.task = null;
      if (closed) return;
      deaths++;
      if (deaths <= MAX_DEATHS_IN_A_ROW) {
        o.log?.warn({ err: { message: err.message } }, 'ticket PDF render thread died; starting another');
        slots.push(spawn());
      } else if (slots.length === 0) {
        // threads that die before rendering anything (a broken install, no memory): render here rather than not at all
        o.log?.error({ err: { message: err.message } }, 'ticket PDF render threads keep dying; rendering in the calling thread');
        inline = true;
        for (const t of queue.splice(0)) renderTicketsPdf(t.req.input, t.req.options).then(t.resolve, t.reject);
      }
      pump();
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`exited with code ${code}`)));
    return slot;
  };

  const pump = () => {
    for (const slot of slots) {
      if (!slot.ready || slot.task || queue.length === 0) continue;
      const task = queue.shift()!;
      slot.task = task;
      slot.worker.postMessage(task.req);
    }
    // the threads keep the process alive while a render is in flight or waiting (for a thread that is still loading)
    for (const slot of slots) {
      if (slot.task || queue.length > 0) slot.worker.ref();
      else slot.worker.unref();
    }
  };

  for (let i = 0; i < threads; i++) slots.push(spawn());

  return {
    threads,
    get queued() {
      return queue.length;
    },
    render(input, options) {
      if (closed) return Promise.reject(new Error('ticket PDF pool is closed'));
      if (inline) return renderTicketsPdf(input, options);
      return new Promise<Uint8Array>((resolve, reject) => {
        queue.push({ req: { id: nextId++, input, ...(options ? { options } : {}) }, resolve, reject });
        pump();
      });
    },
    async close() {
      closed = true;
      for (const t of queue.splice(0)) t.reject(new Error('ticket PDF pool is closed'));
      await Promise.all(slots.splice(0).map(async (s) => {
        s.task?.reject(new Error('ticket PDF pool is closed'));
        await s.worker.terminate();
      }));
    },
  };
}
