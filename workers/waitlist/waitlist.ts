import type { Logger } from 'pino';
import { createPollLoop } from '../../platform/loop.js';
import type { Engine, WaitlistOffer } from '../../engine/index.js';
import type { Metrics } from '../../platform/metrics.js';
import type { Mailer } from '../../integrations/mail/mailer.js';

export type WaitlistWorkerOptions = {
  engine: Engine;
  log: Logger;
  mailer: Mailer;
  mailFrom: string;
  /** The web app's public URL: the offer's e-mail links to its checkout there. */
  publicUrl: string;
  metrics?: Metrics;
  tickMs?: number;
};

/** The offer e-mail's idempotency key is this and the booking id (one message per offer; the demo tells them apart by it). */
export const OFFER_MAIL_KEY_PREFIX = 'waitlist-offer-';

/** The e-mail of one waitlist offer: what is held, until when, and the link to its checkout. */
export function offerMail(o: WaitlistOffer, eventName: string, publicUrl: string, from: string, offerTtlMs: number) {
  const link = `${publicUrl}/bookings/${o.bookingId}`;
  const minutes = Math.max(1, Math.round(offerTtlMs / 60_000));
  return {
    to: o.email,
    from,
    subject: `Tickets for ${eventName} are held for you`,
    text:
      `Good news: ${o.ticketCount} ticket(s) for ${eventName} came back, and you were next on the waitlist.\n\n` +
      `They are held for you until ${new Date(o.expiresAtMs).toISOString().replace('T', ' ').slice(0, 16)} UTC (${minutes} minutes from the offer). ` +
      `Pay for them here:\n\n${link}\n\nIf you do not, they go to the next person in line.\n`,
    attachments: [],
    idempotencyKey: `${OFFER_MAIL_KEY_PREFIX}${o.bookingId}`,
    headers: { 'X-Booking-Id': o.bookingId },
  };
}

/**
 * The waitlist worker: every tick, for each event with a waitlist, offers the free tickets of each tier whose line is
 * open to the buyers in line (engine.waitlist.offer: each offer a hold, made by one script, so a returned ticket goes
 * to one offer or, once no one waits, to general sale), e-mails each offer (again on the next tick if the transport
 * failed; the transport's idempotency key keeps it one message), and closes the offers that ended (taken or expired).
 * Several workers may run: the scripts decide, and each offer is closed (and counted) once.
 */
export function createWaitlistWorker(o: WaitlistWorkerOptions) {
  const tickMs = o.tickMs ?? 1000;
  const m = o.metrics;
  if (m) for (const c of [m.waitlistOffers, m.waitlistOffersTaken, m.waitlistOffersExpired]) c.inc(0);
  m?.workerErrors.inc({ worker: 'waitlist' }, 0);

  async function mail(offer: WaitlistOffer): Promise<void> {
    try {
      const ev = await o.engine.catalog.get(offer.eventId);
      await o.mailer.send(offerMail(offer, ev.name, o.publicUrl, o.mailFrom, o.engine.waitlist.offerTtlMs));
      await o.engine.waitlist.markMailed(offer);
    } catch (err) {
      m?.workerErrors.inc({ worker: 'waitlist' });
      o.log.warn({ bookingId: offer.bookingId, err: { message: (err as Error).message } }, 'waitlist offer e-mail failed; the next tick sends it again');
    }
  }

  /** One pass over every event with a waitlist; the number of offers made and closed. */
  async function tick(): Promise<number> {
    let work = 0;
    const { waitlist } = o.engine;
    for (const eventId of await waitlist.events()) {
      for (const ended of await waitlist.settle(eventId)) {
        (ended.outcome === 'taken' ? m?.waitlistOffersTaken : m?.waitlistOffersExpired)?.inc();
        o.log.info({ eventId, bookingId: ended.bookingId, outcome: ended.outcome }, 'waitlist offer ended');
        work++;
      }
      for (const tierId of await waitlist.openTiers(eventId)) {
        const made = await waitlist.offer(eventId, tierId);
        m?.waitlistOffers.inc(made.length);
        work += made.length;
      }
      for (const offer of await waitlist.openOffers(eventId)) {
        if (!offer.mailed) {
          await mail(offer);
          o.log.info({ eventId, bookingId: offer.bookingId, tickets: offer.ticketCount }, 'waitlist offer made');
        }
      }
    }
    return work;
  }

  const loop = createPollLoop({
    pass: tick,
    busyMs: tickMs,
    idleMs: tickMs,
    errorMs: 2 * tickMs,
    maxErrorMs: 10_000,
    onError(err) {
      m?.workerErrors.inc({ worker: 'waitlist' });
      o.log.warn({ err: { message: (err as Error).message } }, 'waitlist tick failed; retrying');
    },
  });
  return { tick, start: () => loop.start(), stop: () => loop.stop() };
}
