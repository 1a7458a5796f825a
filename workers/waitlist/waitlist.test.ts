import type { TierId, UserId } from '../../engine/ids.js';
import { describe, expect, it } from '../../test/fixtures.js';
import { createGaEvent } from '../../test/events.js';
import { memoryLogger } from '../../test/http.js';
import { createMetrics } from '../../platform/metrics.js';
import type { Mail, Mailer } from '../../integrations/mail/mailer.js';
import { createWaitlistWorker } from './waitlist.js';

const u = (s: string) => s as UserId;

/** A mailer that keeps what it sends and fails the first `failures` sends. */
function recordingMailer(failures = 0): Mailer & { sent: Mail[] } {
  const sent: Mail[] = [];
  let left = failures;
  return {
    name: 'outbox',
    sent,
    async send(mail) {
      if (left-- > 0) throw new Error('transport down');
      sent.push(mail);
      return { messageId: `m${sent.length}` };
    },
  };
}

const count = async (m: ReturnType<typeof createMetrics>, name: string) =>
  Number(/\} (\d+)$/m.exec(await m.registry.getSingleMetricAsString(name))?.[1] ?? NaN);

describe('waitlist worker', () => {
  it('offers returned tickets in order, e-mails the checkout link (again after a failed send), closes and counts each offer once', async ({ engine, clock }) => {
    const ev = await createGaEvent(engine, 1, { name: 'Tiny Gig' });
    const tier = ev.tiers[0]!.id as TierId;
    const held = await engine.bookings.create({ userId: u('holder'), eventId: ev.id, ticketCount: 1 });
    await engine.waitlist.join(ev.id, tier, u('first'), 'first@example.com', 1);
    await engine.waitlist.join(ev.id, tier, u('second'), 'second@example.com', 1);
    const mailer = recordingMailer(1);
    const metrics = createMetrics('workers');
    const worker = createWaitlistWorker({ engine, log: memoryLogger('silent').log, mailer, mailFrom: 'tickets@floodgate.test', publicUrl: 'https://tickets.example', metrics });

    expect(await worker.tick()).toBe(0); // nothing came back yet
    await engine.bookings.cancel(held.reservation.bookingId, u('holder'));
    expect(await worker.tick()).toBe(1);
    expect(mailer.sent).toEqual([]); // the transport failed: the offer stands, its mail goes on the next tick
    expect(await count(metrics, 'floodgate_worker_errors_total')).toBe(1);
    await worker.tick();
    expect(mailer.sent).toHaveLength(1);
    const [offer] = await engine.waitlist.openOffers(ev.id);
    expect(mailer.sent[0]).toMatchObject({ to: 'first@example.com', subject: 'Tickets for Tiny Gig are held for you', idempotencyKey: `waitlist-offer-${offer!.bookingId}` });
    expect(mailer.sent[0]!.text).toContain(`https://tickets.example/bookings/${offer!.bookingId}`);
    await worker.tick();
    expect(mailer.sent).toHaveLength(1); // mailed once

    // first lets it lapse: the sweeper expires it, the worker counts it and offers the ticket to second
    clock.advance(engine.waitlist.offerTtlMs);
    expect(await engine.holds.sweep(ev.id)).toBe(1);
    await worker.tick();
    await worker.tick();
    expect(mailer.sent.map((m) => m.to)).toEqual(['first@example.com', 'second@example.com']);
    const [second] = await engine.waitlist.openOffers(ev.id);
    expect(second).toMatchObject({ userId: 'second', mailed: true });
    // second pays: taken
    await engine.holds.confirm(ev.id, second!.bookingId);
    await worker.tick();
    expect(await engine.waitlist.openOffers(ev.id)).toEqual([]);
    expect(await count(metrics, 'floodgate_waitlist_offers_total')).toBe(2);
    expect(await count(metrics, 'floodgate_waitlist_offers_expired_total')).toBe(1);
    expect(await count(metrics, 'floodgate_waitlist_offers_taken_total')).toBe(1);
    await worker.tick();
    expect(await engine.waitlist.events()).not.toContain(ev.id); // no line, no offer: forgotten
  });
});
