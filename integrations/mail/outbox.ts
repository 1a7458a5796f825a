import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, mkdtemp, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mail, Mailer } from './mailer.js';

/**
 * The development mail transport: every message becomes a folder `<dir>/<timestamp>-<idempotencyKey>-<random>/` with
 * - `message.eml`: an RFC 5322 / MIME message (multipart/mixed; text as quoted-printable, attachments as base64)
 *   that a mail client or a mail catcher opens as is;
 * - the attachments as files (`tickets.pdf`, names made safe for the file system);
 * - `message.json`: a summary (to, subject, attachment names and sizes).
 *
 * Exactly one message per idempotency key, under any interleaving of concurrent sends and crashes:
 * 1. Claim first. `<dir>/.index/<sha256(idempotencyKey)>` is created with link(2) from a fully written file (so it
 *    appears complete or not at all, and fails with EEXIST if another send claimed the key). The claim names the
 *    message: its messageId, its Date and a folder name with a random part, unique from the start.
 * 2. Publish the claimed folder. The message is built under `<dir>/.tmp/` and renamed onto the claimed name. Only a
 *    complete folder is ever renamed there, so once the name exists the message is whole; a second rename onto it
 *    fails (ENOTEMPTY/EEXIST) and that sender deletes only its own work folder.
 * Every send of a claimed key whose folder is not there yet (the claimant is still writing, or crashed after
 * claiming) publishes it itself, with the claim's messageId and Date. So a send returns only once the folder of the
 * messageId it returns is in place; nobody ever deletes a folder it did not create.
 */
export type OutboxMailerOptions = {
  dir: string;
  /** Clock for the folder name and the Date header. */
  now?: () => Date;
  /** Test seam: runs after the key is claimed and before the folder is published (a delay, or a throw = a crash). */
  beforePublish?: (idempotencyKey: string) => Promise<void>;
};

/** The message can never be sent as given (header injection, bad address...): retrying will not help. */
export class MailRejectedError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'MailRejectedError';
  }
}

export type OutboxSummary = {
  messageId: string;
  folder: string;
  createdAt: string;
  idempotencyKey: string;
  from: string;
  to: string;
  subject: string;
  headers: Record<string, string>;
  html: boolean;
  attachments: { filename: string; file: string; contentType: string; size: number }[];
};

/** What `.index/<sha256(key)>` holds: the message that owns the key. */
type Claim = { messageId: string; folder: string; createdAt: string };

export function createOutboxMailer(options: OutboxMailerOptions): Mailer & { readonly name: 'outbox' } {
  const { dir } = options;
  const now = options.now ?? (() => new Date());
  const indexDir = join(dir, '.index');
  const tmpDir = join(dir, '.tmp');

  const readClaim = async (path: string): Promise<Claim | null> => {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as Claim;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  };

  /** The key's claim: the one already there, or ours if link(2) makes it first. */
  const claimKey = async (indexPath: string, keyHash: string, candidate: Claim): Promise<Claim> => {
    const existing = await readClaim(indexPath);
    if (existing) return existing;
    await mkdir(indexDir, { recursive: true });
    const tmp = join(indexDir, `.${keyHash}.${randomBytes(6).toString('hex')}`);
    await writeFile(tmp, JSON.stringify(candidate));
    try {
      await link(tmp, indexPath);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const winner = await readClaim(indexPath);
      if (!winner) throw err;
      return winner;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  };

  return {
    name: 'outbox',
    async send(mail: Mail) {
      const date = now();
      const candidate: Claim = {
        messageId: `${randomUUID()}@floodgate.outbox`,
        folder: '',
        createdAt: date.toISOString(),
      };
      // Built (and so validated) before anything is written: a message that can never be built claims nothing.
      let built = buildMessage(mail, { date, messageId: candidate.messageId });
      const keyHash = createHash('sha256').update(mail.idempotencyKey, 'utf8').digest('hex');
      candidate.folder = `${candidate.createdAt.replace(/:/g, '')}-${folderKey(mail.idempotencyKey, keyHash)}-${randomBytes(4).toString('hex')}`;
      const claim = await claimKey(join(indexDir, keyHash), keyHash, candidate);
      const result = { messageId: claim.messageId };
      if (await exists(join(dir, claim.folder))) return result;

      await options.beforePublish?.(mail.idempotencyKey);
      // Publishing another send's claim (it is still writing, or it crashed): the same messageId and Date as its.
      if (claim !== candidate) built = buildMessage(mail, { date: new Date(claim.createdAt), messageId: claim.messageId });
      const { eml, files } = built;
      await mkdir(tmpDir, { recursive: true });
      const summary: OutboxSummary = {
        messageId: claim.messageId,
        folder: claim.folder,
        createdAt: claim.createdAt,
        idempotencyKey: mail.idempotencyKey,
        from: mail.from,
        to: mail.to,
        subject: mail.subject,
        headers: { ...mail.headers },
        html: mail.html !== undefined,
        attachments: files.map((f) => ({
          filename: f.attachment.filename,
          file: f.file,
          contentType: f.attachment.contentType,
          size: f.attachment.content.byteLength,
        })),
      };
      await publish(await mkdtemp(join(tmpDir, 'msg-')), join(dir, claim.folder), [
        { file: 'message.eml', content: eml },
        ...files.map((f) => ({ file: f.file, content: f.attachment.content })),
        { file: 'message.json', content: `${JSON.stringify(summary, null, 2)}\n` },
      ]);
      return result;
    },
  };
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );

/**
 * Writes the files into `work` and renames it onto `target`. If another sender published `target` first (the rename
 * fails with ENOTEMPTY or EEXIST: only complete folders are renamed there), that message stands and `work` goes.
 */
async function publish(work: string, target: string, files: { file: string; content: string | Uint8Array }[]): Promise<void> {
  try {
    for (const f of files) await writeFile(join(work, f.file), f.content);
    await rename(work, target);
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
}

/** The idempotency key as a folder-name fragment; a key that had to be changed gets a hash suffix to stay unique. */
function folderKey(key: string, hash: string): string {
  const safe = key.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 80);
  return safe === key && !/^\.+$/.test(key) ? key : `${safe}-${hash.slice(0, 12)}`;
}

// ---------------------------------------------------------------------------------------------------------------------
// MIME (RFC 5322, 2045-2047, 2231). Every line ends in CRLF and is at most 78 characters.

const CRLF = '\r\n';
const RESERVED_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id', 'mime-version', 'content-type',
  'content-transfer-encoding', 'content-disposition', 'x-idempotency-key',
]);
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
/** A dot-atom ASCII addr-spec (no quoted local parts, no IP literals, no internationalized addresses). */
const ADDR_SPEC = new RegExp(`^[A-Za-z0-9.!#$%&'*+/=?^_\`{|}~-]+@${LABEL}(?:\\.${LABEL})*$`);
const FIELD_NAME = /^[!-9;-~]+$/;
const MIME_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$/;
// eslint-disable-next-line no-control-regex
const LINE_BREAK_OR_NUL = /[\r\n\u0000\u2028\u2029\u0085]/;

export type BuiltFile = { file: string; attachment: Mail['attachments'][number] };

/**
 * Builds `message.eml` and the on-disk attachment names. Throws `MailRejectedError` for header injection
 * (CR, LF or NUL in an address, the subject, a header name or value, or a filename), an address it cannot parse,
 * a reserved or malformed extra header, or a malformed content type.
 */
export function buildMessage(mail: Mail, o: { date: Date; messageId: string }): { eml: string; files: BuiltFile[] } {
  const fields = { to: mail.to, from: mail.from, subject: mail.subject, idempotencyKey: mail.idempotencyKey };
  for (const [field, value] of Object.entries(fields)) {
    if (typeof value !== 'string' || LINE_BREAK_OR_NUL.test(value)) throw new MailRejectedError(`outbox: line break or NUL in ${field}`);
  }
  if (mail.idempotencyKey === '') throw new MailRejectedError('outbox: empty idempotencyKey');
  const headers: string[] = [
    `Message-ID: <${o.messageId}>`,
    `Date: ${o.date.toUTCString().replace(/GMT$/, '+0000')}`,
    addressHeader('From', mail.from),
    addressHeader('To', mail.to),
    unstructured('Subject', mail.subject),
    'MIME-Version: 1.0',
    unstructured('X-Idempotency-Key', mail.idempotencyKey),
  ];
  for (const [name, value] of Object.entries(mail.headers ?? {})) {
    if (!FIELD_NAME.test(name) || name.length > 64) throw new MailRejectedError(`outbox: bad header name ${JSON.stringify(name)}`);
    if (RESERVED_HEADERS.has(name.toLowerCase())) throw new MailRejectedError(`outbox: header ${name} is set by the transport`);
    if (typeof value !== 'string' || LINE_BREAK_OR_NUL.test(value)) {
      throw new MailRejectedError(`outbox: line break or NUL in header ${name}`);
    }
    headers.push(unstructured(name, value));
  }

  const taken = new Set(['message.eml', 'message.json']);
  const files = mail.attachments.map((a): BuiltFile => {
    if (LINE_BREAK_OR_NUL.test(a.filename)) throw new MailRejectedError('outbox: line break or NUL in an attachment filename');
    if (!MIME_TYPE.test(a.contentType)) throw new MailRejectedError(`outbox: bad content type ${JSON.stringify(a.contentType)}`);
    return { file: safeFileName(a.filename, taken), attachment: a };
  });

  const mixed = boundary();
  const parts: string[] = [];
  if (mail.html === undefined) {
    parts.push(textPart('text/plain', mail.text));
  } else {
    const alt = boundary();
    const body = multipart(alt, [textPart('text/plain', mail.text), textPart('text/html', mail.html)]);
    parts.push([`Content-Type: multipart/alternative; boundary="${alt}"`, '', body].join(CRLF));
  }
  for (const f of files) {
    const { filename, contentType, content } = f.attachment;
    parts.push(
      [
        `Content-Type: ${contentType};${CRLF} ${param('name', filename)}`,
        `Content-Disposition: attachment;${CRLF} ${param('filename', filename)}`,
        'Content-Transfer-Encoding: base64',
        '',
        wrapBase64(Buffer.from(content.buffer, content.byteOffset, content.byteLength).toString('base64')),
      ].join(CRLF),
    );
  }
  headers.push(`Content-Type: multipart/mixed; boundary="${mixed}"`);
  const eml = [...headers, '', 'This is a multi-part message in MIME format.', multipart(mixed, parts)].join(CRLF);
  return { eml, files };
}

/** `=_` can occur neither in base64 nor in quoted-printable output, so the boundary never collides with a body. */
const boundary = () => `=_fg_${randomBytes(12).toString('hex')}`;

const multipart = (b: string, parts: string[]) => `${parts.map((p) => `--${b}${CRLF}${p}${CRLF}`).join('')}--${b}--${CRLF}`;

const textPart = (type: string, text: string) =>
  [`Content-Type: ${type}; charset=utf-8`, 'Content-Transfer-Encoding: quoted-printable', '', encodeQuotedPrintable(text)].join(CRLF);

const wrapBase64 = (b64: string) => (b64.match(/.{1,76}/g) ?? ['']).join(CRLF);

/** `Name <a@b.c>` or `a@b.c` as an RFC 5322 mailbox header; a long or non-ASCII display name becomes encoded words. */
function addressHeader(header: string, value: string): string {
  const v = value.trim();
  if (ADDR_SPEC.test(v)) return `${header}: ${v}`;
  const m = /^(.*?)\s*<([^<>]*)>$/.exec(v);
  if (!m || !ADDR_SPEC.test(m[2]!)) throw new MailRejectedError(`outbox: cannot parse the ${header} address`);
  const addr = `<${m[2]}>`;
  const name = m[1]!.replace(/^"(.*)"$/, '$1').trim();
  if (name === '') return `${header}: ${addr}`;
  const quoted = `"${name.replace(/(["\\])/g, '\\$1')}"`;
  if (/^[\x20-\x7e]*$/.test(name) && !name.includes('=?') && header.length + quoted.length + addr.length + 3 <= 78) {
    return `${header}: ${quoted} ${addr}`;
  }
  const words = encodedWords(name, header.length + 2);
  const oneLine = `${header}: ${words.join(' ')} ${addr}`;
  return words.length === 1 && oneLine.length <= 78 ? oneLine : `${header}: ${[...words, addr].join(`${CRLF} `)}`;
}

/** An unstructured header: as is when short printable ASCII, else RFC 2047 encoded words folded over lines. */
function unstructured(name: string, value: string): string {
  if (/^[\x20-\x7e]*$/.test(value) && !value.includes('=?') && name.length + 2 + value.length <= 78) return `${name}: ${value}`;
  return `${name}: ${encodedWords(value, name.length + 2).join(`${CRLF} `)}`;
}

/**
 * UTF-8 "B" encoded words, one per line, never splitting a character: at most 75 characters each, and lines of at
 * most 76 (RFC 2047 §2) once the first line's `Name: ` (`firstLineUsed` characters) and the folding space are counted.
 */
export function encodedWords(s: string, firstLineUsed = 0): string[] {
  const budget = (used: number) => Math.max(4, Math.floor((Math.min(75, 76 - used) - 12) / 4) * 3);
  const words: string[] = [];
  let chunk = '';
  let max = budget(firstLineUsed);
  for (const ch of s) {
    if (chunk !== '' && Buffer.byteLength(chunk + ch, 'utf8') > max) {
      words.push(chunk);
      chunk = '';
      max = budget(1);
    }
    chunk += ch;
  }
  words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`);
}

/** A MIME parameter: `name="plain.pdf"`, or RFC 2231 `name*=UTF-8''...` when the value needs escaping. */
function param(name: string, value: string): string {
  if (/^[A-Za-z0-9 ._()+-]{1,60}$/.test(value)) return `${name}="${value}"`;
  // One unit per character, so no continuation splits a UTF-8 sequence; lone surrogates become U+FFFD.
  const units = Array.from(value.replace(/\p{Cs}/gu, '\uFFFD'), (ch) =>
    encodeURIComponent(ch).replace(/['()*!]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
  );
  const max = 64 - name.length; // ` name*12*=UTF-8''<seg>;` within 78 characters
  const segs: string[] = [''];
  for (const u of units) {
    if (segs[segs.length - 1]!.length + u.length > max) segs.push('');
    segs[segs.length - 1] += u;
  }
  // RFC 2231 continuations: `name*0*=`, `name*1*=`, ...
  if (segs.length === 1) return `${name}*=UTF-8''${segs[0]}`;
  return segs.map((seg, i) => `${name}*${i}*=${i === 0 ? "UTF-8''" : ''}${seg}`).join(`;${CRLF} `);
}

/**
 * Quoted-printable (RFC 2045 §6.7) of UTF-8 text with CRLF line breaks: lines of at most 76 characters, `=` soft
 * breaks, trailing white space encoded.
 */
export function encodeQuotedPrintable(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => {
      const bytes = Buffer.from(line, 'utf8');
      const out: string[] = [];
      let cur = '';
      bytes.forEach((b, i) => {
        const last = i === bytes.length - 1;
        const lit = (b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && !last);
        const tok = lit ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
        if (cur.length + tok.length > (last ? 76 : 75)) {
          out.push(`${cur}=`);
          cur = '';
        }
        cur += tok;
      });
      out.push(cur);
      return out.join(CRLF);
    })
    .join(CRLF);
}

/**
 * A file name that is safe in the message folder: no path, no control or shell-special characters, not hidden,
 * at most 100 characters, not colliding with `message.*` or another attachment (compared case-insensitively).
 */
function safeFileName(filename: string, taken: Set<string>): string {
  const base = filename.split(/[/\\]/).pop() ?? '';
  let safe = base.normalize('NFC').replace(/[^\p{L}\p{N}._ ()+-]/gu, '_').replace(/^[.\s]+/, '').trim();
  if (safe === '') safe = 'attachment';
  if ([...safe].length > 100) {
    const ext = /\.[A-Za-z0-9]{1,10}$/.exec(safe)?.[0] ?? '';
    safe = [...safe].slice(0, 100 - ext.length).join('') + ext;
  }
  let name = safe;
  for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${n}-${safe}`;
  taken.add(name.toLowerCase());
  return name;
}
