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
  /** A form post with a body given as it is (repeated fields). */
  const raw = (path: string, body: string) =>
    api.app.request(path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, cookie }, body });
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
  return { get, post, raw, csrf, userId, hold, pay };
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
    expect(r.headers.get('location')).toBe('/bookings?done=cancelled');
    expect(await (await s.get(r.headers.get('location')!)).text()).toContain('Reservation cancelled: its tickets went back on sale.');
    // again: refused, and the page says why in its own words (no text is taken from the URL)
    const again = await s.post(`/bookings/${bookingId}/cancel`, { _csrf: s.csrf });
    expect(again.headers.get('location')).toMatch(/^\/bookings\?done=not-cancelled&why=[A-Z_]+$/);
    expect(await (await s.get('/bookings?done=<b>pwned</b>&why=x')).text()).not.toContain('pwned');
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(10);
    // someone else's booking is not there for them
    const other = await shop(engine, onTestFinished, 'other@example.com');
    expect((await other.get(`/bookings/${bookingId}`)).status).toBe(404);
  });

  it('choosing seats on the map holds exactly those; a seat taken meanwhile is refused with a clear message and shown taken', async ({ engine, onTestFinished }) => {
    const ann = await shop(engine, onTestFinished, 'picker@example.com');
    const bo = await shop(engine, onTestFinished, 'late@example.com');
    const ev = await engine.createEvent(seatedEvent([{ id: 'B', rows: 3, seatsPerRow: 5 }]));
    const tierId = ev.tiers[0]!.id;
    const map = await (await bo.get(`/events/${ev.id}/seats?tier=${tierId}`)).text();
    expect(map).toContain('aria-label="Section B: 15 of 15 seats free"');
    expect(map).toContain('value="B-2-3"');
    const send = (s: typeof ann, seats: string[]) => {
      const body = new URLSearchParams({ _csrf: s.csrf, tierId, key: `s-${Math.random().toString(36).slice(2, 12)}` });
      for (const x of seats) body.append('seat', x);
      return s.raw(`/events/${ev.id}/seats`, body.toString());
    };
    const held = await send(ann, ['B-2-3', 'B-2-4']);
    expect(held.status).toBe(303);
    const bookingId = /bk_[a-z0-9_]+/.exec(held.headers.get('location')!)![0] as BookingId;
    expect((await engine.bookings.get(bookingId, { userId: ann.userId })).seats).toEqual(['B-2-3', 'B-2-4']);
    // bo's page still showed B-2-4 free: his pick of it is refused, nothing held, and the page shows it taken now
    const late = await send(bo, ['B-2-4', 'B-2-5']);
    expect(late.status).toBe(409);
    const text = await late.text();
    expect(text).toContain('Seat B-2-4 was just taken by someone else');
    expect(text).toMatch(/value="B-2-4" aria-label="Row 2, seat 4 \(taken\)" disabled/);
    expect((await engine.catalog.get(ev.id)).tiers[0]!.available).toBe(13);
  });
});
