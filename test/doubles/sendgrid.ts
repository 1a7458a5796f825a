import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';

/**
 * A local HTTP double of SendGrid's v3 Mail Send API (`POST /v3/mail/send`), for tests through the real SDK.
 *
 * Like SendGrid it answers 401 without `Authorization: Bearer SG.…` (or, when `apiKey` is given, without exactly
 * that key), 400 with an `errors` array for a body it cannot send, 413 above 30 MB, 202 with an empty body and an
 * `X-Message-Id` header when it accepts a message, and 200 without storing anything in sandbox mode
 * (`mail_settings.sandbox_mode.enable === true`). Error bodies are `{ errors: [{ message, field, help }] }`.
 * The validation is deliberately minimal: the fields SendGrid itself requires.
 */
export type SendgridAttachment = { filename: string; type?: string; disposition?: string; contentId?: string; content: Buffer };

export type SendgridMessage = {
  messageId: string;
  to: string[];
  from: string;
  subject: string | undefined;
  content: { type: string; value: string }[];
  attachments: SendgridAttachment[];
  customArgs: Record<string, string>;
  headers: Record<string, string>;
  /** The request body as received. */
  body: Record<string, unknown>;
};

export type SendgridDouble = {
  url: string;
  /** Accepted messages, in order. */
  messages: SendgridMessage[];
  /** Every request that reached the double, including refused ones. */
  requests: { status: number; authorization: 'bearer' | 'other' | 'none' }[];
  /** The next `n` requests get `status` (SendGrid-style body; 429 also gets rate-limit headers). */
  failNext(n: number, status: 429 | 500 | 502 | 503 | 504): void;
  /** The next `n` requests are never answered (until `close`): for client timeouts. */
  hangNext(n: number): void;
  close(): Promise<void>;
};

const HELP = 'http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html';
const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const MAX_BODY_BYTES = 30 * 1024 * 1024;

type SgError = { message: string; field: string | null; help: string | null };
const sgError = (message: string, field: string | null = null, help: string | null = null): SgError => ({ message, field, help });
/** SendGrid's wording for each refusal, with the `help` anchor. */
const MSG = {
  personalizations: ['The personalizations field is required and must have at least one personalization.', '#-Personalizations-Errors'],
  to: [
    'The to array is required for all personalization objects, and must have at least one email object with a valid email address.',
    '#message.personalizations.to',
  ],
  email: ['Does not contain a valid address.', '#message.personalizations.to'],
  from: [
    'The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.',
    '#message.from',
  ],
  subject: [
    'The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.',
    '#message.subject',
  ],
  content: [
    'Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.',
    '#message.content',
  ],
  contentValue: ['The content value must be a string at least one character in length.', '#message.content.value'],
  attachments: ['The attachments field must be an array.', '#message.attachments'],
  filename: ['The attachment filename parameter is required.', '#message.attachments.filename'],
  base64: ['The attachment content must be base64 encoded.', '#message.attachments.content'],
  disposition: ['The disposition of your attachment can be either "inline" or "attachment".', '#message.attachments.disposition'],
} as const satisfies Record<string, readonly [string, string]>;
const invalid = (m: keyof typeof MSG, field: string): SgError => sgError(MSG[m][0], field, `${HELP}${MSG[m][1]}`);

const FAILURES: Record<number, string> = {
  429: 'too many requests',
  500: 'An internal server error occurred.',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export async function startSendgridDouble(o: { apiKey?: string } = {}): Promise<SendgridDouble> {
  const messages: SendgridMessage[] = [];
  const requests: SendgridDouble['requests'] = [];
  const failures: number[] = [];
  let hang = 0;
  const hanging: (() => void)[] = [];

  const reply = (c: Context, status: 400 | 401 | 413 | 429 | 500 | 502 | 503 | 504, errors: SgError[]) => {
    requests.push({ status, authorization: authKind(c.req.header('authorization')) });
    return c.json({ errors }, status);
  };

  const app = new Hono().post('/v3/mail/send', async (c) => {
    if (hang > 0) {
      hang--;
      return new Promise<Response>((resolve) => hanging.push(() => resolve(c.body(null, 504))));
    }
    const failure = failures.shift();
    if (failure !== undefined) {
      if (failure === 429) {
        c.header('X-RateLimit-Limit', '600');
        c.header('X-RateLimit-Remaining', '0');
        c.header('X-RateLimit-Reset', String(Math.ceil(Date.now() / 1000) + 1));
      }
      return reply(c, failure as 429 | 500 | 502 | 503 | 504, [sgError(FAILURES[failure] ?? 'error')]);
    }
    const auth = c.req.header('authorization') ?? '';
    const key = /^Bearer (SG\.\S+)$/.exec(auth)?.[1];
    if (!key || (o.apiKey !== undefined && key !== o.apiKey)) {
      return reply(c, 401, [sgError('The provided authorization grant is invalid, expired, or revoked')]);
    }
    const raw = await c.req.arrayBuffer();
    if (raw.byteLength > MAX_BODY_BYTES) return reply(c, 413, [sgError('Payload Too Large')]);
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(raw).toString('utf8'));
    } catch {
      return reply(c, 400, [sgError('Bad Request')]);
    }
    const parsed = validate(body);
    if ('errors' in parsed) return reply(c, 400, parsed.errors);

    requests.push({ status: parsed.sandbox ? 200 : 202, authorization: 'bearer' });
    if (parsed.sandbox) return c.body(null, 200);
    const messageId = randomBytes(16).toString('base64url').slice(0, 22);
    messages.push({ ...parsed.message, messageId });
    c.header('X-Message-Id', messageId);
    return c.body(null, 202);
  });

  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    messages,
    requests,
    failNext(n, status) {
      for (let i = 0; i < n; i++) failures.push(status);
    },
    hangNext(n) {
      hang += n;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const release of hanging.splice(0)) release();
        (server as Server).closeAllConnections?.();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function authKind(header: string | undefined): 'bearer' | 'other' | 'none' {
  if (header === undefined) return 'none';
  return header.startsWith('Bearer ') ? 'bearer' : 'other';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** SendGrid's required fields, with its error messages and field paths. */
function validate(body: unknown): { errors: SgError[] } | { sandbox: boolean; message: Omit<SendgridMessage, 'messageId'> } {
  const errors: SgError[] = [];
  if (!isObject(body)) return { errors: [sgError('Bad Request')] };
  const templated = typeof body.template_id === 'string';

  const to: string[] = [];
  const ps = body.personalizations;
  if (!Array.isArray(ps) || ps.length === 0 || ps.length > 1000) {
    errors.push(invalid('personalizations', 'personalizations'));
  } else {
    ps.forEach((p, i) => {
      const list = isObject(p) ? p.to : undefined;
      if (!Array.isArray(list) || list.length === 0) {
        errors.push(invalid('to', `personalizations.${i}.to`));
        return;
      }
      list.forEach((r, j) => {
        const email = isObject(r) ? str(r.email) : undefined;
        if (!email || !EMAIL.test(email)) errors.push(invalid('email', `personalizations.${i}.to.${j}.email`));
        else to.push(email);
      });
    });
  }

  const from = isObject(body.from) ? str(body.from.email) : undefined;
  if (!from || !EMAIL.test(from)) errors.push(invalid('from', 'from.email'));

  const subject = str(body.subject);
  const hasSubject = (p: unknown) => isObject(p) && typeof p.subject === 'string' && p.subject !== '';
  const everyHasSubject = Array.isArray(ps) && ps.length > 0 && ps.every(hasSubject);
  if (!templated && (subject === undefined || subject === '') && !everyHasSubject) errors.push(invalid('subject', 'subject'));

  const content: { type: string; value: string }[] = [];
  if (Array.isArray(body.content) && body.content.length > 0) {
    body.content.forEach((item, i) => {
      const type = isObject(item) ? str(item.type) : undefined;
      const value = isObject(item) ? str(item.value) : undefined;
      if (!type || value === undefined || value === '') errors.push(invalid('contentValue', `content.${i}.value`));
      else content.push({ type, value });
    });
  } else if (!templated) {
    errors.push(invalid('content', 'content'));
  }

  const attachments: SendgridAttachment[] = [];
  if (body.attachments !== undefined) {
    if (!Array.isArray(body.attachments)) errors.push(invalid('attachments', 'attachments'));
    else
      body.attachments.forEach((a, i) => {
        const filename = isObject(a) ? str(a.filename) : undefined;
        const b64 = isObject(a) ? str(a.content) : undefined;
        const disposition = isObject(a) ? str(a.disposition) : undefined;
        if (!filename) errors.push(invalid('filename', `attachments.${i}.filename`));
        if (b64 === undefined || b64 === '' || !BASE64.test(b64)) errors.push(invalid('base64', `attachments.${i}.content`));
        if (disposition !== undefined && disposition !== 'inline' && disposition !== 'attachment') {
          errors.push(invalid('disposition', `attachments.${i}.disposition`));
        }
        if (filename && b64 && BASE64.test(b64) && isObject(a)) {
          const att: SendgridAttachment = { filename, content: Buffer.from(b64, 'base64') };
          if (typeof a.type === 'string') att.type = a.type;
          if (disposition !== undefined) att.disposition = disposition;
          if (typeof a.content_id === 'string') att.contentId = a.content_id;
          attachments.push(att);
        }
      });
  }

  if (errors.length > 0) return { errors };
  const stringMap = (v: unknown): Record<string, string> =>
    isObject(v) ? Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string')) : {};
  const settings = isObject(body.mail_settings) ? body.mail_settings : {};
  const sandbox = isObject(settings.sandbox_mode) && settings.sandbox_mode.enable === true;
  return {
    sandbox,
    message: { to, from: from!, subject, content, attachments, customArgs: stringMap(body.custom_args), headers: stringMap(body.headers), body },
  };
}
