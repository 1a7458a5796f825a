import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { describe, expect, it } from '../../test/fixtures.js';
import { TEST_ENGINE_CONFIG } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { startApi, token } from '../../test/http.js';
import { waitFor } from '../../test/wait.js';
import { systemClock } from '../../engine/clock.js';
import { createEngine } from '../../engine/index.js';
import type { UserId } from '../../engine/ids.js';
import { recordingJobs } from '../../test/jobs.js';
import { createSimulatedProvider } from '../../integrations/payments/simulated.js';
import { waitPage } from './wait-page.js';
import { simulatedPaymentKeys } from '../../engine/keys.js';

const CHROMIUM = '/usr/bin/chromium';

/** Debian's headless Chromium, driven by playwright-core (never a downloaded browser). */
const launchChromium = (): Promise<Browser> => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run bash scripts/ensure-tools.sh (apt-get install chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
};

/** The waiting-room page, end to end in headless Chromium (Debian's, driven by playwright-core; never a download). */
describe('the waiting-room page in Chromium', () => {
  it('a buyer joins, watches their place fall, is admitted, books, and sees the booking', async ({ ns, redis, pg, onTestFinished }) => {
    // real time here: the page's own clock and the server's must agree
    const engine = createEngine({ ns, redis, pg, clock: systemClock, config: TEST_ENGINE_CONFIG });
    const api = await startApi(engine);
    const browser = await launchChromium();
    onTestFinished(async () => {
      await browser.close();
      await api.close();
    });
    const now = Date.now();
    const ev = await engine.createEvent({
      ...gaEvent(50, { name: 'Floodgate Live' }),
      salesOpenAt: new Date(now - 1000).toISOString(),
      maxTicketsPerUser: 4,
      queue: { enabled: true, opensAt: new Date(now - 60_000).toISOString(), admissionRatePerSecond: 100, passTtlSeconds: 300 },
    });
    for (const early of ['first', 'second', 'third']) await engine.waitingRoom.join(ev.id, early as UserId);

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${api.url}/wait/${ev.id}#token=${await token('page-buyer')}`);
    await page.getByText('Floodgate Live').waitFor();
    await page.getByText('You are number 4 in line').waitFor();
    await page.getByText('3 people are ahead of you.').waitFor();
    expect(page.url()).not.toContain('token='); // the token does not stay in the address bar

    for (const [n, ahead] of [[3, '2 people are ahead of you.'], [2, '1 person is ahead of you.'], [1, 'You are next.']] as const) {
      expect((await engine.waitingRoom.admit(ev.id, 1))!.admitted).toBe(1);
      await page.getByText(`You are number ${n} in line`).waitFor();
      await page.getByText(ahead).waitFor();
    }
    await engine.waitingRoom.admit(ev.id, 1);
    await page.getByRole('heading', { name: 'You’re in — choose your tickets'.replace('’', "'") }).waitFor();
    await page.getByLabel('Ticket type').selectOption({ index: 0 });
    await page.getByLabel('Number of tickets').fill('2');
    await page.getByRole('button', { name: 'Book' }).click();
    await page.getByRole('heading', { name: 'Booked' }).waitFor();
    const text = (await page.locator('#booking').textContent())!;
    const bookingId = /bk_[a-z0-9_]+/.exec(text)![0];
    expect(text).toContain('2 ticket(s)');
    expect(text).toContain('90.00 EUR');
    const booking = await engine.bookings.get(bookingId as never, { userId: 'page-buyer' as UserId });
    expect(booking).toMatchObject({ status: 'RESERVED', ticketCount: 2, eventId: ev.id });
    await waitFor('the stock to show the hold', async () => (await engine.catalog.get(ev.id)).tiers[0]!.available === 48);
    expect(problems).toEqual([]);
  });

  it('on an event without a waiting room (npm start\'s demo event): sign in, book, pay, see CONFIRMED', async ({ ns, redis, pg, onTestFinished }) => {
    const engine = createEngine({
      ns, redis, pg, clock: systemClock, config: TEST_ENGINE_CONFIG, jobs: recordingJobs().sink,
      provider: createSimulatedProvider({ redis, keys: simulatedPaymentKeys(ns), timeoutMs: 300 }),
    });
    // a persist worker beside the API, as in production: the payment waits for the hold to be recorded
    const api = await startApi(engine, { persist: true });
    const browser = await launchChromium();
    onTestFinished(async () => {
      await browser.close();
      await api.close();
    });
    const ev = await engine.createEvent({ ...gaEvent(20, { name: 'Demo Night' }), salesOpenAt: new Date(Date.now() - 1000).toISOString(), maxTicketsPerUser: 4 });
    expect((await engine.catalog.get(ev.id)).queue).toBeNull();

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.method() + ' ' + new URL(r.url()).pathname));
    await page.goto(`${api.url}/wait/${ev.id}`);
    await page.getByText('Demo Night').waitFor();
    // sign in with the token npm start prints
    await page.getByLabel('Your access token').fill(await token('demo-user'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    // no line to join: the booking form at once
    await page.getByRole('heading', { name: 'Choose your tickets' }).waitFor();
    await page.getByLabel('Ticket type').selectOption({ index: 0 });
    await page.getByLabel('Number of tickets').fill('2');
    await page.getByRole('button', { name: 'Book' }).click();
    await page.getByRole('heading', { name: 'Booked' }).waitFor();
    const bookingId = /bk_[a-z0-9_]+/.exec((await page.locator('#booking').textContent())!)![0];
    await page.getByRole('button', { name: 'Pay with the test card' }).click();
    await page.getByRole('heading', { name: 'Confirmed' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('#confirmed-text').textContent()).toContain(`${bookingId} is CONFIRMED: 2 ticket(s)`);

    const booking = await engine.bookings.get(bookingId as never, { userId: 'demo-user' as UserId });
    expect(booking).toMatchObject({ status: 'CONFIRMED', ticketCount: 2, eventId: ev.id });
    expect(requests).not.toContain(`POST /api/events/${ev.id}/queue`); // no dead end through the waiting room
    expect(requests.filter((r) => r === 'POST /api/payments').length).toBeGreaterThanOrEqual(1);
    expect(problems).toEqual([]);
  });

  it('keeps all its script in one inline block with no inline event handlers (a nonce or hash CSP can cover it)', () => {
    const html = waitPage('ev_abcdefghijkl');
    const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]!.trim());
    const executable = scripts.filter((attrs) => !attrs.includes('type="application/json"'));
    expect(executable).toHaveLength(1);
    expect(executable[0]).toMatch(/^(nonce="[^"]*")?$/); // no src elsewhere, no second block
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/javascript:/i);
  });
});
