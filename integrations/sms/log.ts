import { createHash } from 'node:crypto';
import type { Logger } from '../../platform/logger.js';
import type { Sms, SmsSender } from './sender.js';

/**
 * The development SMS transport: one structured log line per message (`msg: 'sms sent'`), nothing leaves the
 * machine. The phone number is masked except its last two digits. The body is logged as is, because reading it is
 * the point of this transport; do not enable it where a log reader must not see message contents.
 */
export type LogSmsOptions = { log: Pick<Logger, 'info'> };

/** The number is not an E.164 phone number (`+` and 7 to 15 digits): retrying will not help. */
export class SmsRejectedError extends Error {
  readonly retryable = false;
  constructor(message: string) {
    super(message);
    this.name = 'SmsRejectedError';
  }
}

/** `+4915123456778` → `+***********78`; only the digits (and a leading `+`) are kept. */
export function maskPhone(e164: string): string {
  const digits = e164.replace(/\D/g, '');
  const shown = digits.length > 2 ? digits.slice(-2) : '';
  return `${e164.startsWith('+') ? '+' : ''}${'*'.repeat(digits.length - shown.length)}${shown}`;
}

export function createLogSms({ log }: LogSmsOptions): SmsSender & { readonly name: 'log' } {
  return {
    name: 'log',
    async send(sms: Sms) {
      const to = sms.to.replace(/[\s().-]/g, '');
      if (!/^\+[1-9]\d{6,14}$/.test(to)) throw new SmsRejectedError(`sms: not an E.164 number (${maskPhone(to)})`);
      // The same idempotency key always gives the same id, as a provider that dedupes would answer.
      const messageId = `log-${createHash('sha256').update(sms.idempotencyKey, 'utf8').digest('hex').slice(0, 20)}`;
      const line = { messageId, to: maskPhone(to), idempotencyKey: sms.idempotencyKey, chars: [...sms.body].length, body: sms.body };
      log.info({ sms: line }, 'sms sent');
      return { messageId };
    },
  };
}
