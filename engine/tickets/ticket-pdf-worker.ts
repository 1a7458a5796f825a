import { parentPort } from 'node:worker_threads';
import { renderTicketsPdf, type TicketPdfInput, type TicketPdfOptions } from './ticket-pdf.js';

/**
 * A render thread of `createTicketPdfPool`: says `{ ready: true }` once loaded, then renders one booking's PDF per
 * message and posts the bytes back (transferred, not copied). Fonts, layouts and QR mask tables are cached per thread, so a thread gets faster after
 * its first tickets.
 */
export type RenderRequest = { id: number; input: TicketPdfInput; options?: TicketPdfOptions };
export type RenderReply = { id: number; pdf: Uint8Array } | { id: number; error: string };

const port = parentPort;
if (!port) throw new Error('ticket-pdf-worker: run me as a worker thread (createTicketPdfPool)');
port.on('message', (req: RenderRequest) => {
  renderTicketsPdf(req.input, req.options).then(
    (pdf) => port.postMessage({ id: req.id, pdf } satisfies RenderReply, [pdf.buffer as ArrayBuffer]),
    (err: unknown) => port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies RenderReply),
  );
});
port.postMessage({ ready: true });
