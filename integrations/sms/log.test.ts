import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SmsRejectedError, createLogSms, maskPhone } from './log.js';

/** A real pino logger writing JSON lines into an array. */
function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { log: pino({ base: null, timestamp: false }, stream), lines };
}

describe('createLogSms', () => {
  it('writes one structured line per message with the number masked except its last two digits', async () => {
    const { log, lines } = capture();
    const sms = createLogSms({ log });
    expect(sms.name).toBe('log');
    const body = 'Your tickets: https://t.example/x\nSee you!';
    const { messageId } = await sms.send({ to: '+49 151 2345-6778', body, idempotencyKey: 'sms-bk_1' });
    await sms.send({ to: '+447700900123', body: 'second', idempotencyKey: 'sms-bk_2' });
    expect(lines).toHaveLength(2);
    const first = JSON.parse(lines[0]!) as { msg: string; sms: Record<string, unknown> };
    expect(first.msg).toBe('sms sent');
    expect(first.sms).toEqual({
      messageId,
      to: '+***********78',
      idempotencyKey: 'sms-bk_1',
      chars: 42,
      body: 'Your tickets: https://t.example/x\nSee you!',
    });
    expect(lines.join('\n')).not.toMatch(/4915123456778|151 2345|447700900/);
  });

  it('answers the same messageId for the same idempotency key', async () => {
    const sms = createLogSms({ log: capture().log });
    const a = await sms.send({ to: '+4915123456778', body: 'a', idempotencyKey: 'k1' });
    const b = await sms.send({ to: '+4915123456778', body: 'a', idempotencyKey: 'k1' });
    const c = await sms.send({ to: '+4915123456778', body: 'a', idempotencyKey: 'k2' });
    expect(a).toEqual(b);
    expect(c.messageId).not.toBe(a.messageId);
  });

  it.each(['', '12345', '015123456778', '+0123456789', '+49 abc 123456', '+1234567890123456'])(
    'refuses %j as non-retryable and logs nothing',
    async (to) => {
      const { log, lines } = capture();
      const err = await createLogSms({ log }).send({ to, body: 'x', idempotencyKey: 'k' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SmsRejectedError);
      expect((err as SmsRejectedError).retryable).toBe(false);
      expect(lines).toEqual([]);
    },
  );
});

describe('maskPhone', () => {
  it.each([
    ['+4915123456778', '+***********78'],
    ['4915123456778', '***********78'],
    ['12', '**'],
    ['', ''],
  ])('%j → %j', (input, out) => {
    expect(maskPhone(input)).toBe(out);
  });
});
