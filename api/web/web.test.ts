import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent, seatedEvent } from '../../test/events.js';
import { inProcessApi } from '../../test/http.js';
import { signInLinkFor } from '../../test/outbox-mail.js';
import { createOutboxMailer } from '../../integrations/mail/outbox.js';
import { userIdOfEmail, type BookingId, type Engine } from '../../engine/index.js';
import { waitFor } from '../../test/wait.js';

const ORIGIN = 'http://localhost';

/** The web app over app.request with a persist worker beside it (payments wait for holds to be recorded). */
async function shop(engine: Engine, onTestFinished: (fn: () => Promise<void>) => void, email: string) {
  const dir = await mkdtemp(join(tmpdir(), 'fg-web-'));
  const api = inProcessApi(engine, { persist: true, web: { mailer: createOutboxMailer({ dir }) } });
  onTestFinished(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  let cookie = '';
  const post = (path: string, fields: Record<string, string>) =>
    api.app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, cookie },
      body: new URLSearchParams(fields).toString(),
    });
  const get = (path: string) => api.app.request(path, { headers: { cookie } });
  await post('/signin', { email });
  const opened = await api.app.request((await signInLinkFor(dir, email))!);
  cookie = /^(fg_session=[^;]+)/.exec(opened.headers.get('set-cookie')!)![1]!;
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await (await get('/')).text())![1]!;
  const userId = userIdOfEmail(email);
  const hold = async (eventId: string, tierId: string, count: number) => {
    const r = await post(`/events/${eventId}/hold`, { _csrf: csrf, tierId, count: String(count), key: `k-${Math.random().toString(36).slice(2, 12)}` });
    expect(r.status, await r.clone().text()).toBe(303);
    return /bk_[a-z0-9_]+/.exec(r.headers.get('location')!)![0] as BookingId;
  };
  const pay = (bookingId: BookingId, card: string) => post(`/bookings/${bookingId}/pay`, { _csrf: csrf, card, key: `p-${Math.random().toString(36).slice(2, 12)}` });
  return { get, post, csrf, userId, hold, pay };
}

describe('the web app over the engine', () => {
  it('"best seats together" on a seated tier holds adjacent seats of one row', async ({ engine, onTestFinished }) => {
    const s = await shop(engine, onTestFinished, 'seats@example.com');
    const ev = await engine.createEvent(seatedEvent([{ id: 'A', rows: 2, seatsPerRow: 6 }]));
    const page = await (await s.get(`/events/${ev.id}`)).text();
    expect(page).toContain('Hold the best seats together');
    const bookingId = await s.hold(ev.id, ev.tiers[0]!.id, 3);
    const b = await engine.bookings.get(bookingId, { userId: s.userId });
    expect(b.seats).toHaveLength(3);
    const parsed = b.seats.map((x) => x.split('-').map((p, i) => (i === 0 ? p : Number(p))));
    expect(new Set(parsed.map(([, row]) => row)).size).toBe(1);
    const numbers = parsed.map(([, , n]) => n as number).sort((x, y) => x - y);
    expect(numbers[2]! - numbers[0]!).toBe(2);
    expect(await (await s.get(`/bookings/${bookingId}`)).text()).toContain(`seats ${b.seats.join(', ')}`);
  });

  it('three declines: the attempts left count down, the last one cancels the reservation and says so', async ({ engine, onTestFinished }) => {
    const s = await shop(engine, onTestFinished, 'declined@example.com');
    const ev = await engine.createEvent(gaEvent(10, { name: 'Decline Night' }));
    const bookingId = await s.hold(ev.id, ev.tiers[0]!.id, 2);
    for (const left of [2, 1]) {
      const r = await s.pay(bookingId, 'pm_card_chargeDeclined');
      expect(r.status).toBe(402);
      expect(await r.text()).toContain(`Your card was declined. ${left} attempt${left === 1 ? '' : 's'} left.`);
    }
    const last = await s.pay(bookingId, 'pm_card_chargeDeclined');
    expect(last.status).toBe(409);
    expect(await last.text()).toContain('That was the last attempt: the reservation is cancelled');
    await waitFor('the cancellation to be recorded', async () => (await engine.bookings.get(bookingId, { userId: s.userId })).status === 'CANCELLED');
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(10);
  });

  it('a card that is not one of the test cards is refused before any payment', async ({ engine, onTestFinished }) => {
    const s = await shop(engine, onTestFinished, 'raw@example.com');
    const ev = await engine.createEvent(gaEvent(10));
    const bookingId = await s.hold(ev.id, ev.tiers[0]!.id, 1);
    const r = await s.pay(bookingId, 'pm_card_anything');
    expect(r.status).toBe(409);
    expect(await r.text()).toContain('Choose one of the test cards.');
    expect((await engine.payments.attempts(bookingId)).length).toBe(0);
  });

  it('my bookings: cancelling a reservation frees its tickets at once', async ({ engine, onTestFinished }) => {
    const s = await shop(engine, onTestFinished, 'cancel@example.com');
    const ev = await engine.createEvent(gaEvent(10, { name: 'Cancel Night' }));
    const bookingId = await s.hold(ev.id, ev.tiers[0]!.id, 4);
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(6);
    // the list is Postgres's: the hold is there once the persist worker recorded it
    const list = await waitFor('the hold in my bookings', async () => {
      const text = await (await s.get('/bookings')).text();
      return text.includes('Cancel Night') ? text : null;
    });
    expect(list).toContain('Reserved — waiting for payment');
    const r = await s.post(`/bookings/${bookingId}/cancel`, { _csrf: s.csrf });
    expect(r.status).toBe(303);
    expect(decodeURIComponent(r.headers.get('location')!)).toContain('Reservation cancelled');
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(10);
    // someone else's booking is not there for them
    const other = await shop(engine, onTestFinished, 'other@example.com');
    expect((await other.get(`/bookings/${bookingId}`)).status).toBe(404);
  });
});
