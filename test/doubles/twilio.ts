import { createHmac, randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';

/**
 * A local HTTP double of Twilio's Programmable Messaging API, for tests through the real `twilio` SDK:
 *
 *   POST /2010-04-01/Accounts/{AccountSid}/Messages.json   form-encoded To, From | MessagingServiceSid, Body, StatusCallback
 *
 * As Twilio: HTTP basic auth (AccountSid:AuthToken, the path's Sid must be the user) or 401 code 20003; 400 with
 * Twilio's code for a missing To (21604), Body (21602) or sender (21603) and for a To that is not a phone number
 * (21211); Twilio's magic test numbers answer their documented errors: +15005550001 21211 (invalid), +15005550002
 * 21612 (cannot route), +15005550003 21408 (no international permission), +15005550004 21610 (opted out / blocked),
 * +15005550009 21614 (not a mobile number). An accepted message answers 201 with a Message resource (sid SM + 32 hex,
 * status `queued`, or `accepted` through a Messaging Service). Error bodies are `{ code, message, more_info, status }`.
 *
 * Delivery receipts: `callback(sid, status)` posts Twilio's status callback (form-encoded MessageSid, MessageStatus,
 * AccountSid, From, To, ApiVersion, SmsSid, SmsStatus, ErrorCode when failed) to the message's StatusCallback, signed
 * with `X-Twilio-Signature` (base64 HMAC-SHA1 keyed by the auth token, of the URL followed by each field name and
 * value sorted by name; computed here, not with the SDK). `autoCallbacks` posts the given statuses right after
 * accepting each message; `callbackOrigin` connects to another origin than the URL's (as a reverse proxy would).
 *
 * Test controls: `failNext(n, status, retryAfter?)` answers the next n requests with 429 (code 20429) or 5xx (20500)
 * before they execute, with a Retry-After header when given; `requests` records every request with its time.
 */
export type TwilioMessage = {
  sid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  statusCallback: string | null;
  status: string;
};

export type TwilioRequest = { at: number; path: string; status: number; authorized: boolean; form: Record<string, string> };

export type TwilioDouble = {
  url: string;
  accountSid: string;
  authToken: string;
  messages: TwilioMessage[];
  requests: TwilioRequest[];
  failNext(n: number, status: 429 | 500 | 502 | 503, retryAfter?: string): void;
  /** Posts a signed status callback for a message; resolves with the receiver's HTTP status. */
  callback(sid: string, status: string, errorCode?: string): Promise<number>;
  /** Callbacks posted so far (also the automatic ones), with the status each got. */
  callbacks: { sid: string; status: string; answered: number }[];
  close(): Promise<void>;
};

const MORE_INFO = 'https://www.twilio.com/docs/errors/';
const MAGIC: Record<string, [number, string]> = {
  '+15005550001': [21211, "The 'To' number +15005550001 is not a valid phone number."],
  '+15005550002': [21612, "The 'To' phone number: +15005550002, is not currently reachable using the 'From' phone number via SMS."],
  '+15005550003': [21408, 'Permission to send an SMS has not been enabled for the region indicated by the \'To\' number: +15005550003.'],
  '+15005550004': [21610, 'Attempt to send to unsubscribed recipient'],
  '+15005550009': [21614, "'To' number +15005550009 is not a valid mobile number"],
};

/** Twilio's signature of a request to `url` with `params` (its documented algorithm). */
export function twilioSignature(authToken: string, url: string, params: Record<string, string>): string {
  const data = Object.keys(params).sort().reduce((acc, k) => acc + k + params[k], url);
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf8')).digest('base64');
}

export async function startTwilioDouble(
  o: {
    accountSid?: string;
    authToken?: string;
    autoCallbacks?: string[];
    /** Where callbacks connect to instead of the StatusCallback URL's own origin (a reverse proxy in front of the app:
     *  the signature still covers the public URL Twilio was given). */
    callbackOrigin?: string;
  } = {},
): Promise<TwilioDouble> {
  const accountSid = o.accountSid ?? `AC${randomBytes(16).toString('hex')}`;
  const authToken = o.authToken ?? randomBytes(16).toString('hex');
  const messages: TwilioMessage[] = [];
  const requests: TwilioRequest[] = [];
  const callbacks: TwilioDouble['callbacks'] = [];
  const failures: { status: number; retryAfter: string | undefined }[] = [];
  const pending = new Set<Promise<unknown>>();

  const error = (c: Context, req: TwilioRequest, status: 400 | 401 | 404 | 429 | 500 | 502 | 503, code: number, message: string) => {
    req.status = status;
    return c.json({ code, message, more_info: `${MORE_INFO}${code}`, status }, status);
  };

  const callback = async (sid: string, status: string, errorCode?: string): Promise<number> => {
    const m = messages.find((x) => x.sid === sid);
    if (!m?.statusCallback) throw new Error(`twilio double: no status callback for ${sid}`);
    m.status = status;
    const params: Record<string, string> = {
      AccountSid: accountSid, ApiVersion: '2010-04-01', From: m.from ?? '+15005550006', MessageSid: sid, MessageStatus: status,
      SmsSid: sid, SmsStatus: status, To: m.to, ...(errorCode ? { ErrorCode: errorCode } : {}),
    };
    const target = new URL(m.statusCallback);
    if (o.callbackOrigin) {
      const via = new URL(o.callbackOrigin);
      target.protocol = via.protocol;
      target.host = via.host;
    }
    const res = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilioSignature(authToken, m.statusCallback, params), 'i-twilio-idempotency-token': randomBytes(8).toString('hex') },
      body: new URLSearchParams(params).toString(),
    });
    await res.arrayBuffer();
    callbacks.push({ sid, status, answered: res.status });
    return res.status;
  };

  const app = new Hono().post('/2010-04-01/Accounts/:sid/Messages.json', async (c) => {
    const req: TwilioRequest = { at: Date.now(), path: c.req.path, status: 0, authorized: false, form: {} };
    requests.push(req);
    const failure = failures.shift();
    if (failure) {
      if (failure.retryAfter !== undefined) c.header('Retry-After', failure.retryAfter);
      return failure.status === 429
        ? error(c, req, 429, 20429, 'Too Many Requests')
        : error(c, req, failure.status as 500 | 502 | 503, 20500, 'Internal Server Error');
    }
    const auth = /^Basic (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    const [user, pass] = auth ? Buffer.from(auth, 'base64').toString('utf8').split(':') : [];
    if (user !== accountSid || pass !== authToken) return error(c, req, 401, 20003, 'Authenticate');
    req.authorized = true;
    if (c.req.param('sid') !== accountSid) return error(c, req, 404, 20404, 'The requested resource was not found');
    if (!(c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) return error(c, req, 400, 21601, 'Invalid content type');
    const form = Object.fromEntries(new URLSearchParams(await c.req.text()));
    req.form = form;
    if (!form.To) return error(c, req, 400, 21604, "A 'To' phone number is required.");
    if (!form.From && !form.MessagingServiceSid) return error(c, req, 400, 21603, "A 'From' phone number is required.");
    if (!form.Body) return error(c, req, 400, 21602, 'Message body is required.');
    const magic = MAGIC[form.To];
    if (magic) return error(c, req, 400, magic[0], magic[1]);
    if (!/^\+[1-9]\d{6,14}$/.test(form.To)) return error(c, req, 400, 21211, `The 'To' number ${form.To} is not a valid phone number.`);
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const m: TwilioMessage = {
      sid, to: form.To, from: form.From ?? null, messagingServiceSid: form.MessagingServiceSid ?? null, body: form.Body,
      statusCallback: form.StatusCallback ?? null, status: form.MessagingServiceSid ? 'accepted' : 'queued',
    };
    messages.push(m);
    req.status = 201;
    const now = new Date().toUTCString().replace('GMT', '+0000');
    if (m.statusCallback && o.autoCallbacks?.length) {
      const p = (async () => {
        for (const s of o.autoCallbacks!) await callback(sid, s).catch(() => undefined);
      })();
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    return c.json(
      {
        account_sid: accountSid, api_version: '2010-04-01', body: m.body, date_created: now, date_sent: null, date_updated: now,
        direction: 'outbound-api', error_code: null, error_message: null, from: m.from, messaging_service_sid: m.messagingServiceSid,
        num_media: '0', num_segments: '1', price: null, price_unit: 'USD', sid, status: m.status, subresource_uris: { media: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}/Media.json` },
        to: m.to, uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
      },
      201,
    );
  });

  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    messages,
    requests,
    callbacks,
    callback,
    failNext(n, status, retryAfter) {
      for (let i = 0; i < n; i++) failures.push({ status, retryAfter });
    },
    async close() {
      await Promise.allSettled([...pending]);
      await new Promise<void>((resolve, reject) => {
        (server as Server).closeAllConnections?.();
        server.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}
