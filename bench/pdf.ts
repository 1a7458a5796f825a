/**
 * `npm run bench:pdf -- [--bookings 200] [--tickets 3] [--warmup 20]`: ticket PDFs per second on one core.
 *
 * Renders `--bookings` bookings of `--tickets` seated tickets each, one after another in this process, with holder
 * names that cycle through Latin, Cyrillic, Greek and CJK (CJK prints from a fallback font when one is installed,
 * else as U+FFFD), and prints bookings (PDFs) per second and the CPU time (user + system, `process.cpuUsage`) per PDF.
 * The first `--warmup` bookings are rendered first and not counted (JIT, font files read from disk).
 */
import { parseArgs } from 'node:util';
import { renderTicketsPdf, type TicketPdfInput } from '../engine/tickets/ticket-pdf.js';

const { values } = parseArgs({
  options: { bookings: { type: 'string', default: '200' }, tickets: { type: 'string', default: '3' }, warmup: { type: 'string', default: '20' } },
});
const bookings = Number(values.bookings);
const perBooking = Number(values.tickets);
const warmup = Number(values.warmup);

const NAMES = ['Zoë Müller', 'Анна Каренина', 'Νίκος Καζαντζάκης', '山田太郎', 'José García-Ortega'];
const booking = (i: number): TicketPdfInput => {
  const id = `bk_bench${String(i).padStart(6, '0')}_q8w7e6r5t4y3u2i1`;
  return {
    event: { name: 'Floodgate Live — Night 2', venue: 'Olympiahalle, München', startsAt: '2026-07-12T20:00:00+02:00', timeZone: 'Europe/Berlin' },
    booking: { bookingId: id, tierName: 'Parterre', holderName: NAMES[i % NAMES.length]!, holderEmail: 'holder@example.test' },
    tickets: Array.from({ length: perBooking }, (_, t) => ({
      seat: `B-${1 + (i % 40)}-${1 + t}`,
      code: `FG1.${id}~${t + 1}~B-${1 + (i % 40)}-${1 + t}.${'Xk1Yb2Zc3'.repeat(5).slice(0, 43)}`,
    })),
  };
};

for (let i = 0; i < warmup; i++) await renderTicketsPdf(booking(i));
let bytes = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < bookings; i++) bytes += (await renderTicketsPdf(booking(warmup + i))).length;
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;

const r = (n: number, d = 1) => n.toFixed(d);
console.log(`bookings: ${bookings} × ${perBooking} tickets (one PDF each), warm-up ${warmup}, node ${process.version}`);
console.log(`PDFs/s (wall):     ${r((bookings * 1000) / wallMs)}`);
console.log(`PDFs/s per core:   ${r((bookings * 1000) / cpuMs)}   (1000 / CPU ms per PDF)`);
console.log(`CPU ms per PDF:    ${r(cpuMs / bookings, 2)}   (user + system)`);
console.log(`wall ms per PDF:   ${r(wallMs / bookings, 2)}`);
console.log(`mean PDF size:     ${r(bytes / bookings / 1024)} KiB`);
