import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import fontkit from '@pdf-lib/fontkit';
import {
  PDFDocument,
  beginMarkedContent,
  endMarkedContent,
  fill,
  popGraphicsState,
  pushGraphicsState,
  rectangle,
  rgb,
  setFillingGrayscaleColor,
  type Color,
  type PDFFont,
  type PDFPage,
} from 'pdf-lib';
import QRCode from 'qrcode';

/**
 * Ticket PDF: one A6 page per ticket with the event, the holder and a QR code of the signed ticket code
 * (`engine/tickets/ticket-code.ts`).
 *
 * Text is set in DejaVu Sans (Latin, Greek, Cyrillic, Armenian, Georgian, Hebrew, Arabic and more), embedded as a
 * subset. A character DejaVu lacks (CJK, emoji, Indic scripts, ...) is drawn from the first usable fallback font on
 * the system (`FALLBACK_FONT_PATHS`); if there is none, its whole grapheme becomes U+FFFD. Control, format and
 * bidi-override characters are dropped. pdf-lib has no bidi algorithm: a name in one right-to-left script is drawn
 * in the right order (fontkit reverses the run), a name mixing directions is not.
 *
 * The QR code is drawn as vector rectangles from `qrMatrix(code)` (not an embedded PNG): it stays sharp at any zoom
 * and print resolution, adds no image codec, and the test can read the modules back out of the content stream.
 */
export type TicketPdfInput = {
  event: {
    name: string;
    venue: string;
    /** ISO 8601, e.g. `2025-07-12T20:00:00+02:00`; printed as the wall time it states (or in `timeZone`). */
    startsAt: string;
    /** IANA zone of the venue, e.g. `Europe/Berlin`. Optional; without it the offset written in `startsAt` is used. */
    timeZone?: string;
  };
  booking: { bookingId: string; tierName: string; holderName: string; holderEmail?: string };
  tickets: { seat: string | null; code: string }[];
};

export type TicketPdfOptions = {
  /** Fonts tried, in order, for characters DejaVu Sans lacks. Defaults to `FALLBACK_FONT_PATHS`. */
  fallbackFontPaths?: readonly string[];
};

/**
 * Well-known locations of fonts with CJK (and wide Unicode) coverage. Only single-font TrueType files work:
 * pdf-lib cannot pick a face out of a `.ttc` collection (fontkit returns a collection object), so those are skipped,
 * as are CFF-flavoured `.otf` files, which pdf-lib 1.17 does not subset reliably.
 */
export const FALLBACK_FONT_PATHS: readonly string[] = [
  '/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf', // Debian/Ubuntu fonts-droid-fallback
  '/usr/share/fonts/google-droid-sans-fonts/DroidSansFallbackFull.ttf', // Fedora
  '/usr/share/fonts/droid/DroidSansFallbackFull.ttf', // Arch
  '/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf',
  '/usr/share/fonts/truetype/unifont/unifont.ttf', // fonts-unifont: almost all of the BMP
  '/System/Library/Fonts/Supplemental/Arial Unicode.ttf', // macOS
  '/Library/Fonts/Arial Unicode.ttf',
];

/** A6 portrait in points. */
const PAGE: readonly [number, number] = [297.64, 419.53];
const MARGIN = 20;
const QR_SIZE = 160;
/** The `/Tag BMC … EMC` marked-content sequence around the QR modules (invisible; lets tools find the code). */
export const QR_MARKED_CONTENT_TAG = 'FloodgateQR';
const REPLACEMENT = '\uFFFD';
const ELLIPSIS = '…';
/** Longer strings are cut before layout: nothing longer fits on the page anyway. */
const MAX_GRAPHEMES = 400;
const INK = rgb(0.1, 0.1, 0.12);
const MUTED = rgb(0.42, 0.42, 0.46);

/** The QR modules for `code` (error correction M), row by row from the top; `true` is dark. */
export function qrMatrix(code: string): boolean[][] {
  const { modules } = QRCode.create(code, { errorCorrectionLevel: 'M' });
  return Array.from({ length: modules.size }, (_, r) => Array.from({ length: modules.size }, (_, c) => modules.get(r, c) === 1));
}

/** Renders one page per ticket. Throws only for a caller bug: no tickets, or a code too long for a QR code. */
export async function renderTicketsPdf(input: TicketPdfInput, options: TicketPdfOptions = {}): Promise<Uint8Array> {
  const { event, booking, tickets } = input;
  if (tickets.length === 0) throw new Error('renderTicketsPdf: no tickets');
  const files = await fontFiles(options.fallbackFontPaths ?? FALLBACK_FONT_PATHS);

  const doc = await PDFDocument.create({ updateMetadata: false });
  doc.registerFontkit(fontkit);
  const regular = await doc.embedFont(files.regular.bytes, { subset: true });
  const bold = await doc.embedFont(files.bold.bytes, { subset: true });
  const strings = [event.name, event.venue, event.startsAt, booking.tierName, booking.holderName, booking.bookingId];
  const needed = files.fallback && [...strings, ...tickets.map((t) => t.seat ?? '')].some((s) => needsFallback(s, files));
  // Embedded only when some text needs it: a CJK font adds to the file even as a subset.
  const extra: Face[] = files.fallback && needed ? [{ font: await doc.embedFont(files.fallback.bytes, { subset: true }), cmap: files.fallback.cmap }] : [];
  const faces = {
    regular: [{ font: regular, cmap: files.regular.cmap }, ...extra],
    bold: [{ font: bold, cmap: files.bold.cmap }, { font: regular, cmap: files.regular.cmap }, ...extra],
  };

  const holder = clean(booking.holderName);
  const eventName = clean(event.name);
  doc.setTitle(truncateChars(`${eventName} · ${holder}`, 300));
  doc.setSubject(truncateChars(`Tickets for ${eventName}, booking ${clean(booking.bookingId)}`, 300));
  doc.setKeywords([eventName, holder, clean(booking.bookingId)].map((k) => truncateChars(k, 200)));
  doc.setCreator('Floodgate');
  doc.setProducer('Floodgate (pdf-lib)');
  doc.setLanguage('en');
  doc.setCreationDate(new Date());

  const when = formatStartsAt(event.startsAt, event.timeZone);
  tickets.forEach((t, i) => {
    const page = doc.addPage([...PAGE]);
    const width = PAGE[0] - 2 * MARGIN;
    let y = PAGE[1] - MARGIN;
    const text = (s: string, o: { size: number; bold?: boolean; color?: Color; maxLines?: number; minSize?: number; gap?: number }) => {
      y = drawBlock(page, s, { ...o, faces: o.bold ? faces.bold : faces.regular, x: MARGIN, top: y, width });
      y -= o.gap ?? 4;
    };
    text('ADMIT ONE', { size: 7.5, bold: true, color: MUTED, gap: 2 });
    drawRight(page, `Ticket ${i + 1} of ${tickets.length}`, faces.bold, 7.5, PAGE[0] - MARGIN, PAGE[1] - MARGIN - 7.5);
    text(eventName, { size: 16, bold: true, maxLines: 2, gap: 3 });
    text(event.venue, { size: 10, maxLines: 2, gap: 1 });
    text(when, { size: 10, gap: 8 });
    rule(page, y, width);
    y -= 10;
    text(booking.tierName, { size: 9, color: MUTED, maxLines: 1, gap: 2 });
    text(t.seat === null ? 'General admission' : `Seat ${t.seat}`, { size: 14, bold: true, maxLines: 1, minSize: 9, gap: 6 });
    text(holder, { size: 12, maxLines: 1, minSize: 8, gap: 2 });
    text(`Booking ${booking.bookingId}`, { size: 7, color: MUTED, maxLines: 2 });
    drawQr(page, qrMatrix(t.code), (PAGE[0] - QR_SIZE) / 2, MARGIN + 12, QR_SIZE);
    drawCentered(page, 'Show this code at the entrance', faces.regular, 7, PAGE[0] / 2, MARGIN);
  });
  return doc.save();
}

// ---------------------------------------------------------------------------------------------------------------------
// Fonts: bytes and coverage are read once per process and shared by every document.

type FontFile = { bytes: Uint8Array; cmap: ReadonlySet<number> };
type Face = { font: PDFFont; cmap: ReadonlySet<number> };
type FontFiles = { regular: FontFile; bold: FontFile; fallback: FontFile | null };

const fileCache = new Map<string, Promise<FontFile | null>>();
const require = createRequire(import.meta.url);

function loadFontFile(path: string): Promise<FontFile | null> {
  let p = fileCache.get(path);
  if (!p) {
    p = readFile(path).then(
      (buf) => {
        const magic = buf.subarray(0, 4).toString('latin1');
        if (magic === 'ttcf' || magic === 'OTTO') return null; // collection / CFF outlines: see FALLBACK_FONT_PATHS
        try {
          const f = fontkit.create(buf);
          return { bytes: new Uint8Array(buf), cmap: new Set(f.characterSet) };
        } catch {
          return null;
        }
      },
      () => null, // absent or unreadable: not installed here
    );
    fileCache.set(path, p);
  }
  return p;
}

/**
 * The fallback font `renderTicketsPdf` would use, or null when none is usable here (CJK then prints as U+FFFD).
 * Worth logging once at worker start.
 */
export async function resolveFallbackFont(paths: readonly string[] = FALLBACK_FONT_PATHS): Promise<string | null> {
  for (const path of paths) if (await loadFontFile(path)) return path;
  return null;
}

async function fontFiles(fallbackPaths: readonly string[]): Promise<FontFiles> {
  const dejavu = (name: string) => require.resolve(`dejavu-fonts-ttf/ttf/${name}`);
  const [regular, bold] = await Promise.all([loadFontFile(dejavu('DejaVuSans.ttf')), loadFontFile(dejavu('DejaVuSans-Bold.ttf'))]);
  if (!regular || !bold) throw new Error('renderTicketsPdf: DejaVu Sans is missing from node_modules/dejavu-fonts-ttf');
  let fallback: FontFile | null = null;
  for (const path of fallbackPaths) {
    fallback = await loadFontFile(path);
    if (fallback) break;
  }
  return { regular, bold, fallback };
}

// ---------------------------------------------------------------------------------------------------------------------
// Text: cleaning, font choice per grapheme, fitting to a width.

const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });
/** Format characters (bidi overrides, zero-width joiners, BOM, ...) and variation selectors: never drawn. */
const INVISIBLE = /[\p{Cf}\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;

/** NFC, controls and separators to spaces, whitespace collapsed. Keeps ZWJ so emoji sequences stay one grapheme. */
function clean(s: string): string {
  return s
    .normalize('NFC')
    .replace(/[\p{Cc}\p{Zl}\p{Zp}\s]+/gu, ' ')
    .trim();
}

const truncateChars = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}${ELLIPSIS}`);

function needsFallback(s: string, files: FontFiles): boolean {
  for (const ch of clean(s).replace(INVISIBLE, '')) {
    const cp = ch.codePointAt(0)!;
    if (!files.regular.cmap.has(cp) && !files.bold.cmap.has(cp)) return true;
  }
  return false;
}

/** One grapheme, its face, and its advance width at size 1 (widths scale linearly with the size). */
type Unit = { text: string; face: Face; w1: number; space: boolean };
type Run = { text: string; face: Face; w1: number };

/**
 * fontkit's layout, or null when it throws. @pdf-lib/fontkit 1.1.1 throws `ReferenceError: regeneratorRuntime is not
 * defined` for every script that goes through its Indic or Universal shaper (Tifinagh, Gujarati, ...; pdf-lib#1419).
 */
function advance(face: Face, text: string): number | null {
  try {
    return face.font.widthOfTextAtSize(text, 1);
  } catch {
    return null;
  }
}

/**
 * Splits `s` into graphemes, each set in the first face that has all of its characters and can lay it out,
 * else drawn as U+FFFD.
 */
function units(s: string, faces: readonly Face[]): Unit[] {
  const out: Unit[] = [];
  for (const { segment } of segmenter.segment(clean(s))) {
    if (out.length >= MAX_GRAPHEMES) break;
    const g = segment.replace(INVISIBLE, '');
    if (g === '') continue;
    const cps = Array.from(g, (c) => c.codePointAt(0)!);
    let unit: Unit | undefined;
    for (const face of faces) {
      const w1 = cps.every((cp) => face.cmap.has(cp)) ? advance(face, g) : null;
      if (w1 !== null) {
        unit = { text: g, face, w1, space: g === ' ' };
        break;
      }
    }
    out.push(unit ?? special(REPLACEMENT, faces));
  }
  return out;
}

/** U+FFFD or `…` in the first face that has it (DejaVu has both), else `?`. */
function special(ch: string, faces: readonly Face[]): Unit {
  for (const face of faces) {
    const w1 = face.cmap.has(ch.codePointAt(0)!) ? advance(face, ch) : null;
    if (w1 !== null) return { text: ch, face, w1, space: false };
  }
  return { text: '?', face: faces[0]!, w1: advance(faces[0]!, '?') ?? 0.5, space: false };
}

/**
 * Consecutive units in one face become one run, so fontkit shapes (and orders right-to-left text) across them.
 * A run fontkit cannot lay out as a whole is drawn grapheme by grapheme (each was laid out alone in `units`).
 */
function runs(line: readonly Unit[]): Run[] {
  const merged: Unit[][] = [];
  for (const u of line) {
    const last = merged[merged.length - 1];
    if (last && last[0]!.face === u.face) last.push(u);
    else merged.push([u]);
  }
  return merged.flatMap((us) => {
    if (us.length === 1) return [{ text: us[0]!.text, face: us[0]!.face, w1: us[0]!.w1 }];
    const text = us.map((u) => u.text).join('');
    const w1 = advance(us[0]!.face, text);
    return w1 !== null ? [{ text, face: us[0]!.face, w1 }] : us.map((u) => ({ text: u.text, face: u.face, w1: u.w1 }));
  });
}

const lineWidth = (line: readonly Unit[], size: number) => runs(line).reduce((w, r) => w + r.w1 * size, 0);

/** Greedy word wrap into at most `maxLines`; the last line ends in an ellipsis if text was left over. */
function wrap(all: Unit[], size: number, width: number, maxLines: number, faces: readonly Face[]): Unit[][] {
  const lines: Unit[][] = [];
  let rest = all;
  while (rest.length > 0 && lines.length < maxLines) {
    let n = 0;
    let w = 0;
    while (n < rest.length && w + rest[n]!.w1 * size <= width) {
      w += rest[n]!.w1 * size;
      n++;
    }
    if (n < rest.length) {
      const lastSpace = rest.slice(0, n + 1).map((u) => u.space).lastIndexOf(true);
      if (lastSpace > 0 && lines.length < maxLines - 1) n = lastSpace;
    }
    n = Math.max(n, 1); // a single grapheme wider than the line still goes somewhere
    let line = rest.slice(0, n);
    rest = rest.slice(n);
    while (rest[0]?.space) rest = rest.slice(1);
    while (line.length > 0 && line[line.length - 1]!.space) line = line.slice(0, -1);
    lines.push(line);
  }
  const last = lines[lines.length - 1];
  if (rest.length > 0 && last) {
    const ellipsis = special(ELLIPSIS, faces);
    let cut = last;
    while (cut.length > 0 && lineWidth([...cut, ellipsis], size) > width) cut = cut.slice(0, -1);
    lines[lines.length - 1] = [...cut, ellipsis];
  }
  return lines;
}

type Block = {
  size: number;
  faces: readonly Face[];
  x: number;
  top: number;
  width: number;
  maxLines?: number;
  minSize?: number;
  color?: Color;
};

/** Draws `s` below `top`, shrinking down to `minSize` before wrapping; returns the new top. */
function drawBlock(page: PDFPage, s: string, o: Block): number {
  const all = units(s, o.faces);
  let size = o.size;
  while (o.minSize !== undefined && size > o.minSize && lineWidth(all, size) > o.width) size = Math.max(o.minSize, size - 1);
  const lines = wrap(all, size, o.width, o.maxLines ?? 1, o.faces);
  let y = o.top;
  for (const line of lines) {
    y -= size;
    let x = o.x;
    for (const r of runs(line)) {
      page.drawText(r.text, { x, y, size, font: r.face.font, color: o.color ?? INK });
      x += r.w1 * size;
    }
    y -= size * 0.25;
  }
  return y;
}

function drawRight(page: PDFPage, s: string, faces: readonly Face[], size: number, right: number, y: number) {
  const rs = runs(units(s, faces));
  let x = right - rs.reduce((w, r) => w + r.w1 * size, 0);
  for (const r of rs) {
    page.drawText(r.text, { x, y, size, font: r.face.font, color: MUTED });
    x += r.w1 * size;
  }
}

function drawCentered(page: PDFPage, s: string, faces: readonly Face[], size: number, centre: number, y: number) {
  const w = runs(units(s, faces)).reduce((a, r) => a + r.w1 * size, 0);
  drawRight(page, s, faces, size, centre + w / 2, y);
}

function rule(page: PDFPage, y: number, width: number) {
  page.drawLine({ start: { x: MARGIN, y }, end: { x: MARGIN + width, y }, thickness: 0.5, color: MUTED, dashArray: [2, 2] });
}

/**
 * The QR code as one filled path: a rectangle per horizontal run of dark modules, inside a marked-content sequence
 * `/FloodgateQR BMC … EMC`. One path means no hairline seams between modules in any renderer. The page is white, so
 * the quiet zone is the blank margin around it (at least 4 modules at this size).
 */
function drawQr(page: PDFPage, m: boolean[][], x0: number, y0: number, size: number) {
  const cell = size / m.length;
  const ops = [beginMarkedContent(QR_MARKED_CONTENT_TAG), pushGraphicsState(), setFillingGrayscaleColor(0)];
  m.forEach((row, r) => {
    for (let c = 0; c < row.length; ) {
      if (!row[c]) {
        c++;
        continue;
      }
      const start = c;
      while (c < row.length && row[c]) c++;
      ops.push(rectangle(x0 + start * cell, y0 + size - (r + 1) * cell, (c - start) * cell, cell));
    }
  });
  ops.push(fill(), popGraphicsState(), endMarkedContent());
  page.pushOperators(...ops);
}

// ---------------------------------------------------------------------------------------------------------------------
// Dates

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/**
 * The start time as printed on the ticket, never in the server's own time zone: in `timeZone` when given and valid,
 * else the wall time written in the ISO string with its offset (`Sat 12 Jul 2025, 20:00 (UTC+02:00)`), else the
 * string itself.
 */
export function formatStartsAt(startsAt: string, timeZone?: string): string {
  const s = startsAt.trim();
  const m = ISO.exec(s);
  if (timeZone && m?.[4] !== undefined && m[7] !== undefined) {
    const d = new Date(s);
    try {
      if (!Number.isNaN(d.getTime())) {
        const parts = new Intl.DateTimeFormat('en-GB', {
          timeZone,
          weekday: 'short',
          day: 'numeric',
          month: 'short',
          year: 'numeric',
          hour: '2-digit',
          minute: '2-digit',
          hourCycle: 'h23',
          timeZoneName: 'short',
        }).formatToParts(d);
        const p = (t: Intl.DateTimeFormatPartTypes) => parts.find((x) => x.type === t)?.value ?? '';
        return `${p('weekday')} ${p('day')} ${p('month')} ${p('year')}, ${p('hour')}:${p('minute')} (${p('timeZoneName')})`;
      }
    } catch {
      // unknown time zone: fall through to the offset written in the string
    }
  }
  if (!m) return s;
  const [, y, mo, d, hh, mm, , zone] = m;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCMonth() !== Number(mo) - 1) return s; // 2025-02-31 and friends
  const date = `${DAYS[day.getUTCDay()]} ${Number(d)} ${MONTHS[day.getUTCMonth()]} ${y}`;
  if (hh === undefined) return date;
  if (zone === undefined) return `${date}, ${hh}:${mm}`;
  if (zone.toUpperCase() === 'Z') return `${date}, ${hh}:${mm} (UTC)`;
  const z = zone.replace(':', ''); // +02, +0200 or +02:00
  return `${date}, ${hh}:${mm} (UTC${z.slice(0, 3)}:${z.length === 5 ? z.slice(3) : '00'})`;
}
