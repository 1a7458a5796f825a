import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, TEST_ENGINE_CONFIG } from '../../test/fixtures.js';
import { gaEvent, seatedEvent } from '../../test/events.js';
import { memoryLogger, startApi } from '../../test/http.js';
import { createWaitlistWorker } from '../../workers/waitlist/waitlist.js';
import { recordingJobs } from '../../test/jobs.js';
import { offerLinkFor, signInLinkFor } from '../../test/outbox-mail.js';
import { launchChromium } from '../../test/chromium.js';
import { seriousA11yViolations } from '../../test/axe.js';
import { waitFor } from '../../test/wait.js';
import { SCREENS_DIR } from '../../test/env.js';
import { roleToken } from '../../test/endpoints.js';
import { qrCodesOfPdf } from '../../test/qr.js';
import { systemClock } from '../../engine/clock.js';
import { createEngine, userIdOfEmail, type BookingId, type Engine, type UserId } from '../../engine/index.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';
import { createSimulatedProvider } from '../../integrations/payments/simulated.js';
import { createOutboxMailer } from '../../integrations/mail/outbox.js';

/** The buyer's web app end to end in headless Chromium at a phone's size (390x844), everything through the UI. */
/**
 * The API with the web app (sign-in mail into a temporary outbox folder) and a Chromium, both closed after the test;
 * with `waitlist`, the waitlist worker too (its offers e-mailed to the same folder, with the API's metrics).
 */
async function openWeb(engine: Engine, onTestFinished: (fn: () => Promise<void>) => void, o: { waitlist?: boolean } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'fg-web-e2e-'));
  const mailer = createOutboxMailer({ dir });
  const api = await startApi(engine, { persist: true, web: { mailer } });
  const worker = o.waitlist
    ? createWaitlistWorker({ engine, log: memoryLogger('warn').log, mailer, mailFrom: 'tickets@floodgate.test', publicUrl: 'http://floodgate.test', metrics: api.metrics, tickMs: 100 })
    : undefined;
  worker?.start();
  const browser = await launchChromium();
  onTestFinished(async () => {
    await browser.close();
    await worker?.stop();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, api, browser };
}

describe('the web app in Chromium (390x844)', () => {
  it('signs in through the e-mailed link, holds 2 GA tickets, is declined once, pays with a test card, sees the QR codes, the PDF and the .ics', async ({ ns, redis, pg, onTestFinished }) => {
    // real time: the page's countdown and the server's deadlines must agree; 15-minute holds as in production
    const engine = createEngine({
      ns, redis, pg, clock: systemClock, config: { ...TEST_ENGINE_CONFIG, holdTtlMs: 15 * 60_000 }, jobs: recordingJobs().sink,
      provider: createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns), timeoutMs: 300 }),
    });
    const { dir, api, browser } = await openWeb(engine, onTestFinished);
    const ev = await engine.createEvent({ ...gaEvent(20, { name: 'Mobile Night' }), salesOpenAt: new Date(Date.now() - 1000).toISOString(), maxTicketsPerUser: 4 });
    const email = 'buyer@example.com';

    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    // a refused script or style would be reported here (a 402 page or the missing favicon is not a problem)
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) problems.push(m.text());
    });
    let step = 0;
    /** The page fits the phone's width, and axe-core finds nothing serious or critical on it (and its screenshot, if asked). */
    const fitsWidth = async (name: string) => {
      if (SCREENS_DIR) await page.screenshot({ path: join(SCREENS_DIR, `${String(++step).padStart(2, '0')}-${name}.png`) });
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      expect(await seriousA11yViolations(page), page.url()).toEqual([]);
    };

    // browse: the list, then the event with its tier and price
    await page.goto(`${api.url}/`);
    await page.getByRole('link', { name: 'Mobile Night' }).waitFor();
    await fitsWidth('events');
    await page.getByRole('link', { name: 'Mobile Night' }).click();
    await page.getByRole('heading', { name: 'Mobile Night', level: 1 }).waitFor();
    await page.getByText('€45.00').waitFor();
    await page.getByText('20 of 20 left').waitFor();
    await fitsWidth('event');

    // sign in: the link from the outbox brings the buyer back to the event, signed in (an HttpOnly cookie)
    await page.getByRole('link', { name: 'Sign in to buy' }).click();
    await fitsWidth('sign-in');
    await page.getByLabel('E-mail address').fill(email);
    await page.getByRole('button', { name: 'E-mail me a sign-in link' }).click();
    await page.getByRole('heading', { name: 'Check your e-mail' }).waitFor();
    await fitsWidth('check-email');
    const link = await signInLinkFor(dir, email);
    expect(link).not.toBeNull();
    await page.goto(`${api.url}${link}`);
    await page.getByRole('heading', { name: 'Mobile Night', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'My bookings' }).waitFor();
    const session = (await context.cookies()).find((c) => c.name === 'fg_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    expect(await page.evaluate<string>('document.cookie')).not.toContain('fg_session'); // no script can read it
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);

    // hold 2: the checkout counts down from 15 minutes
    await page.getByLabel('Number of tickets').selectOption('2');
    await page.getByRole('button', { name: 'Hold tickets' }).click();
    await page.getByRole('heading', { name: 'Checkout' }).waitFor();
    const bookingId = /\/bookings\/(bk_[a-z0-9_]+)$/.exec(page.url())![1] as BookingId;
    expect(await page.getByRole('timer').textContent()).toMatch(/^1[45]:\d\d$/);
    await page.getByText('Test cards — simulated payments, no money moves').waitFor();
    await fitsWidth('checkout');

    // a declined test card: the attempts left are shown, the reservation stays
    await page.getByLabel('Test card that is declined').check();
    await page.getByRole('button', { name: 'Pay €90.00' }).click();
    await page.getByRole('alert').getByText('Your card was declined. 2 attempts left.').waitFor();
    await fitsWidth('declined');
    // then the Visa test card: the confirmation, with a QR code per ticket
    await page.getByLabel('Visa test card — payment succeeds').check();
    await page.getByRole('button', { name: 'Pay €90.00' }).click();
    await page.getByRole('heading', { name: 'Your tickets' }).waitFor({ timeout: 20_000 });
    await page.getByRole('img', { name: 'QR code of ticket 1' }).waitFor();
    await page.getByRole('img', { name: 'QR code of ticket 2' }).waitFor();
    await fitsWidth('tickets');

    const pdfHref = await page.getByRole('link', { name: 'Download tickets (PDF)' }).getAttribute('href');
    const pdf = await page.request.get(`${api.url}${pdfHref}`); // with the session cookie, as a tap on the link
    expect(pdf.headers()['content-type']).toBe('application/pdf');
    const pdfBytes = await pdf.body();
    expect(pdfBytes.subarray(0, 5).toString()).toBe('%PDF-');
    // each page's QR code, drawn and read as a camera would (taken to the gate at the end: a scanned ticket is not refundable)
    const codes = await qrCodesOfPdf(pdfBytes);
    expect(codes).toHaveLength(2);
    codes.forEach((code, i) => expect(code).toMatch(new RegExp(`^FG1\\.${bookingId}~${i + 1}\\.`)));
    const icsHref = await page.getByRole('link', { name: 'Add to calendar (.ics)' }).getAttribute('href');
    const ics = await (await page.request.get(`${api.url}${icsHref}`)).text();
    expect(ics).toContain('BEGIN:VEVENT');
    expect(ics).toContain('SUMMARY:Mobile Night');
    expect(ics).toContain('DTSTART:20310601T200000Z');

    const booking = await engine.bookings.get(bookingId, { userId: userIdOfEmail(email) });
    expect(booking).toMatchObject({ status: 'CONFIRMED', ticketCount: 2, eventId: ev.id });
    // every page reported its timings, as a phone (the Mobile Performance KPI)
    await waitFor('the pages\' timings', async () => {
      const text = await api.metrics.registry.getSingleMetricAsString('floodgate_client_page_seconds');
      return ['events', 'event', 'checkout', 'tickets'].every((p) => new RegExp(`_count\\{[^}]*metric="load",device="mobile",page="${p}"[^}]*\\} [1-9]`).test(text));
    });
    await waitFor('the sale to reach the stock', async () => (await engine.catalog.get(ev.id)).tiers[0]!.sold === 2);

    // my bookings lists it, with a refund request
    await page.getByRole('link', { name: 'My bookings' }).click();
    await page.getByRole('heading', { name: 'My bookings' }).waitFor();
    await page.getByText('Paid').first().waitFor();
    await fitsWidth('my-bookings');
    await page.getByRole('button', { name: 'Request a refund' }).click();
    await page.getByRole('status').getByText('Refund requested: it is automatic').waitFor();
    await page.getByText('Refund requested', { exact: true }).waitFor();
    expect((await engine.bookings.get(bookingId, { userId: userIdOfEmail(email) })).status).toBe('REFUND_REQUESTED');
    // the PDF's codes at the gate: their signature holds (a misread code would be 'bad-signature' or 'malformed'), and
    // the approved refund made them void (the waitlist test below scans a paid booking's codes: valid, then already used)
    const gate = await roleToken('scanner', 'gate');
    for (const code of codes) {
      expect((await api.call('POST', '/api/tickets/verify', { token: gate, body: { code } })).json).toEqual({ result: 'invalid', reason: 'void' });
    }
    expect(problems).toEqual([]);
  });

  it('a waiting-room event: the signed-in buyer joins without a token, is admitted, books and lands on the checkout', async ({ ns, redis, pg, onTestFinished }) => {
    const engine = createEngine({ ns, redis, pg, clock: systemClock, config: { ...TEST_ENGINE_CONFIG, holdTtlMs: 15 * 60_000 } });
    const { dir, api, browser } = await openWeb(engine, onTestFinished);
    const now = Date.now();
    const ev = await engine.createEvent({
      ...gaEvent(50, { name: 'Queue Night' }),
      salesOpenAt: new Date(now - 1000).toISOString(),
      maxTicketsPerUser: 4,
      queue: { enabled: true, opensAt: new Date(now - 60_000).toISOString(), admissionRatePerSecond: 100, passTtlSeconds: 300 },
    });
    await engine.waitingRoom.join(ev.id, 'early-bird' as UserId);
    const page = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));

    await page.goto(`${api.url}/events/${ev.id}`);
    await page.getByRole('link', { name: 'Sign in to join the waiting room' }).click();
    await page.getByLabel('E-mail address').fill('queue@example.com');
    await page.getByRole('button', { name: 'E-mail me a sign-in link' }).click();
    await page.getByRole('heading', { name: 'Check your e-mail' }).waitFor();
    await page.goto(`${api.url}${await signInLinkFor(dir, 'queue@example.com')}`);
    // the link returns to the waiting room itself: the session cookie joins the line, nothing pasted, nothing stored
    await page.getByText('You are number 2 in line').waitFor();
    expect(page.url()).toBe(`${api.url}/wait/${ev.id}`);
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    expect((await engine.waitingRoom.admit(ev.id, 1))!.admitted).toBe(1);
    await page.getByText('You are number 1 in line').waitFor();
    await engine.waitingRoom.admit(ev.id, 1);
    await page.getByRole('heading', { name: "You're in — choose your tickets" }).waitFor();
    await page.getByLabel('Number of tickets').fill('2');
    await page.getByRole('button', { name: 'Book' }).click();
    await page.getByRole('heading', { name: 'Checkout' }).waitFor();
    const bookingId = /\/bookings\/(bk_[a-z0-9_]+)$/.exec(page.url())![1] as BookingId;
    expect(await engine.bookings.get(bookingId, { userId: userIdOfEmail('queue@example.com') })).toMatchObject({ status: 'RESERVED', ticketCount: 2 });
    expect(problems).toEqual([]);
  });

  it('when the reservation runs out, the checkout returns the buyer to the event page and says so', async ({ ns, redis, pg, onTestFinished }) => {
    const engine = createEngine({ ns, redis, pg, clock: systemClock, config: { ...TEST_ENGINE_CONFIG, holdTtlMs: 3000 } });
    const { dir, api, browser } = await openWeb(engine, onTestFinished);
    const ev = await engine.createEvent({ ...gaEvent(5, { name: 'Short Hold' }), salesOpenAt: new Date(Date.now() - 1000).toISOString() });
    const page = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
    await page.goto(`${api.url}/signin?next=/events/${ev.id}`);
    await page.getByLabel('E-mail address').fill('slow@example.com');
    await page.getByRole('button', { name: 'E-mail me a sign-in link' }).click();
    await page.getByRole('heading', { name: 'Check your e-mail' }).waitFor();
    await page.goto(`${api.url}${await signInLinkFor(dir, 'slow@example.com')}`);
    // the seat map of a seated event, signed in: it fits the phone and passes axe-core too
    const seated = await engine.createEvent({ ...seatedEvent([{ id: 'A', rows: 4, seatsPerRow: 10 }]), salesOpenAt: new Date(Date.now() - 1000).toISOString() });
    await page.goto(`${api.url}/events/${seated.id}`);
    await page.getByRole('link', { name: 'Or choose your seats on the map' }).click();
    await page.getByRole('img', { name: 'Section A: 40 of 40 seats free' }).waitFor();
    await page.getByLabel('Row 2, seat 5', { exact: true }).check();
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    expect(await seriousA11yViolations(page)).toEqual([]);
    // someone else takes that seat meanwhile: the map follows, unticks it and says so
    await engine.bookings.create({ eventId: seated.id, ticketCount: 1, seatPreferences: { seatIds: ['A-2-5'] }, userId: 'quicker' as UserId });
    await page.getByRole('status').getByText('Just taken by someone else: A-2-5. Please choose another seat.').waitFor({ timeout: 15_000 });
    expect(await page.getByLabel('Row 2, seat 5 (taken)', { exact: true }).isDisabled()).toBe(true);
    expect(await page.getByLabel('Row 2, seat 5 (taken)', { exact: true }).isChecked()).toBe(false);
    expect(await page.locator('#seat-A-2-5').getAttribute('class')).toBe('taken');
    await page.goto(`${api.url}/events/${ev.id}`);
    // the event page's count follows the sale: another buyer holds 2 of the 5 meanwhile
    expect(await page.locator(`[data-tier-left="${ev.tiers[0]!.id}"]`).textContent()).toBe('5');
    // (held through an engine with a 60 s hold: this test's own holds last 3 s)
    await createEngine({ ns, redis, pg, clock: systemClock, config: TEST_ENGINE_CONFIG }).bookings.create({ eventId: ev.id, ticketCount: 2, userId: 'quicker' as UserId });
    await page.getByText('3 of 5 left').waitFor({ timeout: 15_000 });
    await page.getByRole('button', { name: 'Hold tickets' }).click();
    await page.getByRole('heading', { name: 'Checkout' }).waitFor();
    await page.waitForURL(`${api.url}/events/${ev.id}?expired=1`, { timeout: 15_000 });
    await page.getByText('Your reservation expired').waitFor();
    await page.getByRole('heading', { name: 'Short Hold', level: 1 }).waitFor();
  });
  it('a waitlist offer taken: A holds the last tickets, B joins the waitlist, A cancels, B pays through the e-mailed link', async ({ ns, redis, pg, onTestFinished }) => {
    const engine = createEngine({
      ns, redis, pg, clock: systemClock, config: { ...TEST_ENGINE_CONFIG, holdTtlMs: 15 * 60_000, waitlistOfferTtlMs: 5 * 60_000 }, jobs: recordingJobs().sink,
      provider: createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns), timeoutMs: 300 }),
    });
    const { dir, api, browser } = await openWeb(engine, onTestFinished, { waitlist: true });
    const ev = await engine.createEvent({ ...gaEvent(2, { name: 'Last Two' }), salesOpenAt: new Date(Date.now() - 1000).toISOString(), maxTicketsPerUser: 4 });
    const problems: string[] = [];
    const signedIn = async (email: string) => {
      const page = await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true })).newPage();
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) problems.push(m.text());
      });
      await page.goto(`${api.url}/signin?next=/events/${ev.id}`);
      await page.getByLabel('E-mail address').fill(email);
      await page.getByRole('button', { name: 'E-mail me a sign-in link' }).click();
      await page.getByRole('heading', { name: 'Check your e-mail' }).waitFor();
      await page.goto(`${api.url}${await signInLinkFor(dir, email)}`);
      await page.getByRole('heading', { name: 'Last Two', level: 1 }).waitFor();
      return page;
    };
    const checked = async (page: Awaited<ReturnType<typeof signedIn>>, screen?: string) => {
      if (SCREENS_DIR && screen) await page.screenshot({ path: join(SCREENS_DIR, screen) });
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      expect(await seriousA11yViolations(page), page.url()).toEqual([]);
    };

    // A holds the last 2 tickets
    const a = await signedIn('a@example.com');
    await a.getByLabel('Number of tickets').selectOption('2');
    await a.getByRole('button', { name: 'Hold tickets' }).click();
    await a.getByRole('heading', { name: 'Checkout' }).waitFor();

    // B finds the tier sold out and asks to be notified for 2
    const b = await signedIn('b@example.com');
    await b.getByText('Sold out').waitFor();
    await b.getByLabel('Tickets wanted if some come back').selectOption('2');
    await b.getByRole('button', { name: 'Notify me' }).click();
    await b.getByText('You are number 1 on the waitlist.').waitFor();
    await checked(b, '09-waitlist.png');
    expect(await api.metrics.registry.getSingleMetricAsString('floodgate_waitlist_joins_total')).toMatch(/floodgate_waitlist_joins_total\{[^}]*\} 1$/m);

    // A cancels: the 2 tickets go to B as a hold, and the offer's link arrives by e-mail
    await a.getByRole('button', { name: 'Cancel this reservation' }).click();
    await a.getByText('Reservation cancelled').waitFor();
    const link = await waitFor('the offer e-mail', () => offerLinkFor(dir, 'b@example.com'));
    const offered = /\/bookings\/(bk_[a-z0-9_]+)$/.exec(link)![1] as BookingId;
    expect(await engine.holds.get(ev.id, offered)).toMatchObject({ userId: userIdOfEmail('b@example.com'), ticketCount: 2, state: 'held' });
    // while the offer is open the tickets are B's: the event page shows none on sale
    await a.goto(`${api.url}/events/${ev.id}`);
    await a.getByText('0 of 2 left').waitFor();

    // B opens the link: the checkout of the offer, counting down from 5 minutes; pays with a test card
    await b.goto(`${api.url}${link}`);
    await b.getByRole('heading', { name: 'Checkout' }).waitFor();
    expect(await b.getByRole('timer').textContent()).toMatch(/^[45]:\d\d$/);
    await checked(b, '10-waitlist-offer.png');
    await b.getByLabel('Visa test card — payment succeeds').check();
    await b.getByRole('button', { name: 'Pay €90.00' }).click();
    await b.getByRole('heading', { name: 'Your tickets' }).waitFor({ timeout: 20_000 });
    await b.getByRole('img', { name: 'QR code of ticket 2' }).waitFor();
    await checked(b);

    // the PDF's QR codes, drawn and read as a camera would, pass the gate once
    const pdfHref = await b.getByRole('link', { name: 'Download tickets (PDF)' }).getAttribute('href');
    const pdf = await b.request.get(`${api.url}${pdfHref}`);
    expect((await pdf.body()).subarray(0, 5).toString()).toBe('%PDF-');
    const codes = await qrCodesOfPdf(await pdf.body());
    expect(codes).toHaveLength(2);
    const gate = await roleToken('scanner', 'gate');
    for (const [i, code] of codes.entries()) {
      expect((await api.call('POST', '/api/tickets/verify', { token: gate, body: { code } })).json).toMatchObject({ result: 'valid', bookingId: offered, ticket: i + 1 });
      expect((await api.call('POST', '/api/tickets/verify', { token: gate, body: { code } })).json).toMatchObject({ result: 'already_used', bookingId: offered, ticket: i + 1 });
    }
    // the offer is closed as taken, and counted
    await waitFor('the offer counted as taken', async () => /floodgate_waitlist_offers_taken_total\{[^}]*\} 1$/m.test(await api.metrics.registry.getSingleMetricAsString('floodgate_waitlist_offers_taken_total')));
    expect(await api.metrics.registry.getSingleMetricAsString('floodgate_waitlist_offers_total')).toMatch(/floodgate_waitlist_offers_total\{[^}]*\} 1$/m);
    expect(problems).toEqual([]);
  });
});
