import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Mail } from './mailer.js';
import { MailRejectedError, createOutboxMailer, encodeQuotedPrintable, encodedWords, type OutboxSummary } from './outbox.js';

// A small MIME reader, enough to check that message.eml is what a mail client would see.
type Part = { headers: Map<string, string>; body: string };

function parsePart(raw: string): Part {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split + 4);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r\n[ \t]/g, ' ').split('\r\n')) {
    const i = line.indexOf(':');
    headers.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
  }
  return { headers, body };
}

function children(p: Part): Part[] {
  const b = /boundary="([^"]+)"/.exec(p.headers.get('content-type') ?? '')?.[1];
  if (!b) throw new Error('not multipart');
  const [, ...rest] = p.body.split(`--${b}\r\n`);
  const last = rest.pop()!;
  expect(last.endsWith(`\r\n--${b}--\r\n`)).toBe(true);
  return [...rest, last.slice(0, -`--${b}--\r\n`.length)].map((r) => parsePart(r.replace(/\r\n$/, '')));
}

const decodeWords = (v: string) =>
  v
    .replace(/\?=\s+=\?/g, '?==?') // white space between adjacent encoded words is not part of the text
    .replace(/=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=/g, (_m, b64: string) => Buffer.from(b64, 'base64').toString('utf8'))
    .trim();
const decodeQp = (s: string) =>
  Buffer.from(
    s.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})|([\s\S])/g, (_m, hex: string | undefined, ch: string | undefined) =>
      hex ? String.fromCharCode(parseInt(hex, 16)) : ch!,
    ),
    'latin1',
  ).toString('utf8');
const decodePart = (p: Part) =>
  p.headers.get('content-transfer-encoding') === 'base64'
    ? Buffer.from(p.body.replace(/\r\n/g, ''), 'base64')
    : Buffer.from(decodeQp(p.body), 'utf8');

const PDF = new Uint8Array(Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256))]));
const mail = (over: Partial<Mail> = {}): Mail => ({
  to: 'Zoë Müller <zoe@example.test>',
  from: 'Floodgate <tickets@floodgate.test>',
  subject: 'Your tickets for Floodgate Live',
  text: 'Hello Zoë,\nyour tickets are attached.\n',
  attachments: [{ filename: 'tickets.pdf', contentType: 'application/pdf', content: PDF }],
  idempotencyKey: 'tickets-bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1',
  ...over,
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fg-outbox-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});
const messageFolders = async () => (await readdir(dir)).filter((f) => !f.startsWith('.')).sort();

describe('createOutboxMailer', () => {
  describe('send', () => {
    it('writes message.eml, the attachment and message.json into <timestamp>-<idempotencyKey>-<random>/', async () => {
      const mailer = createOutboxMailer({ dir, now: () => new Date('2025-07-12T18:00:00.123Z') });
      expect(mailer.name).toBe('outbox');
      const { messageId } = await mailer.send(mail());
      const folders = await messageFolders();
      expect(folders).toHaveLength(1);
      expect(folders[0]).toMatch(/^2025-07-12T180000\.123Z-tickets-bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1-[0-9a-f]{8}$/);
      const folder = join(dir, folders[0]!);
      expect((await readdir(folder)).sort()).toEqual(['message.eml', 'message.json', 'tickets.pdf']);
      expect(new Uint8Array(await readFile(join(folder, 'tickets.pdf')))).toEqual(PDF);
      const summary = JSON.parse(await readFile(join(folder, 'message.json'), 'utf8')) as OutboxSummary;
      expect(summary).toMatchObject({
        messageId,
        folder: folders[0],
        to: 'Zoë Müller <zoe@example.test>',
        subject: 'Your tickets for Floodgate Live',
        attachments: [{ filename: 'tickets.pdf', file: 'tickets.pdf', contentType: 'application/pdf', size: PDF.byteLength }],
      });
      expect(await readdir(join(dir, '.tmp'))).toEqual([]);
    });

    it('writes a MIME message a mail client can read', async () => {
      const { messageId } = await createOutboxMailer({ dir }).send(mail({ headers: { 'X-Booking-Id': 'bk_1' } }));
      const eml = await readFile(join(dir, (await messageFolders())[0]!, 'message.eml'), 'utf8');
      expect(eml.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/); // CRLF only
      for (const line of eml.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
      const msg = parsePart(eml);
      expect(msg.headers.get('message-id')).toBe(`<${messageId}>`);
      expect(msg.headers.get('mime-version')).toBe('1.0');
      expect(msg.headers.get('from')).toBe('"Floodgate" <tickets@floodgate.test>');
      expect(decodeWords(msg.headers.get('to')!)).toBe('Zoë Müller <zoe@example.test>');
      expect(msg.headers.get('subject')).toBe('Your tickets for Floodgate Live');
      expect(msg.headers.get('x-booking-id')).toBe('bk_1');
      expect(msg.headers.get('date')).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
      expect(msg.headers.get('content-type')).toMatch(/^multipart\/mixed; boundary="/);
      const [text, pdf] = children(msg);
      expect(text!.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(decodePart(text!).toString('utf8')).toBe('Hello Zoë,\r\nyour tickets are attached.\r\n');
      expect(pdf!.headers.get('content-disposition')).toBe('attachment; filename="tickets.pdf"');
      expect(new Uint8Array(decodePart(pdf!))).toEqual(PDF);
    });

    it('puts text and html in a multipart/alternative part', async () => {
      await createOutboxMailer({ dir }).send(mail({ html: '<p>Hello <b>Zoë</b></p>' }));
      const msg = parsePart(await readFile(join(dir, (await messageFolders())[0]!, 'message.eml'), 'utf8'));
      const [alt, pdf] = children(msg);
      expect(alt!.headers.get('content-type')).toMatch(/^multipart\/alternative/);
      const [text, html] = children(alt!);
      expect(text!.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(decodePart(html!).toString('utf8')).toBe('<p>Hello <b>Zoë</b></p>');
      expect(pdf!.headers.get('content-type')).toMatch(/^application\/pdf/);
    });

    it('encodes a long non-ASCII subject and filename so that they decode back', async () => {
      const subject = 'Ваши билеты на «Floodgate Live» — 山田太郎 🎟️ '.repeat(4).trim();
      const filename = 'Билеты – Zoë Müller, Floodgate Live (Olympiahalle).pdf';
      await createOutboxMailer({ dir }).send(mail({ subject, attachments: [{ filename, contentType: 'application/pdf', content: PDF }] }));
      const folder = join(dir, (await messageFolders())[0]!);
      const eml = await readFile(join(folder, 'message.eml'), 'utf8');
      for (const line of eml.split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
      const msg = parsePart(eml);
      expect(decodeWords(msg.headers.get('subject')!)).toBe(subject);
      const disposition = children(msg)[1]!.headers.get('content-disposition')!;
      const segments = [...disposition.matchAll(/filename\*(?:\d+\*)?=(?:UTF-8'')?([^;\s]+)/g)].map((m) => m[1]!);
      expect(segments.length).toBeGreaterThan(0);
      for (const seg of segments) expect(() => decodeURIComponent(seg)).not.toThrow(); // no UTF-8 sequence split
      expect(decodeURIComponent(segments.join(''))).toBe(filename);
      expect(await readdir(folder)).toContain('Билеты _ Zoë Müller_ Floodgate Live (Olympiahalle).pdf');
    });

    it('keeps attachment files inside the message folder whatever their names', async () => {
      await createOutboxMailer({ dir }).send(
        mail({
          attachments: [
            { filename: '../../escape.pdf', contentType: 'application/pdf', content: PDF },
            { filename: 'message.json', contentType: 'application/json', content: new Uint8Array([123, 125]) },
            { filename: '.hidden', contentType: 'text/plain', content: new Uint8Array([65]) },
            { filename: 'ESCAPE.pdf', contentType: 'application/pdf', content: PDF },
          ],
        }),
      );
      expect((await readdir(dir)).sort()).toEqual(['.index', '.tmp', ...(await messageFolders())]);
      const files = (await readdir(join(dir, (await messageFolders())[0]!))).sort();
      expect(files).toEqual(['2-ESCAPE.pdf', '2-message.json', 'escape.pdf', 'hidden', 'message.eml', 'message.json']);
    });
  });

  describe('when the same idempotencyKey is sent again', () => {
    it('returns the first messageId and writes no second message', async () => {
      let t = Date.parse('2025-07-12T18:00:00Z');
      const mailer = createOutboxMailer({ dir, now: () => new Date((t += 1000)) });
      const first = await mailer.send(mail());
      const second = await mailer.send(mail({ subject: 'changed' }));
      expect(second).toEqual(first);
      expect(await messageFolders()).toHaveLength(1);
      const third = await createOutboxMailer({ dir }).send(mail({ idempotencyKey: 'tickets-other' }));
      expect(third.messageId).not.toBe(first.messageId);
      expect(await messageFolders()).toHaveLength(2);
    });

    it('keeps exactly one message when 10 sends race', async () => {
      const mailer = createOutboxMailer({ dir, now: () => new Date('2025-07-12T18:00:00Z') });
      const results = await Promise.all(Array.from({ length: 10 }, () => mailer.send(mail())));
      expect(new Set(results.map((r) => r.messageId)).size).toBe(1);
      const folders = await messageFolders();
      expect(folders).toHaveLength(1);
      const summary = JSON.parse(await readFile(join(dir, folders[0]!, 'message.json'), 'utf8')) as OutboxSummary;
      expect(summary.messageId).toBe(results[0]!.messageId);
      expect(await readdir(join(dir, '.tmp'))).toEqual([]);
      expect((await readdir(join(dir, '.index'))).filter((f) => f.startsWith('.'))).toEqual([]);
    });

    it('gives keys that map to the same folder name distinct folders', async () => {
      const mailer = createOutboxMailer({ dir, now: () => new Date('2025-07-12T18:00:00Z') });
      await mailer.send(mail({ idempotencyKey: 'a/b' }));
      await mailer.send(mail({ idempotencyKey: 'a:b' }));
      expect(await messageFolders()).toHaveLength(2);
    });
  });

  describe('header injection', () => {
    it.each<[string, Partial<Mail>]>([
      ['subject', { subject: 'Hi\r\nBcc: victim@example.test' }],
      ['subject (LF only)', { subject: 'Hi\nBcc: victim@example.test' }],
      ['to', { to: 'zoe@example.test\r\nBcc: victim@example.test' }],
      ['from', { from: 'Floodgate <t@floodgate.test>\nX-Evil: 1' }],
      ['a header value', { headers: { 'X-Ok': 'a\r\nBcc: victim@example.test' } }],
      ['a header name', { headers: { 'X-Ok\r\nBcc': 'victim@example.test' } }],
      ['a reserved header', { headers: { Bcc: 'victim@example.test' } }],
      ['an attachment filename', { attachments: [{ filename: 'a\r\n.pdf', contentType: 'application/pdf', content: PDF }] }],
      ['a content type', { attachments: [{ filename: 'a.pdf', contentType: 'application/pdf\r\nBcc: x', content: PDF }] }],
      ['an unparseable address', { to: 'not an address' }],
    ])('refuses a line break in %s, non-retryable, writing nothing', async (_what, over) => {
      const err = await createOutboxMailer({ dir }).send(mail(over)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailRejectedError);
      expect((err as MailRejectedError).retryable).toBe(false);
      expect(await readdir(dir)).toEqual([]);
    });
  });
});

describe('encodeQuotedPrintable', () => {
  it('round-trips any text with CRLF line breaks and lines of at most 76 characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 400 }), (s) => {
        const qp = encodeQuotedPrintable(s);
        for (const line of qp.split('\r\n')) {
          expect(line.length).toBeLessThanOrEqual(76);
          expect(line).not.toMatch(/[ \t]$/);
        }
        expect(qp.replace(/\r\n/g, '')).toMatch(/^[\x21-\x7e \t]*$/);
        expect(decodeQp(qp)).toBe(s.replace(/\r\n|\r|\n/g, '\r\n'));
      }),
      { numRuns: 500 },
    );
  });
});

describe('encodedWords', () => {
  it('splits any text into words of at most 75 characters that decode back', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.integer({ min: 2, max: 40 }), (s, used) => {
        const words = encodedWords(s, used);
        expect(words[0]!.length + used).toBeLessThanOrEqual(Math.max(76, used + 20));
        for (const w of words) expect(w.length).toBeLessThanOrEqual(75);
        expect(words.map((w) => Buffer.from(w.slice(10, -2), 'base64').toString('utf8')).join('')).toBe(s);
      }),
      { numRuns: 500 },
    );
  });
});
