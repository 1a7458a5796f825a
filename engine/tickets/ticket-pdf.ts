import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { deflateSync } from 'node:zlib';
import fontkit, { type Font } from '@pdf-lib/fontkit';
import {
  PDFContext,
  PDFDict,
  PDFDocument,
  PDFFlateStream,
  PDFObjectCopier,
  PDFName,
  PDFOperator,
  PDFOperatorNames,
  PDFRawStream,
  type PDFRef,
  beginMarkedContent,
  beginText,
  endText,
  concatTransformationMatrix,
  endMarkedContent,
  popGraphicsState,
  pushGraphicsState,
  rgb,
  setFillingGrayscaleColor,
  type RGB,
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
 *
 * Cost: about 4 ms of CPU for a booking of three tickets (it was about 50 ms; `npm run bench:pdf`). What makes it
 * cheap is what the process keeps between documents: the parsed fonts and their layouts (`shareFont`), the written
 * font subsets, by glyph list (`embedCached`), and the QR mask tables (`maskLayers`); and within one document the
 * text split into graphemes (`units`). The caches are bounded. Every thread has its own (`ticket-pdf-pool.ts`).
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

/**
 * The QR modules for `code` (byte mode, error correction M, the mask with the lowest penalty), row by row from the
 * top; `true` is dark.
 *
 * The same symbol as `QRCode.create([{ data: code, mode: 'byte' }], { errorCorrectionLevel: 'M' })`, several times
 * faster: the library builds the symbol once and then scores the eight masks reading the matrix through a method call
 * per module; here the symbol is built once (mask 0), unmasked, and each mask is applied, given its format bits and
 * scored on the raw module bytes with the library's penalty rules (ISO/IEC 18004 §7.8.3). Byte mode: a ticket code
 * mixes cases, so the library's segment optimiser (a shortest-path search per code) gains nothing for it.
 */
export function qrMatrix(code: string): boolean[][] {
  const { modules } = QRCode.create([{ data: utf8.encode(code), mode: 'byte' }], { errorCorrectionLevel: 'M', maskPattern: 0 });
  const { size, data } = modules;
  const masks = maskLayers(size, modules.reservedBit);
  const cells = size * size;
  const plain = new Uint8Array(cells);
  const mask0 = masks[0]!;
  for (let k = 0; k < cells; k++) plain[k] = data[k]! ^ mask0[k]!;
  let best = data;
  let lowest = Infinity;
  for (let mask = 0; mask < 8; mask++) {
    const layer = masks[mask]!;
    const m = new Uint8Array(cells);
    for (let k = 0; k < cells; k++) m[k] = plain[k]! ^ layer[k]!;
    setFormatBits(m, size, mask);
    const penalty = qrPenalty(m, size);
    if (penalty < lowest) [lowest, best] = [penalty, m];
  }
  const rows: boolean[][] = [];
  for (let r = 0; r < size; r++) {
    const row: boolean[] = new Array<boolean>(size);
    for (let c = 0; c < size; c++) row[c] = best[r * size + c] === 1;
    rows.push(row);
  }
  return rows;
}

const utf8 = new TextEncoder();

/**
 * Per symbol size: for each mask, 1 where it flips a module. The function modules (finder, timing, alignment,
 * format and version areas) are never masked, and where they are depends on the version only, that is on the size.
 */
const maskCache = new Map<number, Uint8Array[]>();

function maskLayers(size: number, reserved: Uint8Array): Uint8Array[] {
  let layers = maskCache.get(size);
  if (!layers) {
    layers = MASKS.map((at) => {
      const layer = new Uint8Array(size * size);
      for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) layer[i * size + j] = !reserved[i * size + j] && at(i, j) ? 1 : 0;
      return layer;
    });
    maskCache.set(size, layers);
  }
  return layers;
}

/** The eight data masks: is module (row i, column j) flipped. */
const MASKS: readonly ((i: number, j: number) => boolean)[] = [
  (i, j) => (i + j) % 2 === 0,
  (i) => i % 2 === 0,
  (_i, j) => j % 3 === 0,
  (i, j) => (i + j) % 3 === 0,
  (i, j) => (Math.floor(i / 2) + Math.floor(j / 3)) % 2 === 0,
  (i, j) => ((i * j) % 2) + ((i * j) % 3) === 0,
  (i, j) => (((i * j) % 2) + ((i * j) % 3)) % 2 === 0,
  (i, j) => (((i * j) % 3) + ((i + j) % 2)) % 2 === 0,
];

/** Writes the 15 format bits (error correction M, `mask`, BCH(15,5), XOR 0x5412) into both copies, as qrcode does. */
function setFormatBits(m: Uint8Array, size: number, mask: number): void {
  const dataBits = (0b00 << 3) | mask; // 0b00: level M
  const digits = (n: number) => 32 - Math.clz32(n);
  let d = dataBits << 10;
  while (digits(d) - 11 >= 0) d ^= 0b10100110111 << (digits(d) - 11);
  const bits = ((dataBits << 10) | d) ^ 0b101010000010010;
  for (let i = 0; i < 15; i++) {
    const bit = (bits >> i) & 1;
    const row = i < 6 ? i : i < 8 ? i + 1 : size - 15 + i;
    m[row * size + 8] = bit;
    const col = i < 8 ? size - i - 1 : i < 9 ? 15 - i : 15 - i - 1;
    m[8 * size + col] = bit;
  }
}

/** The mask penalty of a symbol (N1 runs, N2 blocks, N3 finder-like patterns, N4 balance), as the qrcode library scores it. */
export function qrPenalty(m: Uint8Array, size: number): number {
  let n1 = 0;
  let n2 = 0;
  let n3 = 0;
  let dark = 0;
  for (let i = 0; i < size; i++) {
    let runRow = 0;
    let runCol = 0;
    let lastRow = -1;
    let lastCol = -1;
    let bitsRow = 0;
    let bitsCol = 0;
    for (let j = 0; j < size; j++) {
      const a = m[i * size + j]!; // along row i
      const b = m[j * size + i]!; // down column i
      dark += a;
      if (a === lastRow) runRow++;
      else {
        if (runRow >= 5) n1 += 3 + runRow - 5;
        lastRow = a;
        runRow = 1;
      }
      if (b === lastCol) runCol++;
      else {
        if (runCol >= 5) n1 += 3 + runCol - 5;
        lastCol = b;
        runCol = 1;
      }
      bitsRow = ((bitsRow << 1) & 0x7ff) | a;
      bitsCol = ((bitsCol << 1) & 0x7ff) | b;
      if (j >= 10 && (bitsRow === 0x5d0 || bitsRow === 0x05d)) n3++;
      if (j >= 10 && (bitsCol === 0x5d0 || bitsCol === 0x05d)) n3++;
      if (i < size - 1 && j < size - 1) {
        const sum = a + m[i * size + j + 1]! + m[(i + 1) * size + j]! + m[(i + 1) * size + j + 1]!;
        if (sum === 0 || sum === 4) n2++;
      }
    }
    if (runRow >= 5) n1 += 3 + runRow - 5;
    if (runCol >= 5) n1 += 3 + runCol - 5;
  }
  const n4 = Math.abs(Math.ceil((dark * 100) / (size * size) / 5) - 10);
  return n1 + n2 * 3 + n3 * 40 + n4 * 10;
}

/** Renders one page per ticket. Throws only for a caller bug: no tickets, or a code too long for a QR code. */
export async function renderTicketsPdf(input: TicketPdfInput, options: TicketPdfOptions = {}): Promise<Uint8Array> {
  const { event, booking, tickets } = input;
  if (tickets.length === 0) throw new Error('renderTicketsPdf: no tickets');
  const files = await fontFiles(options.fallbackFontPaths ?? FALLBACK_FONT_PATHS);

  const doc = await PDFDocument.create({ updateMetadata: false });
  doc.registerFontkit(sharedFontkit);
  // font files and ToUnicode maps: node's zlib instead of pako (see `deflateStreams`); written once per glyph list
  doc.context.flateStream = (contents, dict = {}) =>
    doc.context.stream(deflateSync(typeof contents === 'string' ? Buffer.from(contents, 'latin1') : contents, FONT_ZLIB), { ...dict, Filter: 'FlateDecode' });
  const regular = await embedCached(doc, files.regular);
  const bold = await embedCached(doc, files.bold);
  const strings = [event.name, event.venue, event.startsAt, booking.tierName, booking.holderName, booking.bookingId];
  const needed = files.fallback && [...strings, ...tickets.map((t) => t.seat ?? '')].some((s) => needsFallback(s, files));
  // Embedded only when some text needs it: a CJK font adds to the file even as a subset.
  const extra: Face[] = files.fallback && needed ? [{ font: await embedCached(doc, files.fallback), file: files.fallback }] : [];
  const faces = {
    regular: [{ font: regular, file: files.regular }, ...extra],
    bold: [{ font: bold, file: files.bold }, { font: regular, file: files.regular }, ...extra],
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
    const text = (s: string, o: { size: number; bold?: boolean; color?: RGB; maxLines?: number; minSize?: number; gap?: number }) => {
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
    // a standing ticket of a tier that is itself called "General admission" says so once, on the seat line
    if (t.seat !== null || !GENERAL_ADMISSION.test(clean(booking.tierName))) text(booking.tierName, { size: 9, color: MUTED, maxLines: 1, gap: 2 });
    text(seatLine(t.seat), { size: 14, bold: true, maxLines: 1, minSize: 9, gap: 6 });
    text(holder, { size: 12, maxLines: 1, minSize: 8, gap: 2 });
    text(`Booking ${booking.bookingId}`, { size: 7, color: MUTED, maxLines: 2 });
    drawQr(page, qrMatrix(t.code), (PAGE[0] - QR_SIZE) / 2, MARGIN + 12, QR_SIZE);
    drawCentered(page, 'Show this code at the entrance', faces.regular, 7, PAGE[0] / 2, MARGIN);
  });
  await doc.flush(); // embeds the font subsets, so their streams exist for `deflateStreams`
  deflateStreams(doc);
  // no object streams (pdf-lib would compress those with pako again), no AcroForm (there are no fields)
  return doc.save({ useObjectStreams: false, updateFieldAppearances: false });
}

/**
 * Compresses every stream pdf-lib left marked for Flate (the page contents) with node's zlib, several times faster
 * than the pure-JS pako pdf-lib would use when writing. Level 1: a page's text and QR path compress about as well as
 * at the default level 6 (a few per cent larger), at less than half the time. Font files and ToUnicode maps are
 * compressed when embedded (the `flateStream` of `renderTicketsPdf`), at the default level, and then cached.
 */
const CONTENT_ZLIB = { level: 1 };
const FONT_ZLIB = { level: 6 };

function deflateStreams(doc: PDFDocument): void {
  const flate = PDFName.of('FlateDecode');
  for (const [ref, obj] of doc.context.enumerateIndirectObjects()) {
    if (obj instanceof PDFFlateStream && obj.dict.get(PDFName.of('Filter')) === flate) {
      doc.context.assign(ref, PDFRawStream.of(obj.dict, deflateSync(obj.getUnencodedContents(), CONTENT_ZLIB)));
    }
  }
}

const GENERAL_ADMISSION = /^general\s+admission$/i;

/**
 * The seat as a person reads it: `A-1-10` (section-row-seat, as the catalog names seats) is "Section A, Row 1,
 * Seat 10"; a seat id of another shape is printed as it is after "Seat"; none is general admission.
 */
export function seatLine(seat: string | null): string {
  if (seat === null) return 'General admission';
  const m = /^(.+)-(\d+)-(\d+)$/.exec(seat.trim());
  return m ? `Section ${m[1]}, Row ${m[2]}, Seat ${m[3]}` : `Seat ${seat}`;
}

// ---------------------------------------------------------------------------------------------------------------------
// Embedded fonts: cached by glyph list.

/**
 * Writing a font subset into a PDF (fontkit encodes the TrueType subset, pdf-lib adds widths and a ToUnicode map,
 * zlib compresses them) was half of what a ticket PDF cost. What pdf-lib writes depends only on the font file and
 * the subset's glyphs in the order they were first used. So each DejaVu subset starts with every printable ASCII
 * glyph in a fixed order (`PRESET`); only glyphs beyond ASCII (an accented letter of the venue or the holder's name,
 * Cyrillic, ...) extend it, in the order the page uses them. Documents with the same glyph list (every all-ASCII
 * booking of an event, and most others) then get a copy of the font objects written the first time, instead of
 * writing them again. Costs a few KiB per PDF (about 95 glyphs per font instead of the 30-60 used).
 */
const PRESET = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join(' '); // spaces: no ligatures
const MAX_CACHED_SUBSETS = 300;

type Embedder = { glyphs: { id: number }[]; embedIntoContext(context: PDFContext, ref?: PDFRef): Promise<PDFRef> };
type CachedSubset = { context: PDFContext; dict: PDFDict };
const subsetCache = new WeakMap<FontFile, Map<string, CachedSubset>>();

async function embedCached(doc: PDFDocument, file: FontFile): Promise<PDFFont> {
  const font = await doc.embedFont(file.bytes, { subset: true });
  const embedder = (font as unknown as { embedder: Embedder }).embedder;
  if (file.plainAscii) font.encodeText(PRESET);
  let cache = subsetCache.get(file);
  if (!cache) subsetCache.set(file, (cache = new Map()));
  const subsets = cache;
  const write = embedder.embedIntoContext.bind(embedder);
  // pdf-lib calls this once, when the document is saved; the glyph list is complete then
  embedder.embedIntoContext = async (context, ref) => {
    const key = embedder.glyphs.map((g) => g.id).join(',');
    const hit = subsets.get(key);
    if (hit && ref) {
      context.assign(ref, PDFObjectCopier.for(hit.context, context).copy(hit.dict));
      return ref;
    }
    const out = await write(context, ref);
    const store = PDFContext.create();
    if (subsets.size >= MAX_CACHED_SUBSETS) subsets.delete(subsets.keys().next().value!);
    subsets.set(key, { context: store, dict: PDFObjectCopier.for(context, store).copy(context.lookup(out, PDFDict)) });
    return out;
  };
  return font;
}

// ---------------------------------------------------------------------------------------------------------------------
// Fonts: bytes and coverage are read once per process and shared by every document.

/**
 * `kit`: the shared fontkit font (see `parsed`); `widths`: advance width at size 1 of each string measured so far
 * (a width depends on the font file only, so every document shares them).
 */
type FontFile = { bytes: Uint8Array; cmap: ReadonlySet<number>; kit: Font; widths: Map<string, number | null>; plainAscii: boolean };
/** A font file as embedded in one document (`font`). */
type Face = { font: PDFFont; file: FontFile };
type FontFiles = { regular: FontFile; bold: FontFile; fallback: FontFile | null };

const fileCache = new Map<string, Promise<FontFile | null>>();

/**
 * The parsed fontkit font of each font file, shared by every document. pdf-lib calls `fontkit.create(bytes)` for each
 * `embedFont`; a fresh font object decodes its tables (cmap, GSUB, GPOS, glyphs) again on first use, which was most
 * of the time a ticket PDF took. A fontkit font is safe to share: layout and `createSubset()` do not change it (they
 * only fill its caches), and every document gets its own subset.
 *
 * Its `layout` is memoised per string, too: pdf-lib lays out a string once to measure it and again to draw it, and
 * most strings on a ticket (labels, event, venue, date, tier) are the same on every ticket of an event. pdf-lib only
 * reads the glyph run it gets back.
 */
const parsed = new WeakMap<Uint8Array, Font>();
const MAX_CACHED_LAYOUTS = 2_000;

function shareFont(bytes: Uint8Array, font: Font, plainAscii: boolean): Font {
  // fontkit caches one glyph object per glyph id, with the code points it was first created for; pdf-lib builds the
  // ToUnicode map (what copy and search read) from them. A glyph first created as a component of an accented glyph
  // while a subset was written would have none, and copy the text without that letter in every later document.
  // So every glyph the cmap reaches is created first, with its code point.
  for (const cp of font.characterSet) font.glyphForCodePoint(cp);
  const layouts = new Map<string, ReturnType<Font['layout']>>();
  const shared: Font = Object.create(font);
  shared.layout = (text, ...rest) => {
    if (rest.length > 0 && rest.some((a) => a !== undefined)) return font.layout(text, ...rest);
    let run = layouts.get(text);
    if (!run) {
      // A full layout costs ~0.3 ms even for a short string (feature plan, GSUB, GPOS); in DejaVu Sans printable
      // ASCII maps one character to one glyph except the f-ligatures, so those strings take the cmap's glyphs
      // directly (`ticket-pdf.test.ts` checks this against the real layout). pdf-lib reads only `glyphs`.
      run = plainAscii && PLAIN_ASCII.test(text) && !F_LIGATURE.test(text)
        ? ({ glyphs: font.glyphsForString(text) } as ReturnType<Font['layout']>)
        : font.layout(text);
      if (layouts.size >= MAX_CACHED_LAYOUTS) layouts.clear();
      layouts.set(text, run);
    }
    return run;
  };
  parsed.set(bytes, shared);
  return shared;
}

const PLAIN_ASCII = /^[\x20-\x7e]*$/;
const F_LIGATURE = /f[fil]/;

const sharedFontkit = {
  create: (bytes: Uint8Array, name?: string) => parsed.get(bytes) ?? fontkit.create(bytes, name),
} as unknown as Parameters<PDFDocument['registerFontkit']>[0];

const require = createRequire(import.meta.url);

function loadFontFile(path: string, plainAscii = false): Promise<FontFile | null> {
  let p = fileCache.get(path);
  if (!p) {
    p = readFile(path).then(
      (buf) => {
        const magic = buf.subarray(0, 4).toString('latin1');
        if (magic === 'ttcf' || magic === 'OTTO') return null; // collection / CFF outlines: see FALLBACK_FONT_PATHS
        try {
          const bytes = new Uint8Array(buf);
          const f = fontkit.create(bytes);
          return { bytes, cmap: new Set(f.characterSet), kit: shareFont(bytes, f, plainAscii), widths: new Map(), plainAscii };
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
  const [regular, bold] = await Promise.all([loadFontFile(dejavu('DejaVuSans.ttf'), true), loadFontFile(dejavu('DejaVuSans-Bold.ttf'), true)]);
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
function advance(file: FontFile, text: string): number | null {
  const { kit, widths } = file;
  let w = widths.get(text);
  if (w === undefined) {
    try {
      // what pdf-lib's widthOfTextAtSize(text, 1) computes, without going through one document's font
      w = kit.layout(text).glyphs.reduce((sum, g) => sum + g.advanceWidth, 0) / kit.unitsPerEm;
    } catch {
      w = null;
    }
    if (widths.size >= MAX_CACHED_LAYOUTS) widths.clear();
    widths.set(text, w);
  }
  return w;
}

/**
 * Splits `s` into graphemes, each set in the first face that has all of its characters and can lay it out,
 * else drawn as U+FFFD.
 */
function units(s: string, faces: readonly Face[]): Unit[] {
  let memo = unitMemo.get(faces);
  if (!memo) unitMemo.set(faces, (memo = new Map()));
  let out = memo.get(s);
  if (!out) memo.set(s, (out = splitUnitsShared(s, faces).map((u) => ({ text: u.text, face: faces[u.face]!, w1: u.w1, space: u.space }))));
  return out;
}

/**
 * Per face list (so per document: the faces hold its fonts), the units of each string drawn: every page of a booking
 * repeats the event, venue, date, tier, holder and booking id. Callers never change a unit list.
 */
const unitMemo = new WeakMap<readonly Face[], Map<string, Unit[]>>();

/**
 * The split itself depends only on the font files, not on a document's fonts: across documents, per list of files,
 * each string's units with the index of their face in the list. Every ticket of an event prints the same event name,
 * venue, date, tier and labels; splitting them into graphemes (Intl.Segmenter) and looking up each one's face was
 * about a tenth of a PDF's CPU when done again for every document.
 */
type SharedUnit = { text: string; face: number; w1: number; space: boolean };
const sharedUnits = new Map<string, Map<string, SharedUnit[]>>();
const fileIds = new WeakMap<FontFile, number>();
let lastFileId = 0;
const MAX_SHARED_STRINGS = 5_000;

function splitUnitsShared(s: string, faces: readonly Face[]): SharedUnit[] {
  const key = faces
    .map(({ file }) => {
      let id = fileIds.get(file);
      if (id === undefined) fileIds.set(file, (id = ++lastFileId));
      return id;
    })
    .join(',');
  let byString = sharedUnits.get(key);
  if (!byString) sharedUnits.set(key, (byString = new Map()));
  let out = byString.get(s);
  if (!out) {
    if (byString.size >= MAX_SHARED_STRINGS) byString.clear();
    byString.set(s, (out = splitUnits(s, faces.map((f) => f.file))));
  }
  return out;
}

function splitUnits(s: string, files: readonly FontFile[]): SharedUnit[] {
  const out: SharedUnit[] = [];
  const text = clean(s);
  // printable ASCII is one grapheme per character (CR LF, the one cluster of two, is gone after `clean`): no segmenter
  for (const piece of PLAIN_ASCII.test(text) ? text : segmenter.segment(text)) {
    if (out.length >= MAX_GRAPHEMES) break;
    const g = (typeof piece === 'string' ? piece : piece.segment).replace(INVISIBLE, '');
    if (g === '') continue;
    const cps = Array.from(g, (c) => c.codePointAt(0)!);
    let unit: SharedUnit | undefined;
    for (let face = 0; face < files.length; face++) {
      const file = files[face]!;
      const w1 = cps.every((cp) => file.cmap.has(cp)) ? advance(file, g) : null;
      if (w1 !== null) {
        unit = { text: g, face, w1, space: g === ' ' };
        break;
      }
    }
    out.push(unit ?? specialIn(REPLACEMENT, files));
  }
  return out;
}

/** U+FFFD or `…` in the first face that has it (DejaVu has both), else `?`. */
function special(ch: string, faces: readonly Face[]): Unit {
  const u = specialIn(ch, faces.map((f) => f.file));
  return { ...u, face: faces[u.face]! };
}

function specialIn(ch: string, files: readonly FontFile[]): SharedUnit {
  for (let face = 0; face < files.length; face++) {
    const file = files[face]!;
    const w1 = file.cmap.has(ch.codePointAt(0)!) ? advance(file, ch) : null;
    if (w1 !== null) return { text: ch, face, w1, space: false };
  }
  return { text: '?', face: 0, w1: advance(files[0]!, '?') ?? 0.5, space: false };
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
    const w1 = advance(us[0]!.face.file, text);
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
  color?: RGB;
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
      show(page, r.face.font, r.text, x, y, size, o.color ?? INK);
      x += r.w1 * size;
    }
    y -= size * 0.25;
  }
  return y;
}

/** Each page's resource name of each font it uses (pdf-lib's drawText adds a new name for every call). */
const fontKeys = new WeakMap<PDFPage, Map<PDFFont, string>>();
const num = (v: number) => String(Math.round(v * 1000) / 1000);

/**
 * One run of text at (x, y): the operators pdf-lib's `drawText` writes, built from strings (pdf-lib would make an
 * object per number, and measure and split the text again), with one font resource name per page and font.
 */
function show(page: PDFPage, font: PDFFont, text: string, x: number, y: number, size: number, color: RGB) {
  let keys = fontKeys.get(page);
  if (!keys) fontKeys.set(page, (keys = new Map()));
  let key = keys.get(font);
  if (!key) keys.set(font, (key = page.node.newFontDictionary(font.name, font.ref).asString()));
  page.pushOperators(
    pushGraphicsState(),
    beginText(),
    PDFOperator.of(PDFOperatorNames.NonStrokingColorRgb, [`${num(color.red)} ${num(color.green)} ${num(color.blue)}`]),
    PDFOperator.of(PDFOperatorNames.SetFontAndSize, [key, num(size)]),
    PDFOperator.of(PDFOperatorNames.SetTextMatrix, [`1 0 0 1 ${num(x)} ${num(y)}`]),
    PDFOperator.of(PDFOperatorNames.ShowText, [font.encodeText(text)]),
    endText(),
    popGraphicsState(),
  );
}

function drawRight(page: PDFPage, s: string, faces: readonly Face[], size: number, right: number, y: number) {
  const rs = runs(units(s, faces));
  let x = right - rs.reduce((w, r) => w + r.w1 * size, 0);
  for (const r of rs) {
    show(page, r.face.font, r.text, x, y, size, MUTED);
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
  const n = m.length;
  // In module units (one module = 1 × 1, row 0 at the top, from `cm`): integer coordinates, so neighbouring rectangles
  // share exact edges, and the path is short to write and to compress.
  const path: string[] = [];
  m.forEach((row, r) => {
    for (let c = 0; c < n; ) {
      if (!row[c]) {
        c++;
        continue;
      }
      const start = c;
      while (c < n && row[c]) c++;
      path.push(`${start} ${n - 1 - r} ${c - start} 1 re`);
    }
  });
  const cell = size / n;
  page.pushOperators(
    beginMarkedContent(QR_MARKED_CONTENT_TAG),
    pushGraphicsState(),
    concatTransformationMatrix(cell, 0, 0, cell, x0, y0),
    setFillingGrayscaleColor(0),
    // the path as one operand string: pdf-lib would otherwise build four number objects per rectangle
    PDFOperator.of(PDFOperatorNames.FillNonZero, [path.join('\n')]),
    popGraphicsState(),
    endMarkedContent(),
  );
}

// ---------------------------------------------------------------------------------------------------------------------
// Dates

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/** One formatter per time zone (building one costs more than a whole ticket page). Throws for an unknown zone. */
function zoneFormat(timeZone: string): Intl.DateTimeFormat {
  let f = zoneFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      weekday: 'short',
      day: 'numeric',
      month: 'short',
      year: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    });
    if (zoneFormats.size >= 1000) zoneFormats.clear();
    zoneFormats.set(timeZone, f);
  }
  return f;
}

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
        const parts = zoneFormat(timeZone).formatToParts(d);
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
