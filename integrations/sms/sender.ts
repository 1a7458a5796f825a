/** Outgoing SMS, one interface for every transport (so far `log`: integrations/sms/log.ts). */
export type Sms = { to: string; body: string; idempotencyKey: string };
export type SmsSender = {
  readonly name: 'log';
  send(sms: Sms): Promise<{ messageId: string }>;
};
