import { spawnSync } from 'node:child_process';
import { PDFDocument } from 'pdf-lib';
import { afterEach, describe, expect, it } from 'vitest';
import { createTicketPdfPool, defaultRenderThreads, type TicketPdfPool } from './ticket-pdf-pool.js';
import type { TicketPdfInput } from './ticket-pdf.js';

const input = (holderName: string, tickets = 2): TicketPdfInput => ({
  event: { name: 'Floodgate Live', venue: 'Olympiahalle', startsAt: '2026-07-12T20:00:00+02:00' },
  booking: { bookingId: `bk_${holderName.length}`, tierName: 'Parterre', holderName },
  tickets: Array.from({ length: tickets }, (_, i) => ({ seat: `A-1-${i + 1}`, code: `FG1.code~${i + 1}.sig` })),
});

let pool: TicketPdfPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('createTicketPdfPool', () => {
  it('sizes itself from the cores: one less than available, at least one', () => {
    expect(defaultRenderThreads()).toBeGreaterThanOrEqual(1);
  });

  it('renders many bookings at once on two threads, each answer the PDF of its own booking', async () => {
    pool = createTicketPdfPool({ threads: 2 });
    expect(pool.threads).toBe(2);
    const names = ['Zoë Müller', 'Анна Каренина', 'Νίκος', '山田太郎', 'José', 'Lee Ann', 'שלום', 'Ann 👩‍👩‍👧 Lee'];
    const pdfs = await Promise.all(names.map((n, i) => pool!.render(input(n, 1 + (i % 3)))));
    expect(pool.queued).toBe(0);
    for (const [i, pdf] of pdfs.entries()) {
      const doc = await PDFDocument.load(pdf, { updateMetadata: false });
      expect(doc.getTitle()).toBe(`Floodgate Live · ${names[i]!.normalize('NFC')}`);
      expect(doc.getPageCount()).toBe(1 + (i % 3));
    }
  });

  it('fails only the request that failed, and keeps rendering', async () => {
    pool = createTicketPdfPool({ threads: 1 });
    const bad = pool.render({ ...input('A'), tickets: [] });
    const good = pool.render(input('B'));
    await expect(bad).rejects.toThrow(/no tickets/);
    expect((await PDFDocument.load(await good)).getPageCount()).toBe(2);
  });

  it('rejects what is still queued when closed, and everything after', async () => {
    pool = createTicketPdfPool({ threads: 1 });
    const pending = [pool.render(input('A')), pool.render(input('B')), pool.render(input('C'))];
    const settling = Promise.allSettled(pending);
    await pool.close();
    const settled = await settling;
    expect(settled.some((s) => s.status === 'rejected')).toBe(true);
    await expect(pool.render(input('D'))).rejects.toThrow(/closed/);
  });

  it('fails the request whose thread died, and starts another thread', async () => {
    // a thread that loads, then dies on every request it gets
    const script = `const { parentPort } = require('node:worker_threads');
      parentPort.postMessage({ ready: true });
      parentPort.on('message', () => process.exit(7));`;
    pool = createTicketPdfPool({ threads: 1, script });
    await expect(pool.render(input('A'))).rejects.toThrow(/render thread died: exited with code 7/);
    await expect(pool.render(input('B'))).rejects.toThrow(/render thread died/);
  });

  it('renders in the calling thread once threads keep dying without answering', async () => {
    pool = createTicketPdfPool({ threads: 1, script: 'process.exit(1)' }); // dies before it is ready
    const pdf = await pool.render(input('Zoë'));
    expect((await PDFDocument.load(pdf)).getPageCount()).toBe(2);
  });

  it('keeps the process alive while a render waits for its thread to load (a script awaiting it at top level)', async () => {
    const pool = new URL('./ticket-pdf-pool.ts', import.meta.url).href;
    const code = `const { createTicketPdfPool } = await import(${JSON.stringify(pool)});
      const pool = createTicketPdfPool({ threads: 1 });
      const pdf = await pool.render(${JSON.stringify(input('Zoë'))});
      console.log(pdf.length);
      await pool.close();`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: child.status, stderr: child.stderr }).toEqual({ status: 0, stderr: '' });
    expect(Number(child.stdout.trim())).toBeGreaterThan(1000);
  });

  it('renders in the calling thread with threads: 0', async () => {
    pool = createTicketPdfPool({ threads: 0 });
    expect((await PDFDocument.load(await pool.render(input('A')))).getPageCount()).toBe(2);
  });
});
