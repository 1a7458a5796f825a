import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import jsqrModule from 'jsqr';

const run = promisify(execFile);
/** jsQR is CommonJS with its function on `default`: under NodeNext its default import is that module object. */
const jsQR = (jsqrModule as unknown as { default: (typeof jsqrModule)['default'] }).default;
export const PDFTOPPM = '/usr/bin/pdftoppm';

/**
 * The QR codes of a PDF as a phone's camera would read them: each page drawn in grey (PGM) by Debian's pdftoppm
 * (poppler-utils) at 200 dpi, then decoded with jsQR (one code per page, in page order; null for a page without one).
 */
export async function qrCodesOfPdf(pdf: Uint8Array): Promise<(string | null)[]> {
  if (!existsSync(PDFTOPPM)) throw new Error(`${PDFTOPPM} is missing: run bash scripts/ensure-tools.sh (apt-get install poppler-utils)`);
  const dir = await mkdtemp(join(tmpdir(), 'fg-qr-'));
  try {
    await writeFile(join(dir, 'in.pdf'), pdf);
    await run(PDFTOPPM, ['-gray', '-r', '200', join(dir, 'in.pdf'), join(dir, 'page')]);
    const pages = (await readdir(dir)).filter((f) => f.endsWith('.pgm')).sort((a, b) => Number(/(\d+)\.pgm$/.exec(a)![1]) - Number(/(\d+)\.pgm$/.exec(b)![1]));
    const codes: (string | null)[] = [];
    for (const f of pages) {
      const { width, height, grey } = readPgm(await readFile(join(dir, f)));
      const rgba = new Uint8ClampedArray(width * height * 4);
      for (let i = 0; i < width * height; i++) {
        rgba.fill(grey[i]!, i * 4, i * 4 + 3);
        rgba[i * 4 + 3] = 255;
      }
      codes.push(jsQR(rgba, width, height)?.data ?? null);
    }
    return codes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A binary PGM (P5, 8 bits) as pdftoppm -gray writes it: "P5", width, height, maxval 255, then one byte per pixel. */
function readPgm(buf: Buffer): { width: number; height: number; grey: Uint8Array } {
  const m = /^P5\s+(\d+)\s+(\d+)\s+255\s/.exec(buf.subarray(0, 64).toString('latin1'));
  if (!m) throw new Error('pdftoppm: not an 8-bit binary PGM');
  const width = Number(m[1]);
  const height = Number(m[2]);
  return { width, height, grey: buf.subarray(m[0].length, m[0].length + width * height) };
}
