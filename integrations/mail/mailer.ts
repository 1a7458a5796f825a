/** Outgoing e-mail, one interface for every transport (`outbox` folder in development, `sendgrid` in production). */
export type MailAttachment = { filename: string; contentType: string; content: Uint8Array };

export type Mail = {
  to: string;
  from: string;
  subject: string;
  text: string;
  html?: string;
  attachments: MailAttachment[];
  /** Stable per logical message (e.g. `tickets-<bookingId>`): transports that can dedupe use it. */
  idempotencyKey: string;
  /** Extra headers / custom args (never secrets). */
  headers?: Record<string, string>;
};

export type Mailer = {
  readonly name: 'outbox' | 'sendgrid' | 'smtp';
  /** Resolves when the transport accepted the message; throws on failure (the caller retries). */
  send(mail: Mail): Promise<{ messageId: string }>;
};
