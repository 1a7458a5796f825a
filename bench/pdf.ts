/**
 * `npm run bench:pdf -- [--bookings 200] [--tickets 3] [--warmup 20] [--threads 0] [--module path]`: ticket PDFs per
 * second on one core.
 *
 * Renders `--bookings` bookings of `--tickets` seated tickets each, one after another in this process, with holder
 * names in Latin, Cyrillic, Greek and CJK (`SCRIPTS`; CJK prints from a fallback font when one is installed, else as
 * U+FFFD), and prints bookings (PDFs) per second and the CPU time (user + system, `process.cpuUsage`) per PDF.
 * The first `--warmup` bookings are rendered first and not counted (JIT, font files read from disk).
 *
 * `--threads N` (N > 0) renders through `createTicketPdfPool({ threads: N })`, as the notify worker does, with 2N
 * bookings in flight; the CPU time then is the whole process's (every thread). `--module` renders with another
 * copy of ticket-pdf.ts, e.g. an older one for a before/after comparison:
 * `git show <commit>:engine/tickets/ticket-pdf.ts > engine/tickets/ticket-pdf.before.ts` and
 * `--module ../engine/tickets/ticket-pdf.before.ts` (relative to bench/).
 */
import { parseArgs } from 'node:util';
import { createTicketPdfPool } from '../engine/tickets/ticket-pdf-pool.js';
import type * as TicketPdf from '../engine/tickets/ticket-pdf.js';
import type { TicketPdfInput } from '../engine/tickets/ticket-pdf.js';

const { values } = parseArgs({
  options: {
    bookings: { type: 'string', default: '200' },
    tickets: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '20' },
    threads: { type: 'string', default: '0' },
    module: { type: 'string' },
  },
});
const bookings = Number(values.bookings);
const perBooking = Number(values.tickets);
const warmup = Number(values.warmup);
const threads = Number(values.threads);
const { renderTicketsPdf } = (await import(values.module ?? '../engine/tickets/ticket-pdf.js')) as typeof TicketPdf;
const pool = threads > 0 ? createTicketPdfPool({ threads }) : undefined;
const render = pool ? pool.render : renderTicketsPdf;

/**
 * Holder names: a first and a last name of one script, drawn with a fixed seed, so every run renders the same
 * bookings. Half plain ASCII, a quarter Latin with diacritics, the rest Cyrillic, Greek and CJK.
 */
const SCRIPTS: { weight: number; first: string[]; last: string[] }[] = [
  { weight: 50, first: ['James', 'Emily', 'Noah', 'Olivia', 'Lukas', 'Mia', 'Oliver', 'Ava'], last: ['Smith', 'Brown', 'Weber', 'Rossi', "O'Brien", 'Jensen', 'Silva', 'Taylor'] },
  { weight: 25, first: ['Zoë', 'José', 'Sofía', 'Chloé', 'Łukasz', 'Björn'], last: ['Müller', 'García', 'Dubois', 'Nowak', 'Yılmaz', 'Novák'] },
  { weight: 15, first: ['Анна', 'Дмитрий', 'Ольга', 'Сергей', 'Мария'], last: ['Иванова', 'Петров', 'Смирнова', 'Кузнецов', 'Попова'] },
  { weight: 5, first: ['Νίκος', 'Γιώργος', 'Ελένη'], last: ['Παπαδόπουλος', 'Καζαντζάκης', 'Οικονόμου'] },
  { weight: 5, first: ['太郎', '花子', '翔'], last: ['山田', '佐藤', '鈴木'] },
];
let seed = 42;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
const holderName = () => {
  let w = rand(100);
  const s = SCRIPTS.find((x) => (w -= x.weight) < 0)!;
  return `${s.first[rand(s.first.length)]} ${s.last[rand(s.last.length)]}`;
};

const booking = (i: number): TicketPdfInput => {
  const id = `bk_bench${String(i).padStart(6, '0')}_q8w7e6r5t4y3u2i1`;
  return {
    event: { name: 'Floodgate Live — Night 2', venue: 'Olympiahalle, München', startsAt: '2026-07-12T20:00:00+02:00', timeZone: 'Europe/Berlin' },
    booking: { bookingId: id, tierName: 'Parterre', holderName: holderName(), holderEmail: 'holder@example.test' },
    tickets: Array.from({ length: perBooking }, (_, t) => ({
      seat: `B-${1 + (i % 40)}-${1 + t}`,
      code: `FG1.${id}~${t + 1}~B-${1 + (i % 40)}-${1 + t}.${'Xk1Yb2Zc3'.repeat(5).slice(0, 43)}`,
    })),
  };
};

/** Renders bookings [from, to) with `inFlight` at a time. */
async function renderAll(from: number, to: number, inFlight: number): Promise<number> {
  let next = from;
  let bytes = 0;
  const lane = async () => {
    while (next < to) {
      const pdf = await render(booking(next++));
      bytes += pdf.length;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return bytes;
}

const inFlight = pool ? 2 * threads : 1;
await renderAll(0, warmup * Math.max(1, threads), inFlight); // every thread warms up
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const bytes = await renderAll(warmup * Math.max(1, threads), warmup * Math.max(1, threads) + bookings, inFlight);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
await pool?.close();

const r = (n: number, d = 1) => n.toFixed(d);
console.log(
  `bookings: ${bookings} × ${perBooking} tickets (one PDF each), warm-up ${warmup}, ` +
    `${pool ? `${threads} render thread(s), ${inFlight} in flight` : 'in this thread'}, ${values.module ?? 'ticket-pdf.ts'}, node ${process.version}`,
);
console.log(`PDFs/s (wall):     ${r((bookings * 1000) / wallMs)}`);
console.log(`PDFs/s per core:   ${r((bookings * 1000) / cpuMs)}   (1000 / CPU ms per PDF)`);
console.log(`CPU cores busy:    ${r(cpuMs / wallMs, 2)}`);
console.log(`CPU ms per PDF:    ${r(cpuMs / bookings, 2)}   (user + system)`);
console.log(`wall ms per PDF:   ${r(wallMs / bookings, 2)}`);
console.log(`mean PDF size:     ${r(bytes / bookings / 1024)} KiB`);
