import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fontkit from '@pdf-lib/fontkit';
import fc from 'fast-check';
import QRCode from 'qrcode';
import { PDFArray, PDFDict, PDFDocument, PDFName, decodePDFRawStream, type PDFObject, type PDFRawStream } from 'pdf-lib';
import { describe, expect, it } from 'vitest';
import { formatStartsAt, qrMatrix, renderTicketsPdf, resolveFallbackFont, type TicketPdfInput } from './ticket-pdf.js';

/*
 * How the text is checked: pdf-lib cannot extract text, so `readPdf` does what a PDF reader's copy/search does.
 * It inflates each page's content stream, follows the `Tf` / `Tm` / `<hex> Tj` operators pdf-lib writes, and maps the
 * glyph ids back to Unicode through each font's own /ToUnicode CMap. Text that reads back correctly was really drawn
 * with glyphs the reader can name; metadata (also asserted) only proves what was put in the Info dictionary.
 */
type TextRun = { text: string; x: number; y: number; size: number; baseFont: string };
type Rect = { x: number; y: number; w: number; h: number };
type PageContent = { runs: TextRun[]; lines: string[]; qr: Rect[]; width: number; height: number };

const decode = (o: PDFObject | undefined) => Buffer.from(decodePDFRawStream(o as PDFRawStream).decode()).toString('latin1');

function parseToUnicode(cmap: string): Map<number, string> {
  const map = new Map<number, string>();
  for (const block of cmap.matchAll(/beginbfchar([\s\S]*?)endbfchar/g)) {
    for (const [, gid, uni] of block[1]!.matchAll(/<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]*)>/g)) {
      const units = (uni!.match(/.{4}/g) ?? []).map((h) => parseInt(h, 16));
      map.set(parseInt(gid!, 16), String.fromCharCode(...units));
    }
  }
  return map;
}

async function readPdf(bytes: Uint8Array): Promise<{ doc: PDFDocument; pages: PageContent[] }> {
  const doc = await PDFDocument.load(bytes);
  const pages = doc.getPages().map((page) => {
    const fonts = new Map<string, { toUnicode: Map<number, string>; baseFont: string }>();
    const fontDict = page.node.Resources()!.lookup(PDFName.of('Font'), PDFDict);
    for (const [name, ref] of fontDict.entries()) {
      const font = doc.context.lookup(ref, PDFDict);
      fonts.set(name.asString(), {
        toUnicode: parseToUnicode(decode(doc.context.lookup(font.get(PDFName.of('ToUnicode'))))),
        baseFont: font.get(PDFName.of('BaseFont'))!.toString(),
      });
    }
    const contents = page.node.Contents()!;
    const streams = contents instanceof PDFArray ? contents.asArray().map((r) => doc.context.lookup(r)) : [contents];
    const content = streams.map(decode).join('\n');

    const runs: TextRun[] = [];
    let font: { toUnicode: Map<number, string>; baseFont: string } | undefined;
    let size = 0;
    let x = 0;
    let y = 0;
    for (const m of content.matchAll(/(\/\S+) ([\d.]+) Tf|1 0 0 1 ([\d.-]+) ([\d.-]+) Tm|<([0-9A-Fa-f]*)> Tj/g)) {
      if (m[1]) [font, size] = [fonts.get(m[1]), Number(m[2])];
      else if (m[3]) [x, y] = [Number(m[3]), Number(m[4])];
      else {
        const gids = (m[5]!.match(/.{4}/g) ?? []).map((h) => parseInt(h, 16));
        runs.push({ text: gids.map((g) => font!.toUnicode.get(g) ?? '\u0000').join(''), x, y, size, baseFont: font!.baseFont });
      }
    }
    const ys = [...new Set(runs.map((r) => r.y))].sort((a, b) => b - a);
    const lines = ys.map((ly) =>
      runs
        .filter((r) => r.y === ly)
        .sort((a, b) => a.x - b.x)
        .map((r) => r.text)
        .join(''),
    );
    const qrOps = /\/FloodgateQR BMC([\s\S]*?)EMC/.exec(content)?.[1] ?? '';
    // the rectangles in page coordinates, through the `a 0 0 d e f cm` (scale and move) the QR block may set
    const [a, , , d, e, f] = /((?:[\d.-]+ ){6})cm/.exec(qrOps)?.[1]!.trim().split(' ').map(Number) ?? [1, 0, 0, 1, 0, 0];
    const qr = [...qrOps.matchAll(/([\d.-]+) ([\d.-]+) ([\d.-]+) ([\d.-]+) re/g)].map((r) => ({
      x: a! * Number(r[1]) + e!, y: d! * Number(r[2]) + f!, w: a! * Number(r[3]), h: d! * Number(r[4]),
    }));
    const { width, height } = page.getSize();
    return { runs, lines, qr, width, height };
  });
  return { doc, pages };
}

/** Turns the QR rectangles back into a module matrix (row 0 at the top). */
function rasterize(rects: Rect[]): boolean[][] {
  const cell = Math.min(...rects.map((r) => r.h));
  const left = Math.min(...rects.map((r) => r.x));
  const top = Math.max(...rects.map((r) => r.y + r.h));
  const n = Math.round((Math.max(...rects.map((r) => r.x + r.w)) - left) / cell);
  const m = Array.from({ length: n }, () => Array.from({ length: n }, () => false));
  for (const r of rects) {
    const row = Math.round((top - (r.y + r.h)) / cell);
    const c0 = Math.round((r.x - left) / cell);
    for (let c = c0; c < c0 + Math.round(r.w / cell); c++) m[row]![c] = true;
  }
  return m;
}

const CODE_1 = 'FG1.bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1~1~A-12-7.Xk1Xk1Xk1Xk1Xk1Xk1Xk1Xk1';
const CODE_2 = 'FG1.bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1~2.Yb2Yb2Yb2Yb2Yb2Yb2Yb2Yb2';
const input = (holderName: string, over: Partial<TicketPdfInput['event']> = {}): TicketPdfInput => ({
  event: { name: 'Floodgate Live — Night 2', venue: 'Olympiahalle, München', startsAt: '2025-07-12T20:00:00+02:00', ...over },
  booking: { bookingId: 'bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1', tierName: 'Floor standing', holderName, holderEmail: 'zoe@example.test' },
  tickets: [
    { seat: 'A-12-7', code: CODE_1 },
    { seat: null, code: CODE_2 },
  ],
});
const resolve = createRequire(import.meta.url).resolve;
const NOT_A_FONT = fileURLToPath(import.meta.url);
const MATH_FONT = resolve('dejavu-fonts-ttf/ttf/DejaVuMathTeXGyre.ttf');
const DEJAVU = fontkit.create(readFileSync(resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf')));
const DEJAVU_BOLD = fontkit.create(readFileSync(resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf')));
const QR_BOTTOM = 32;
const QR_TOP = QR_BOTTOM + 160;

describe('renderTicketsPdf', () => {
  describe('for a booking of two tickets', () => {
    it('is a PDF with one A6 page per ticket', async () => {
      const bytes = await renderTicketsPdf(input('Zoë Müller'));
      expect(Buffer.from(bytes.subarray(0, 5)).toString('latin1')).toBe('%PDF-');
      const { doc, pages } = await readPdf(bytes);
      expect(doc.getPageCount()).toBe(2);
      for (const p of pages) {
        expect(p.width).toBeCloseTo(297.64, 1);
        expect(p.height).toBeCloseTo(419.53, 1);
      }
    });

    it('draws every field as text a reader can extract', async () => {
      const { pages } = await readPdf(await renderTicketsPdf(input('Zoë Müller')));
      expect(pages[0]!.lines).toEqual([
        'ADMIT ONETicket 1 of 2',
        'Floodgate Live — Night 2',
        'Olympiahalle, München',
        'Sat 12 Jul 2025, 20:00 (UTC+02:00)',
        'Floor standing',
        'Section A, Row 12, Seat 7',
        'Zoë Müller',
        'Booking bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1',
        'Show this code at the entrance',
      ]);
      expect(pages[1]!.lines).toContain('General admission');
      expect(pages[1]!.lines[0]).toBe('ADMIT ONETicket 2 of 2');
    });

    it('puts event and holder in the document metadata', async () => {
      const doc = await PDFDocument.load(await renderTicketsPdf(input('Zoë Müller')), { updateMetadata: false });
      expect(doc.getTitle()).toBe('Floodgate Live — Night 2 · Zoë Müller');
      expect(doc.getSubject()).toContain('bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1');
      expect(doc.getKeywords()).toContain('Zoë Müller');
      expect(doc.getProducer()).toMatch(/^Floodgate/);
    });

    it('draws exactly the QR modules of each ticket code, inside the QR box', async () => {
      const { pages } = await readPdf(await renderTicketsPdf(input('Zoë Müller')));
      const expected = [qrMatrix(CODE_1), qrMatrix(CODE_2)];
      expect(expected[0]).not.toEqual(expected[1]);
      pages.forEach((p, i) => {
        expect(p.qr.length).toBeGreaterThan(50);
        expect(rasterize(p.qr)).toEqual(expected[i]);
        for (const r of p.qr) {
          expect(r.y).toBeGreaterThanOrEqual(QR_BOTTOM - 0.01);
          expect(r.y + r.h).toBeLessThanOrEqual(QR_TOP + 0.01);
        }
      });
    });

    it('keeps all text on the page and out of the QR code', async () => {
      const long = 'Ein sehr langer Veranstaltungsname, der auf keinen Fall in zwei Zeilen passt, weil er so lang ist wie dieser';
      const { pages } = await readPdf(await renderTicketsPdf(input('W'.repeat(300), { name: long, venue: long })));
      for (const r of pages.flatMap((p) => p.runs)) {
        const font = /Bold/.test(r.baseFont) ? DEJAVU_BOLD : DEJAVU;
        const width = (font.layout(r.text).advanceWidth / font.unitsPerEm) * r.size;
        expect(r.x).toBeGreaterThanOrEqual(20);
        expect(r.x + width).toBeLessThanOrEqual(297.64 - 20 + 0.01);
        expect(r.y < QR_BOTTOM || r.y > QR_TOP).toBe(true);
      }
      const baselines = [...new Map(pages[0]!.runs.map((r) => [r.y, r.size])).entries()].sort((a, b) => b[0] - a[0]);
      for (let i = 1; i < baselines.length; i++) {
        expect(baselines[i - 1]![0] - baselines[i]![0]).toBeGreaterThanOrEqual(baselines[i]![1]);
      }
      expect(pages[0]!.lines.some((l) => l.endsWith('…'))).toBe(true);
    });
  });

  describe('with names in other scripts', () => {
    it.each([
      ['Latin with diacritics', 'Zoë Müller', 'Zoë Müller'],
      ['Cyrillic', 'Анна Каренина', 'Анна Каренина'],
      ['Greek', 'Νίκος Καζαντζάκης', 'Νίκος Καζαντζάκης'],
      ['decomposed accents (NFC applied)', 'Zoe\u0308', 'Zoë'],
      ['control characters', 'Ann\u0000a\u0007 B\nC\td', 'Ann a B C d'],
      ['RTL override characters', '\u202Eevil\u202C name\u2066x\u2069', 'evil namex'],
      ['an emoji with a variation selector', "José 🎟️ O'Brien", "José \uFFFD O'Brien"],
      ['an emoji ZWJ sequence (one placeholder per grapheme)', 'Ann 👩‍👩‍👧 Lee', 'Ann \uFFFD Lee'],
      ['a lone surrogate', 'Ann\uD800a', 'Ann\uFFFDa'],
      ['Tifinagh, which DejaVu has but fontkit cannot shape (pdf-lib#1419)', 'Anna ⴰⵣⵓⵍ', 'Anna \uFFFD\uFFFD\uFFFD\uFFFD'],
      ['Hebrew (right-to-left, drawn in visual order)', 'שלום', 'םולש'],
    ])('draws %s (placeholders only for glyphs no font has)', async (_what, name, shown) => {
      const { pages } = await readPdf(await renderTicketsPdf(input(name), { fallbackFontPaths: [] }));
      expect(pages).toHaveLength(2);
      expect(pages[0]!.lines).toContain(shown);
    });

    it('draws CJK from a fallback font when one is installed, else as U+FFFD', async () => {
      const { pages } = await readPdf(await renderTicketsPdf(input('山田太郎')));
      // Every default candidate covers CJK; which outcome holds depends on the fonts of the machine running this.
      const installed = await resolveFallbackFont();
      expect(pages[0]!.lines[6]).toBe(installed ? '山田太郎' : '\uFFFD\uFFFD\uFFFD\uFFFD');
      const { pages: none } = await readPdf(await renderTicketsPdf(input('山田太郎'), { fallbackFontPaths: [] }));
      expect(none[0]!.lines[6]).toBe('\uFFFD\uFFFD\uFFFD\uFFFD');
    });

    it('uses the first usable fallback font, skipping missing files', async () => {
      expect(await resolveFallbackFont(['/nonexistent/font.ttf', NOT_A_FONT, MATH_FONT])).toBe(MATH_FONT);
      const { pages } = await readPdf(
        await renderTicketsPdf(input('Dr 𝐀𝐁𝐂 Smith'), { fallbackFontPaths: ['/nonexistent/font.ttf', NOT_A_FONT, MATH_FONT] }),
      );
      expect(pages[0]!.lines[6]).toBe('Dr 𝐀𝐁𝐂 Smith');
      expect(pages[0]!.runs.find((r) => r.text === '𝐀𝐁𝐂')?.baseFont).toMatch(/DejaVuMathTeXGyre/);
    });

    it('does not embed the fallback font when nothing needs it', async () => {
      const { pages } = await readPdf(await renderTicketsPdf(input('Anna'), { fallbackFontPaths: [MATH_FONT] }));
      expect(pages[0]!.runs.every((r) => !/DejaVuMathTeXGyre/.test(r.baseFont))).toBe(true);
    });

    it('cuts a 5,000-character name with an ellipsis on one line', async () => {
      const name = 'Ä'.repeat(5000);
      const bytes = await renderTicketsPdf(input(name));
      const { pages } = await readPdf(bytes);
      const line = pages[0]!.lines[6]!;
      expect(line).toMatch(/^Ä+…$/);
      expect(line.length).toBeLessThan(100);
      expect(bytes.length).toBeLessThan(200_000);
    });

    it('never throws for arbitrary Unicode in any text field, and always yields a valid PDF', async () => {
      const text = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 }));
      await fc.assert(
        fc.asyncProperty(text, text, text, async (holder, name, venue) => {
          const base = input(holder, { name, venue, startsAt: venue });
          const bytes = await renderTicketsPdf({ ...base, tickets: [{ seat: name, code: CODE_1 }] });
          const doc = await PDFDocument.load(bytes);
          expect(doc.getPageCount()).toBe(1);
        }),
        { numRuns: 30 },
      );
    });
  });

  describe('the seat line', () => {
    const with_ = (tierName: string, seats: (string | null)[]): TicketPdfInput => ({
      ...input('Zoë Müller'),
      booking: { ...input('Zoë Müller').booking, tierName },
      tickets: seats.map((seat, i) => ({ seat, code: `${CODE_2}${i}` })),
    });

    it('spells out section, row and seat of a seat id', async () => {
      const { pages } = await readPdf(await renderTicketsPdf(with_('Parterre', ['A-1-10', 'Balcony-West-3-2'])));
      expect(pages[0]!.lines).toContain('Section A, Row 1, Seat 10');
      expect(pages[1]!.lines).toContain('Section Balcony-West, Row 3, Seat 2');
      expect(pages.flatMap((p) => p.lines).some((l) => /A-1-10/.test(l))).toBe(false);
    });

    it('prints a seat id of another shape as it is', async () => {
      const { pages } = await readPdf(await renderTicketsPdf(with_('Parterre', ['Box 7'])));
      expect(pages[0]!.lines).toContain('Seat Box 7');
    });

    it.each(['General admission', 'GENERAL ADMISSION ', 'general  admission'])('prints "General admission" once when the tier is called %j', async (tier) => {
      const { pages } = await readPdf(await renderTicketsPdf(with_(tier, [null, null])));
      for (const p of pages) expect(p.lines.filter((l) => /general\s+admission/i.test(l))).toHaveLength(1);
    });

    it('prints the tier and "General admission" for a standing ticket of another tier', async () => {
      const { pages } = await readPdf(await renderTicketsPdf(with_('Floor standing', [null])));
      expect(pages[0]!.lines).toContain('Floor standing');
      expect(pages[0]!.lines).toContain('General admission');
    });
  });

  it('refuses a booking without tickets', async () => {
    await expect(renderTicketsPdf({ ...input('A'), tickets: [] })).rejects.toThrow(/no tickets/);
  });
});

describe('what is cached between documents', () => {
  it('keeps every letter extractable after an earlier document drew it only inside an accented letter', async () => {
    // 'Ӂ' and 'ӝ' are composite glyphs built from 'Ж' and 'ж' (which nothing else in this file draws); writing their
    // subset must not leave 'Ж' and 'ж' without their code points for the documents after it
    await renderTicketsPdf(input('Ӂӝ'), { fallbackFontPaths: [] });
    const { pages } = await readPdf(await renderTicketsPdf(input('Жук Жанна жжж'), { fallbackFontPaths: [] }));
    expect(pages[0]!.lines).toContain('Жук Жанна жжж');
  });

  it.each([['DejaVuSans.ttf'], ['DejaVuSans-Bold.ttf']])(
    '%s lays out printable ASCII one glyph per character, except f-ligatures (the shortcut the cache takes)',
    (file) => {
      const font = fontkit.create(readFileSync(resolve(`dejavu-fonts-ttf/ttf/${file}`)));
      const ids = (s: string, layout: boolean) => (layout ? font.layout(s).glyphs : font.glyphsForString(s)).map((g) => g.id);
      const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
      for (const a of ascii) {
        const pairs = ascii.map((b) => a + b).filter((p) => !/f[fil]/.test(p)).join(' ');
        expect(ids(pairs, true)).toEqual(ids(pairs, false));
      }
      expect(ids('office', true)).not.toEqual(ids('office', false)); // the ligature is real: the exception is needed
      fc.assert(
        fc.property(fc.string({ unit: fc.constantFrom(...ascii), maxLength: 30 }), (s) => {
          fc.pre(!/f[fil]/.test(s));
          expect(ids(s, true)).toEqual(ids(s, false));
        }),
        { numRuns: 300 },
      );
    },
  );
});

describe('qrMatrix', () => {
  it.each([
    ['a short code', 'FG1.x'],
    ['a ticket code', CODE_1],
    ['a long code (version 10+)', `${CODE_1}~${'Zq9'.repeat(60)}`],
    ['non-ASCII', 'FG1.bk_Zoë~1~Ä-1-1.sig'],
  ])('is the symbol qrcode itself makes for %s in byte mode, with its best mask', (_what, code) => {
    const { modules } = QRCode.create([{ data: new TextEncoder().encode(code), mode: 'byte' }], { errorCorrectionLevel: 'M' });
    const expected = Array.from({ length: modules.size }, (_, r) => Array.from({ length: modules.size }, (_, c) => modules.get(r, c) === 1));
    expect(qrMatrix(code)).toEqual(expected);
  });


  it('is a square QR symbol with the three finder patterns', () => {
    const m = qrMatrix(CODE_1);
    const n = m.length;
    expect(n).toBeGreaterThanOrEqual(21);
    expect((n - 17) % 4).toBe(0);
    for (const [r, c] of [[0, 0], [0, n - 7], [n - 7, 0]] as const) {
      expect(m[r]!.slice(c, c + 7).every(Boolean)).toBe(true);
      expect(m[r + 1]!.slice(c + 1, c + 6).some(Boolean)).toBe(false);
    }
  });
});

describe('formatStartsAt', () => {
  it.each([
    ['2025-07-12T20:00:00+02:00', undefined, 'Sat 12 Jul 2025, 20:00 (UTC+02:00)'],
    ['2025-07-12T18:00:00Z', undefined, 'Sat 12 Jul 2025, 18:00 (UTC)'],
    ['2025-07-12T20:00', undefined, 'Sat 12 Jul 2025, 20:00'],
    ['2025-07-12T20:00-0530', undefined, 'Sat 12 Jul 2025, 20:00 (UTC-05:30)'],
    ['2025-07-12 20:00+09', undefined, 'Sat 12 Jul 2025, 20:00 (UTC+09:00)'],
    ['2025-07-12', undefined, 'Sat 12 Jul 2025'],
    ['2025-07-12T18:00:00Z', 'Europe/Berlin', 'Sat 12 Jul 2025, 20:00 (CEST)'],
    ['2025-12-31T23:30:00Z', 'America/New_York', 'Wed 31 Dec 2025, 18:30 (GMT-5)'],
    ['2025-07-12T18:00:00Z', 'Not/AZone', 'Sat 12 Jul 2025, 18:00 (UTC)'],
    ['2025-02-31T20:00:00Z', undefined, '2025-02-31T20:00:00Z'],
    ['doors at eight', undefined, 'doors at eight'],
  ])('%s in %s → %s', (s, tz, out) => {
    expect(formatStartsAt(s, tz)).toBe(out);
  });
});
