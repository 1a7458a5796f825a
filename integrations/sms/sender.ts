/** Outgoing SMS, one interface for every transport: `log` (integrations/sms/log.ts), `twilio` (integrations/sms/twilio.ts). */
export type Sms = {
  to: string;
  body: string;
  idempotencyKey: string;
  /** The booking the message is for: a transport with delivery receipts (Twilio's status callbacks) sends it back with them. */
  bookingId?: string;
};
export type SmsSender = {
  readonly name: 'log' | 'twilio';
  /** `status`: the transport's first word on the message (Twilio: queued, accepted, ...); `sent` when it has none. */
  send(sms: Sms): Promise<{ messageId: string; status?: string }>;
};

/**
 * A message the transport did not take. `retryable` false: sending it again cannot help (an invalid or unreachable
 * number, a refused sender); `code` is the transport's error code (Twilio: 21211, 21614, ...) when it gave one.
 * `retryAfterMs`: how long the transport asked to wait before the next try (Retry-After), when it said.
 */
export class SmsSendError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly code: string | null = null,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'SmsSendError';
  }
}
