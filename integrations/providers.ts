import type { Config } from '../platform/config.js';
import type { RedisClient } from '../platform/redis.js';
import type { PaymentProvider } from '../engine/payments/provider.js';
import type { SimulatedPaymentKeys } from '../engine/keys.js';
import { createSimulatedProvider } from './payments/simulated.js';
import { createStripeProvider } from './payments/stripe.js';
import { createOutboxMailer } from './mail/outbox.js';
import { createSendgridMailer } from './mail/sendgrid.js';
import { createSmtpMailer } from './mail/smtp.js';
import type { Mailer } from './mail/mailer.js';
import type { SmsSender } from './sms/sender.js';
import { createLogSms } from './sms/log.js';
import { createTwilioSms } from './sms/twilio.js';
import type { Logger } from '../platform/logger.js';

/** The payment provider the configuration names (simulated by default, with `simulatedKeys` = `simulatedPaymentKeys(ns)`
 *  from engine/keys.ts; Stripe with STRIPE_SECRET_KEY). */
export function createPaymentProvider(config: Config, redis: RedisClient, simulatedKeys: SimulatedPaymentKeys): PaymentProvider {
  if (config.PAYMENTS_PROVIDER === 'stripe') {
    const url = config.STRIPE_API_URL ? new URL(config.STRIPE_API_URL) : undefined;
    return createStripeProvider({
      secretKey: config.STRIPE_SECRET_KEY!,
      ...(url ? { host: url.hostname, port: Number(url.port || (url.protocol === 'http:' ? 80 : 443)), protocol: url.protocol === 'http:' ? 'http' : 'https' } : {}),
    });
  }
  const [min, max] = config.SIMULATED_LATENCY_MS.split('-').map(Number) as [number, number | undefined];
  return createSimulatedProvider({ redis, keys: simulatedKeys, latencyMs: max === undefined ? min : [min, max] });
}

/** The e-mail transport the configuration names (the outbox folder by default). */
export function createMailer(config: Config): Mailer {
  switch (config.MAIL_PROVIDER) {
    case 'sendgrid':
      return createSendgridMailer({ apiKey: config.SENDGRID_API_KEY!, ...(config.SENDGRID_BASE_URL ? { baseUrl: config.SENDGRID_BASE_URL } : {}) });
    case 'smtp':
      return createSmtpMailer({ url: config.SMTP_URL! });
    case 'outbox':
      return createOutboxMailer({ dir: config.OUTBOX_DIR });
  }
}

/** The SMS transport the configuration names (a log line by default; none: no SMS at all). */
export function createSms(config: Config, log: Logger): SmsSender | undefined {
  switch (config.SMS_PROVIDER) {
    case 'log':
      return createLogSms({ log });
    case 'twilio':
      return createTwilioSms({
        accountSid: config.TWILIO_ACCOUNT_SID!, authToken: config.TWILIO_AUTH_TOKEN!,
        from: config.TWILIO_FROM, messagingServiceSid: config.TWILIO_MESSAGING_SERVICE_SID,
        statusCallbackUrl: config.TWILIO_STATUS_CALLBACK_URL, apiUrl: config.TWILIO_API_URL,
      });
    case 'none':
      return undefined;
  }
}
