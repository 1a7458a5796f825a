import { setTimeout as sleep } from 'node:timers/promises';
import twilio from 'twilio';
import { maskPhone } from './log.js';
import { SmsSendError, type Sms, type SmsSender } from './sender.js';

/**
 * The Twilio SMS transport, through the official `twilio` SDK (Messages API: POST /2010-04-01/Accounts/{Sid}/Messages.json).
 *
 * - The sender is `from` (a Twilio number, E.164) or a Messaging Service (`messagingServiceSid`, MG...).
 * - 429 and 5xx answers are retried here, up to `maxRetries` times, waiting what `Retry-After` says (capped at
 *   `maxRetryAfterMs`; exponential from 500 ms when it says nothing). The SDK's own `autoRetry` ignores Retry-After, so it
 *   stays off; the retries live in an `httpClient` (the SDK's documented extension point), which sees the headers.
 *   After that: a retryable `SmsSendError` (with `retryAfterMs`), and the notify job retries later.
 * - Numbers Twilio will never reach (21211 invalid, 21614 not a mobile, 21610 opted out, 21408 region not enabled, ...)
 *   and any other 4xx: a non-retryable `SmsSendError` with Twilio's code.
 * - Twilio has no idempotency key: a retry after an answer was lost (a timeout, a 500 after Twilio created the message)
 *   can send the message twice. `idempotencyKey` is not sent anywhere; the caller's delivery claim is the guard.
 * - `statusCallbackUrl`: where Twilio posts delivery receipts (POST /api/webhooks/twilio); the booking id rides in its
 *   query string, which the signature covers.
 * - `apiUrl`: where the API is (tests: a local double). Default: https://api.twilio.com.
 * The auth token is never logged: it travels only in the Authorization header the SDK builds.
 */
export type TwilioSmsOptions = {
  accountSid: string;
  authToken: string;
  from?: string | undefined;
  messagingServiceSid?: string | undefined;
  statusCallbackUrl?: string | undefined;
  apiUrl?: string | undefined;
  maxRetries?: number;
  maxRetryAfterMs?: number;
  timeoutMs?: number;
};

/** Twilio errors that mean "this number will not get the message", whatever is retried. */
export const PERMANENT_RECIPIENT_ERRORS: Readonly<Record<number, string>> = {
  21211: 'invalid To number',
  21214: 'To number cannot be reached',
  21217: 'invalid phone number',
  21401: 'invalid phone number',
  21407: 'this number type does not support SMS',
  21408: 'permission to send to this region is not enabled',
  21610: 'the recipient has opted out (STOP)',
  21612: 'this number cannot be reached from the sender',
  21614: 'To number is not a mobile number',
  21635: 'To number cannot be a landline',
  30003: 'unreachable destination handset',
  30005: 'unknown destination handset',
  30006: 'landline or unreachable carrier',
};

type RequestOptions<T> = Parameters<twilio.RequestClient['request']>[0] & { data?: T };
type Response<T> = Awaited<ReturnType<typeof twilio.RequestClient.prototype.request<T>>>;

/** Retry-After in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const header = (headers: unknown, name: string): unknown => {
  if (!headers || typeof headers !== 'object') return undefined;
  const h = headers as Record<string, unknown> & { get?: (n: string) => unknown };
  return typeof h.get === 'function' ? h.get(name) : (h[name] ?? h[name.toLowerCase()]);
};

/**
 * The SDK's RequestClient, sent to `apiUrl` instead of Twilio's host when given, retrying 429 and 5xx answers as
 * Retry-After asks. Other answers go back to the SDK (which turns an error into a RestException); a 429 or 5xx it
 * gives up on is thrown as a retryable SmsSendError with the wait Twilio asked for.
 */
class RetryingRequestClient extends twilio.RequestClient {
  constructor(
    private readonly o: { apiUrl?: URL | undefined; maxRetries: number; maxRetryAfterMs: number; timeoutMs: number },
  ) {
    super({ timeout: o.timeoutMs, autoRetry: false });
  }

  override async request<T>(opts: RequestOptions<T>): Promise<Response<T>> {
    let uri = opts.uri;
    if (this.o.apiUrl) {
      const u = new URL(opts.uri);
      u.protocol = this.o.apiUrl.protocol;
      u.host = this.o.apiUrl.host;
      uri = u.href;
    }
    for (let attempt = 0; ; attempt++) {
      const res = await super.request<T>({ ...opts, uri });
      if (res.statusCode !== 429 && res.statusCode < 500) return res;
      const asked = retryAfterMs(header(res.headers, 'retry-after'));
      const wait = asked ?? Math.min(500 * 2 ** attempt, this.o.maxRetryAfterMs);
      if (attempt >= this.o.maxRetries || wait > this.o.maxRetryAfterMs) {
        // given up here: the caller's retry should wait what Twilio asked (the SDK's RestException drops the headers)
        const body = (typeof res.body === 'string' ? safeJson(res.body) : res.body) as { code?: unknown; message?: unknown } | null;
        throw toSmsSendError({ status: res.statusCode, code: body?.code, message: body?.message }, asked);
      }
      await sleep(wait);
    }
  }
}

/** A Twilio RestException (or a network error) as an SmsSendError: retryable or not, with Twilio's code. */
export function toSmsSendError(err: unknown, retryAfter?: number): SmsSendError {
  const e = err as { status?: unknown; code?: unknown; message?: unknown; moreInfo?: unknown };
  if (typeof e?.status === 'number') {
    const status = e.status;
    const code = typeof e.code === 'number' || typeof e.code === 'string' ? Number(e.code) : null;
    const known = code !== null ? PERMANENT_RECIPIENT_ERRORS[code] : undefined;
    // 429 and 5xx: later; every other refusal (an unreachable number, a bad sender, bad credentials) answers the same
    // to the same request, so it is final for this message (the recorded code says which)
    const retryable = status === 429 || status >= 500;
    const detail = typeof e.message === 'string' ? e.message : known ?? 'error';
    return new SmsSendError(`twilio: ${status}${code !== null ? ` ${code}` : ''} ${detail}`, retryable, code !== null ? String(code) : null, retryable ? retryAfter : undefined);
  }
  // no answer (refused connection, reset, timeout): Twilio may or may not have the message
  return new SmsSendError(`twilio: no answer (${(err as Error)?.message ?? String(err)})`, true);
}

export function createTwilioSms(o: TwilioSmsOptions): SmsSender & { readonly name: 'twilio' } {
  if (!o.from && !o.messagingServiceSid) throw new Error('twilio: a sender is required (from or messagingServiceSid)');
  const httpClient = new RetryingRequestClient({
    apiUrl: o.apiUrl ? new URL(o.apiUrl) : undefined,
    maxRetries: o.maxRetries ?? 3,
    maxRetryAfterMs: o.maxRetryAfterMs ?? 10_000,
    timeoutMs: o.timeoutMs ?? 10_000,
  });
  const client = twilio(o.accountSid, o.authToken, { httpClient, autoRetry: false });
  return {
    name: 'twilio',
    async send(sms: Sms) {
      const to = sms.to.replace(/[\s().-]/g, '');
      if (!/^\+[1-9]\d{6,14}$/.test(to)) throw new SmsSendError(`twilio: not an E.164 number (${maskPhone(to)})`, false, '21211');
      let callback: string | undefined;
      if (o.statusCallbackUrl) {
        const u = new URL(o.statusCallbackUrl);
        if (sms.bookingId) u.searchParams.set('bookingId', sms.bookingId);
        callback = u.href;
      }
      try {
        const m = await client.messages.create({
          to,
          body: sms.body,
          ...(o.messagingServiceSid ? { messagingServiceSid: o.messagingServiceSid } : { from: o.from! }),
          ...(callback ? { statusCallback: callback } : {}),
        });
        return { messageId: m.sid, status: m.status };
      } catch (err) {
        throw err instanceof SmsSendError ? err : toSmsSendError(err);
      }
    },
  };
}

/** Twilio's own check of a status callback: HMAC-SHA1 of the URL it called and the sorted form fields (SDK's validateRequest). */
export function verifyTwilioSignature(authToken: string, signature: string | undefined, url: string, params: Record<string, string>): boolean {
  if (!signature) return false;
  return twilio.validateRequest(authToken, signature, url, params);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
