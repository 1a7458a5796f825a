import { MailService } from '@sendgrid/mail';
import type { Mail, Mailer } from './mailer.js';

/**
 * The production mail transport: SendGrid's v3 Mail Send API through `@sendgrid/mail`, on a dedicated `MailService`
 * (the SDK's default export is a process-wide singleton that other code could reconfigure).
 *
 * Errors are `SendgridError` with `retryable`: false for a message SendGrid will never accept (4xx other than 429, or
 * data the SDK refuses), true for 429, 5xx, timeouts and network failures. The error carries the status and
 * SendGrid's own error messages, never the request (whose headers hold the API key).
 *
 * SendGrid has no idempotency key: `idempotencyKey` travels as `custom_args` (it shows up in event webhooks), but a
 * retry after a timeout whose request did reach SendGrid sends the mail twice.
 */
export type SendgridMailerOptions = {
  apiKey: string;
  /** Defaults to https://api.sendgrid.com/; tests point it at `test/doubles/sendgrid.ts`. */
  baseUrl?: string;
  /** Per request; defaults to 10 s. */
  timeoutMs?: number;
  /** Sandbox mode: SendGrid validates the message and answers 200 without delivering it. */
  sandbox?: boolean;
};

export class SendgridError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    /** HTTP status, when SendGrid answered. */
    readonly status?: number,
    /** Network error code (ECONNREFUSED, ECONNABORTED, ...), when it did not. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'SendgridError';
  }
}

type SdkInternals = { client: { setDefaultRequest(key: 'baseUrl', value: string): unknown } };

// eslint-disable-next-line no-control-regex
const LINE_BREAK_OR_NUL = /[\r\n\u0000]/;

export function createSendgridMailer(options: SendgridMailerOptions): Mailer & { readonly name: 'sendgrid' } {
  const service = new MailService();
  service.setApiKey(options.apiKey); // also resets baseUrl to the region host, so set baseUrl after it
  // `client` is public in the SDK's JS (mail-service.js) but missing from its typings.
  if (options.baseUrl !== undefined) (service as unknown as SdkInternals).client.setDefaultRequest('baseUrl', options.baseUrl);
  service.setTimeout(options.timeoutMs ?? 10_000);

  return {
    name: 'sendgrid',
    async send(mail: Mail) {
      const fields = [['to', mail.to], ['from', mail.from], ['subject', mail.subject], ...Object.entries(mail.headers ?? {})];
      for (const [field, value] of fields) {
        if (LINE_BREAK_OR_NUL.test(`${field}${value}`)) throw new SendgridError(`sendgrid: line break or NUL in ${field}`, false);
      }
      const customArgs: Record<string, string> = { idempotencyKey: mail.idempotencyKey };
      const data: Parameters<typeof service.send>[0] = {
        to: mail.to,
        from: mail.from,
        subject: mail.subject,
        text: mail.text,
        ...(mail.html === undefined ? {} : { html: mail.html }),
        attachments: mail.attachments.map((a) => ({
          filename: a.filename,
          type: a.contentType,
          disposition: 'attachment',
          content: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength).toString('base64'),
        })),
        customArgs,
        ...(mail.headers && Object.keys(mail.headers).length > 0 ? { headers: { ...mail.headers } } : {}),
        ...(options.sandbox ? { mailSettings: { sandboxMode: { enable: true } } } : {}),
      };
      try {
        const [res] = await service.send(data);
        const id = headerValue(res.headers, 'x-message-id');
        return { messageId: id ?? `${options.sandbox ? 'sandbox' : 'unknown'}:${mail.idempotencyKey}` };
      } catch (err) {
        throw toSendgridError(err);
      }
    },
  };
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? String(v[0]) : typeof v === 'string' ? v : undefined;
  }
  return undefined;
}

/** Classifies an SDK failure. Builds a new error so nothing of the request (and its Authorization header) leaks. */
export function toSendgridError(err: unknown): SendgridError {
  const e = err as { code?: unknown; response?: { body?: unknown }; isAxiosError?: boolean; message?: unknown };
  if (typeof e?.code === 'number' && e.response) {
    const status = e.code;
    const body = e.response.body as { errors?: { message?: unknown; field?: unknown }[] } | undefined;
    const details = Array.isArray(body?.errors)
      ? body.errors.map((x) => `${String(x?.message ?? '')}${typeof x?.field === 'string' ? ` (${x.field})` : ''}`).join('; ')
      : '';
    const retryable = status === 429 || status >= 500 || status < 400;
    return new SendgridError(`sendgrid: ${status}${details ? ` ${details}` : ''}`, retryable, status);
  }
  if (e?.isAxiosError) {
    const code = typeof e.code === 'string' ? e.code : undefined;
    return new SendgridError(`sendgrid: request failed${code ? ` (${code})` : ''}`, true, undefined, code);
  }
  // Thrown by the SDK while building the request (e.g. an address it cannot parse): the same data fails again.
  return new SendgridError(`sendgrid: message refused by the client: ${String(e?.message ?? err)}`, false);
}
