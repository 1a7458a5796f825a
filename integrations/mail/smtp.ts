import nodemailer from 'nodemailer';
import type { Mail, Mailer } from './mailer.js';
import { buildMessage } from './outbox.js';

/**
 * E-mail over SMTP (nodemailer), for a local mail catcher such as Mailpit in docker-compose. The message is the same
 * RFC 5322 MIME the outbox transport writes (same header checks), sent as is.
 */
export function createSmtpMailer({ url }: { url: string }): Mailer & { readonly name: 'smtp' } {
  const transport = nodemailer.createTransport(url);
  return {
    name: 'smtp',
    async send(mail: Mail) {
      const messageId = `<${mail.idempotencyKey}@floodgate>`;
      const { eml } = buildMessage(mail, { date: new Date(), messageId });
      await transport.sendMail({ envelope: { from: mail.from, to: [mail.to] }, raw: eml });
      return { messageId };
    },
  };
}
