import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startSendgridDouble, type SendgridDouble } from '../../test/doubles/sendgrid.js';
import type { Mail } from './mailer.js';
import { SendgridError, createSendgridMailer } from './sendgrid.js';

const API_KEY = 'SG.test-key.0123456789abcdefghijklmnopqrstuvwxyz';
const PDF = new Uint8Array(Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 256))]));
const mail = (over: Partial<Mail> = {}): Mail => ({
  to: 'zoe@example.test',
  from: 'Floodgate <tickets@floodgate.test>',
  subject: 'Your tickets for Floodgate Live',
  text: 'Hello Zoë, your tickets are attached.',
  attachments: [{ filename: 'tickets.pdf', contentType: 'application/pdf', content: PDF }],
  idempotencyKey: 'tickets-bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1',
  ...over,
});

let sg: SendgridDouble;
beforeEach(async () => {
  sg = await startSendgridDouble({ apiKey: API_KEY });
});
afterEach(async () => {
  await sg.close();
});
const mailer = (over: Partial<Parameters<typeof createSendgridMailer>[0]> = {}) =>
  createSendgridMailer({ apiKey: API_KEY, baseUrl: sg.url, timeoutMs: 2000, ...over });
const failure = (p: Promise<unknown>) => p.then(() => expect.fail('expected a rejection'), (e: unknown) => e as SendgridError);

describe('createSendgridMailer', () => {
  describe('when SendGrid accepts the message', () => {
    it('delivers recipient, subject, text and the PDF attachment, and returns X-Message-Id', async () => {
      const m = mailer();
      expect(m.name).toBe('sendgrid');
      const { messageId } = await m.send(mail({ headers: { 'X-Booking-Id': 'bk_1' } }));
      expect(sg.messages).toHaveLength(1);
      const got = sg.messages[0]!;
      expect(messageId).toBe(got.messageId);
      expect(got.to).toEqual(['zoe@example.test']);
      expect(got.from).toBe('tickets@floodgate.test');
      expect(got.body.from).toEqual({ email: 'tickets@floodgate.test', name: 'Floodgate' });
      expect(got.subject).toBe('Your tickets for Floodgate Live');
      expect(got.content).toEqual([{ type: 'text/plain', value: 'Hello Zoë, your tickets are attached.' }]);
      expect(got.attachments).toHaveLength(1);
      expect(got.attachments[0]).toMatchObject({ filename: 'tickets.pdf', type: 'application/pdf', disposition: 'attachment' });
      expect(new Uint8Array(got.attachments[0]!.content)).toEqual(PDF);
      expect(got.customArgs).toEqual({ idempotencyKey: 'tickets-bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1' });
      expect(got.headers).toEqual({ 'X-Booking-Id': 'bk_1' });
    });

    it('sends text and html as two content blocks', async () => {
      await mailer().send(mail({ html: '<p>Hello</p>' }));
      expect(sg.messages[0]!.content).toEqual([
        { type: 'text/plain', value: 'Hello Zoë, your tickets are attached.' },
        { type: 'text/html', value: '<p>Hello</p>' },
      ]);
    });

    it('in sandbox mode gets 200 and nothing is stored', async () => {
      const { messageId } = await mailer({ sandbox: true }).send(mail());
      expect(messageId).toBe('sandbox:tickets-bk_k3j9x0a1b2c3_q8w7e6r5t4y3u2i1');
      expect(sg.messages).toEqual([]);
      expect(sg.requests).toEqual([{ status: 200, authorization: 'bearer' }]);
    });
  });

  describe('when SendGrid refuses', () => {
    it('a bad API key is 401 and not retryable, and the key appears nowhere in the error', async () => {
      const badKey = 'SG.wrong-key.secretsecretsecret';
      const err = await failure(mailer({ apiKey: badKey }).send(mail()));
      expect(err).toBeInstanceOf(SendgridError);
      expect(err).toMatchObject({ status: 401, retryable: false });
      expect(err.message).toMatch(/authorization grant is invalid/);
      const dump = `${inspect(err, { depth: 10, showHidden: true })} ${JSON.stringify(err)} ${err.stack}`;
      expect(dump).not.toContain('secretsecretsecret');
      expect(dump).not.toContain(API_KEY);
      expect(sg.messages).toEqual([]);
      expect(sg.requests).toEqual([{ status: 401, authorization: 'bearer' }]);
    });

    it('a message SendGrid cannot send is 400 and not retryable', async () => {
      const err = await failure(mailer().send(mail({ from: 'nobody' })));
      expect(err).toMatchObject({ status: 400, retryable: false });
      expect(err.message).toMatch(/from\.email/);
      expect(sg.messages).toEqual([]);
    });

    it.each([500, 503, 429] as const)('%i is retryable, and the next attempt goes through', async (status) => {
      sg.failNext(1, status);
      const m = mailer();
      const err = await failure(m.send(mail()));
      expect(err).toMatchObject({ status, retryable: true });
      expect(sg.messages).toEqual([]);
      await m.send(mail());
      expect(sg.messages).toHaveLength(1);
      expect(sg.requests.map((r) => r.status)).toEqual([status, 202]);
    });
  });

  describe('when SendGrid cannot be reached', () => {
    it('a refused connection is retryable', async () => {
      const port = await new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => resolve(p));
        });
      });
      const err = await failure(mailer({ baseUrl: `http://127.0.0.1:${port}` }).send(mail()));
      expect(err).toMatchObject({ retryable: true, code: 'ECONNREFUSED' });
      expect(err.status).toBeUndefined();
      expect(inspect(err, { depth: 10, showHidden: true })).not.toContain(API_KEY);
    });

    it('a timeout is retryable', async () => {
      sg.hangNext(1);
      const err = await failure(mailer({ timeoutMs: 150 }).send(mail()));
      expect(err.retryable).toBe(true);
      expect(err.code).toMatch(/ECONNABORTED|ETIMEDOUT/);
      expect(sg.messages).toEqual([]);
    });
  });

  describe('header injection', () => {
    it.each<[string, Partial<Mail>]>([
      ['subject', { subject: 'Hi\r\nBcc: victim@example.test' }],
      ['to', { to: 'zoe@example.test\nBcc: victim@example.test' }],
      ['a header', { headers: { 'X-Ok': 'a\r\nBcc: victim@example.test' } }],
    ])('refuses a line break in %s without calling SendGrid', async (_what, over) => {
      const err = await failure(mailer().send(mail(over)));
      expect(err).toMatchObject({ retryable: false });
      expect(sg.requests).toEqual([]);
    });
  });
});

describe('startSendgridDouble', () => {
  it('answers 401 without a Bearer SG. key, and 400 with SendGrid-style errors for a body without content', async () => {
    const noAuth = await fetch(`${sg.url}/v3/mail/send`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(noAuth.status).toBe(401);
    expect(((await noAuth.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/authorization/);
    const bad = await fetch(`${sg.url}/v3/mail/send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ personalizations: [{ to: [{ email: 'a@b.test' }] }], from: { email: 'c@d.test' } }),
    });
    expect(bad.status).toBe(400);
    const { errors } = (await bad.json()) as { errors: { field: string | null }[] };
    expect(errors.map((e) => e.field).sort()).toEqual(['content', 'subject']);
    expect(sg.messages).toEqual([]);
  });
});
