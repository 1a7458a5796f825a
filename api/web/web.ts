import { createHash, randomBytes } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { csrf } from 'hono/csrf';
import { html, raw } from 'hono/html';
import QRCode from 'qrcode';
import { z } from 'zod';
import { isDomainError, type DomainError } from '../../engine/errors.js';
import { SEAT_ID, isBookingId, isEventId, isTierId, type EventId, type TierId, type UserId } from '../../engine/ids.js';
import type { Booking, CreateBooking, EventWithAvailability, PayResult } from '../../engine/index.js';
import { rateLimits, safeNext, userIdOfEmail, type RateLimitCheck } from '../../engine/index.js';
import { clientIp } from '../middleware/client-ip.js';
import type { Auth } from '../middleware/auth.js';
import { CSRF_FIELD, SESSION_COOKIE, SESSION_TTL_SECONDS, signSession } from '../middleware/session.js';
import type { AppEnv } from '../env.js';
import { DOMAIN_HTTP } from '../problem.js';
import { WEB_CSS, WEB_JS } from './assets.js';
import { bookingIcs } from './ics.js';
import { csrfField, layout, money, when, type WebSession } from './layout.js';

/** The simulated provider's test cards the checkout offers (Stripe's test payment method ids; no money moves). */
export const TEST_CARDS = [
  { id: 'pm_card_visa', label: 'Visa test card — payment succeeds' },
  { id: 'pm_card_mastercard', label: 'Mastercard test card — payment succeeds' },
  { id: 'pm_card_chargeDeclined', label: 'Test card that is declined' },
  { id: 'pm_card_chargeDeclinedInsufficientFunds', label: 'Test card declined for insufficient funds' },
] as const;
const TEST_CARD_IDS = new Set<string>(TEST_CARDS.map((c) => c.id));

const PAYABLE = new Set(['RESERVED', 'PAYMENT_PENDING', 'PAYMENT_FAILED']);
const HAS_TICKETS = new Set(['CONFIRMED', 'TICKETS_DELIVERED', 'REFUND_REQUESTED', 'REFUND_DENIED']);
const REFUNDABLE = new Set(['CONFIRMED', 'TICKETS_DELIVERED']);
const STATUS_TEXT: Record<string, string> = {
  PENDING: 'Being reserved',
  RESERVED: 'Reserved — waiting for payment',
  PAYMENT_PENDING: 'Payment in progress',
  PAYMENT_FAILED: 'Payment declined — you can try again',
  CONFIRMED: 'Paid',
  TICKETS_DELIVERED: 'Paid — tickets sent by e-mail',
  REFUND_REQUESTED: 'Refund requested',
  REFUND_DENIED: 'Refund denied',
  REFUNDED: 'Refunded',
  CANCELLED: 'Cancelled',
  EXPIRED: 'Expired',
  FAILED: 'Failed',
};

const Email = z.email().max(254);
/** What "My bookings" says after a cancel or a refund request: fixed texts chosen by code (never text from the URL). */
const DONE = {
  cancelled: 'Reservation cancelled: its tickets went back on sale.',
  'not-cancelled': 'This reservation could not be cancelled',
  'refund-automatic': 'Refund requested: it is automatic, the money goes back to your card.',
  'refund-review': 'Refund requested: an organiser will decide, you will get an e-mail.',
  'no-refund': 'No refund is possible for this booking',
} as const;
const doneNotice = (done: string | undefined, why: string | undefined) => {
  if (!done || !Object.hasOwn(DONE, done)) return undefined;
  const reason = why && Object.hasOwn(DOMAIN_HTTP, why) ? DOMAIN_HTTP[why as keyof typeof DOMAIN_HTTP][1] : undefined;
  return DONE[done as keyof typeof DONE] + (reason ? ` (${reason.toLowerCase()}).` : done.startsWith('no') ? '.' : '');
};
/** Sign-in e-mails: 3 per address and 30 per client IP in 10 minutes (always on: each one sends mail). */
const SIGN_IN_LIMITS = rateLimits(3, 30, 10 * 60_000);
const newKey = () => randomBytes(12).toString('base64url');
const seeOther = (c: Context, to: string) => c.redirect(to, 303);

/**
 * The buyer's web app: server-rendered pages over the engine (no SQL or Redis here), mounted at the site's root.
 * Sign-in is passwordless (an e-mailed one-time link sets the session cookie); every state-changing form carries the
 * session's CSRF token and is also checked by hono/csrf (Origin / Sec-Fetch-Site).
 */
export function createWeb(auth: Auth) {
  const web = new Hono<AppEnv>();

  const sessionOf = (c: Context<AppEnv>): WebSession | null => {
    const token = getCookie(c, SESSION_COOKIE);
    if (!token) return null;
    const user = auth.authenticate(token);
    if (typeof user === 'string' || !user.email) return null;
    return { userId: user.id, email: user.email, csrf: auth.csrfFor(token) };
  };
  /** A form post of a signed-in buyer whose CSRF field is right; otherwise the answer to send instead. */
  const formOf = async (c: Context<AppEnv>): Promise<{ session: WebSession; form: Record<string, string>; lists: Record<string, string[]> } | Response> => {
    const token = getCookie(c, SESSION_COOKIE);
    const session = sessionOf(c);
    if (!token || !session) return seeOther(c, `/signin?next=${encodeURIComponent(c.req.path)}`);
    const body = await c.req.parseBody({ all: true });
    const strings = (v: unknown) => (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
    const form = Object.fromEntries(Object.entries(body).map(([k, v]) => [k, strings(v)[0] ?? '']));
    const lists = Object.fromEntries(Object.entries(body).map(([k, v]) => [k, strings(v)]));
    if (!auth.csrfMatches(token, form[CSRF_FIELD])) {
      return c.html(layout({ title: 'Form expired', session, error: 'This form has expired. Go back, reload the page and try again.', body: html`` }), 403);
    }
    return { session, form, lists };
  };
  const signInFirst = (c: Context, next: string) => seeOther(c, `/signin?next=${encodeURIComponent(next)}`);
  const webConfig = (c: Context<AppEnv>) => c.var.deps.config.web;
  /** The client's address as the rate limits see it ('unknown' without a socket, as under app.request). */
  const ipOf = (c: Context<AppEnv>) => {
    try {
      return clientIp(c, c.var.deps.config.rateLimit?.trustProxyHops ?? 0);
    } catch {
      return 'unknown';
    }
  };

  web.get('/assets/web.css', (c) => c.body(WEB_CSS, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=300' }));
  web.get('/assets/web.js', (c) => c.body(WEB_JS, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=300' }));

  // form posts: small bodies, and from this origin only (hono/csrf), on top of the session's CSRF token
  // (behind a proxy that ends TLS the request's own URL is http://, so PUBLIC_BASE_URL's origin is accepted too)
  const forms = [
    bodyLimit({ maxSize: 8 * 1024 }),
    csrf({
      origin: (origin, c: Context<AppEnv>) => {
        const base = c.var.deps.config.web?.publicBaseUrl;
        return origin === new URL(c.req.url).origin || (base !== undefined && origin === new URL(base).origin);
      },
    }),
  ] as const;
  for (const path of ['/signin', '/signout', '/events/*', '/bookings/*']) web.post(path, ...forms);

  // ---- sign-in ----
  const signInPage = (c: Context<AppEnv>, o: { next: string; error?: string; email?: string }, status: 200 | 400 | 429 = 200) =>
    c.html(
      layout({
        title: 'Sign in',
        page: 'signin',
        session: sessionOf(c),
        error: o.error,
        body: html`<h1>Sign in</h1>
<p>No password: we e-mail you a link that signs you in. It works once, for 15 minutes.</p>
<form method="post" action="/signin" data-once>
  <input type="hidden" name="next" value="${o.next}">
  <label for="email">E-mail address</label>
  <input id="email" name="email" type="email" autocomplete="email" required value="${o.email ?? ''}">
  <button type="submit">E-mail me a sign-in link</button>
</form>`,
      }),
      status,
    );
  web.get('/signin', (c) => signInPage(c, { next: safeNext(c.req.query('next')) }));
  web.post('/signin', async (c) => {
    const body = await c.req.parseBody();
    const next = safeNext(typeof body.next === 'string' ? body.next : undefined);
    const email = Email.safeParse(typeof body.email === 'string' ? body.email.trim() : '');
    if (!email.success) return signInPage(c, { next, error: 'Please enter a valid e-mail address.' }, 400);
    const cfg = webConfig(c);
    const mailer = c.var.deps.mailer;
    if (!cfg || !mailer) return signInPage(c, { next, error: 'Sign-in by e-mail is not configured on this server.' }, 400);
    try {
      await c.var.deps.engine.rateLimits.consume('signin', userIdOfEmail(email.data), { limits: SIGN_IN_LIMITS, ip: ipOf(c) });
    } catch (err) {
      if (!isDomainError(err) || err.code !== 'RATE_LIMITED') throw err;
      return signInPage(c, { next, email: email.data, error: `Too many sign-in links were asked for: ${err.detail}.` }, 429);
    }
    const { token } = await c.var.deps.engine.signIn.issue(email.data, next);
    const link = `${cfg.publicBaseUrl}/signin/link?token=${token}`;
    await mailer.send({
      to: email.data,
      from: cfg.mailFrom,
      subject: 'Your Floodgate sign-in link',
      text: `Open this link to sign in to Floodgate. It works once, within 15 minutes:\n\n${link}\n\nIf you did not ask for it, ignore this e-mail.\n`,
      attachments: [],
      // per link, without the token itself
      idempotencyKey: `signin-${createHash('sha256').update(token).digest('hex').slice(0, 24)}`,
    });
    return c.html(
      layout({
        title: 'Check your e-mail',
        session: null,
        body: html`<h1>Check your e-mail</h1><p>We sent a sign-in link to <strong>${email.data}</strong>. Open it on this device; it works once, within 15 minutes.</p>`,
      }),
    );
  });
  web.get('/signin/link', async (c) => {
    try {
      const { userId, email, next } = await c.var.deps.engine.signIn.redeem(c.req.query('token') ?? '');
      const secure = webConfig(c)?.publicBaseUrl.startsWith('https://') ?? false;
      setCookie(c, SESSION_COOKIE, signSession(c.var.deps.config.jwtSecret, userId, email), {
        httpOnly: true, sameSite: 'Lax', path: '/', secure, maxAge: SESSION_TTL_SECONDS,
      });
      c.header('cache-control', 'no-store');
      return seeOther(c, next);
    } catch (err) {
      if (!isDomainError(err) || err.code !== 'SIGN_IN_LINK_INVALID') throw err;
      return signInPage(c, { next: '/', error: 'That sign-in link is not valid any more (used, expired or mistyped). Ask for a new one.' }, 400);
    }
  });
  web.post('/signout', async (c) => {
    const f = await formOf(c);
    if (f instanceof Response) return f;
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return seeOther(c, '/');
  });

  // ---- browse ----
  const available = (e: EventWithAvailability) => e.tiers.reduce((n, t) => n + t.available, 0);
  web.get('/', async (c) => {
    const session = sessionOf(c);
    const all = await c.var.deps.engine.catalog.list({});
    const categories = [...new Set(all.map((e) => e.category))].sort();
    const category = c.req.query('category');
    const shown = category ? all.filter((e) => e.category === category) : all;
    return c.html(
      layout({
        title: 'Events',
        page: 'events',
        session,
        body: html`<h1>Events</h1>
${categories.length > 1
  ? html`<nav aria-label="Categories"><p>${[html`<a href="/" ${category ? '' : html`aria-current="page"`}>All</a>`, ...categories.map(
      (k) => html` · <a href="/?category=${encodeURIComponent(k)}" ${k === category ? html`aria-current="page"` : ''}>${k}</a>`,
    )]}</p></nav>`
  : ''}
${shown.length === 0 ? html`<p>No events yet.</p>` : ''}
<ul class="plain">${shown.map((e) => {
          const left = available(e);
          return html`<li class="card"><h2><a href="/events/${e.id}">${e.name}</a></h2>
<p class="muted">${when(e.startsAt, e.timeZone)} · ${e.venue} · ${e.category}</p>
<p>${e.status !== 'on_sale' ? 'Not on sale' : left === 0 ? html`<strong>Sold out</strong>` : html`<strong>${left}</strong> tickets available`}${Date.parse(e.salesOpenAt) > Date.now() ? html` · sales open ${when(e.salesOpenAt, e.timeZone)}` : ''}</p></li>`;
        })}</ul>`,
      }),
    );
  });

  const eventPage = async (c: Context<AppEnv>, eventId: EventId, o: { error?: string | undefined; notice?: string | undefined } = {}, status: 200 | 400 | 403 | 404 | 409 | 422 | 429 = 200) => {
    const session = sessionOf(c);
    const { engine } = c.var.deps;
    const ev = await engine.catalog.get(eventId);
    const waitingRoom = ev.queue?.enabled === true;
    // a tier with a waitlist sells its returned tickets to the line first: none are on general sale meanwhile
    const lines = await engine.waitlist.waiting(ev.id, ev.tiers.filter((t) => !t.seated).map((t) => t.id as TierId));
    const places = new Map<string, number>();
    if (session) {
      for (const t of lines.keys()) {
        const p = await engine.waitlist.place(ev.id, t, session.userId as UserId);
        if (p) places.set(t, p.position);
      }
    }
    const left = (t: EventWithAvailability['tiers'][number]) => (lines.has(t.id as TierId) ? 0 : t.available);
    const notifyMe = (t: EventWithAvailability['tiers'][number]) => {
      if (t.seated || ev.status !== 'on_sale') return '';
      const place = places.get(t.id);
      if (place) return html`<p role="status">You are number ${place} on the waitlist. If tickets come back, we e-mail you a link: they are held for you for ${engine.waitlist.offerTtlMs / 60_000} minutes.</p>`;
      if (!session) return html`<p><a class="button secondary" href="/signin?next=${encodeURIComponent(`/events/${ev.id}`)}">Sign in to join the waitlist</a></p>`;
      const max = Math.min(ev.maxTicketsPerUser, 8);
      return html`<form method="post" action="/events/${ev.id}/waitlist" data-once>
  ${csrfField(session)}<input type="hidden" name="tierId" value="${t.id}">
  <label for="wl-count-${t.id}">Tickets wanted if some come back</label>
  <select id="wl-count-${t.id}" name="count">${Array.from({ length: max }, (_, i) => html`<option value="${i + 1}">${i + 1}</option>`)}</select>
  <button type="submit">Notify me</button>
</form>`;
    };
    const buy = (t: EventWithAvailability['tiers'][number]) => {
      if (left(t) === 0) return html`<p><strong>Sold out</strong>${lines.has(t.id as TierId) ? ` · ${lines.get(t.id as TierId)} waiting` : ''}</p>${notifyMe(t)}`;
      if (!session) return html`<p><a class="button" href="/signin?next=${encodeURIComponent(`/events/${ev.id}`)}">Sign in to buy</a></p>`;
      if (waitingRoom) return '';
      const max = Math.min(ev.maxTicketsPerUser, left(t), 8);
      return html`<form method="post" action="/events/${ev.id}/hold" data-once>
  ${csrfField(session)}<input type="hidden" name="tierId" value="${t.id}"><input type="hidden" name="key" value="${newKey()}">
  <label for="count-${t.id}">Number of tickets</label>
  <select id="count-${t.id}" name="count">${Array.from({ length: max }, (_, i) => html`<option value="${i + 1}">${i + 1}</option>`)}</select>
  <button type="submit">${t.seated ? 'Hold the best seats together' : 'Hold tickets'}</button>
</form>${t.seated ? html`<p><a href="/events/${ev.id}/seats?tier=${t.id}">Or choose your seats on the map</a></p>` : ''}`;
    };
    return c.html(
      layout({
        title: ev.name,
        page: 'event',
        session,
        error: o.error,
        notice: o.notice,
        body: html`<h1>${ev.name}</h1>
<p class="muted">${when(ev.startsAt, ev.timeZone)}<br>${ev.venue}</p>
${ev.status !== 'on_sale' ? html`<p class="notice">This event is not on sale.</p>` : ''}
${Date.parse(ev.salesOpenAt) > Date.now() ? html`<p class="notice">Sales open ${when(ev.salesOpenAt, ev.timeZone)}.</p>` : ''}
${waitingRoom
  ? html`<section class="card"><h2>Waiting room</h2><p>This sale goes through a fair waiting room: join it, and book when it is your turn.</p>
<p><a class="button" href="${session ? `/wait/${ev.id}` : `/signin?next=${encodeURIComponent(`/wait/${ev.id}`)}`}">${session ? 'Join the waiting room' : 'Sign in to join the waiting room'}</a></p></section>`
  : ''}
<h2>Tickets</h2>
<ul class="plain" data-availability-poll="${ev.id}">${ev.tiers.map(
          // the count follows the sale (assets.ts polls the event's availability); a tier whose returned tickets go to
          // its waitlist stays at 0 here, so it is left out
          (t) => html`<li class="card"><h3>${t.name}</h3>
<p><span class="price">${money(t.price, t.currency)}</span> · ${lines.has(t.id as TierId) ? left(t) : html`<span data-tier-left="${t.id}">${left(t)}</span>`} of ${t.capacity} left${t.seated ? ' · assigned seats' : ' · general admission'}</p>
${buy(t)}</li>`,
        )}</ul>`,
      }),
      status,
    );
  };
  web.get('/events/:eventId', async (c) => {
    const eventId = c.req.param('eventId');
    if (!isEventId(eventId)) return c.notFound();
    const notice = c.req.query('expired')
      ? 'Your reservation expired and its tickets went back on sale. You can hold them again.'
      : c.req.query('waitlist')
        ? 'You are on the waitlist. We will e-mail you if tickets come back.'
        : undefined;
    return eventPage(c, eventId, { notice });
  });

  // ---- waitlist ----
  web.post('/events/:eventId/waitlist', async (c) => {
    const eventId = c.req.param('eventId');
    if (!isEventId(eventId)) return c.notFound();
    const f = await formOf(c);
    if (f instanceof Response) return f;
    const count = Number(f.form.count);
    if (!Number.isInteger(count) || count < 1 || count > 8 || !isTierId(f.form.tierId ?? '')) {
      return eventPage(c, eventId, { error: 'Choose a ticket type and a number of tickets.' }, 400);
    }
    const { engine, metrics } = c.var.deps;
    try {
      const place = await engine.waitlist.join(eventId, f.form.tierId as TierId, f.session.userId as UserId, f.session.email, count);
      if (place.joined) metrics.waitlistJoins.inc();
      return seeOther(c, `/events/${eventId}?waitlist=${place.position}`);
    } catch (err) {
      if (!isDomainError(err)) throw err;
      const status = err.code === 'TICKET_LIMIT' ? 422 : err.code === 'TIER_NOT_FOUND' || err.code === 'EVENT_NOT_FOUND' ? 404 : 409;
      return eventPage(c, eventId, { error: err.code === 'NOT_SOLD_OUT' ? 'Tickets of this kind are on sale again: you can hold them now.' : err.detail }, status);
    }
  });

  /** The API's hold limits for a hold made from a form: counted by the hold script itself, or by countRefusedHold. */
  const holdCheck = (c: Context<AppEnv>): RateLimitCheck | undefined => {
    const rl = c.var.deps.config.rateLimit;
    return rl && (rl.perUser > 0 || rl.perIp > 0) ? { limits: rateLimits(rl.perUser, rl.perIp, rl.windowSeconds * 1000), ip: ipOf(c), counted: false } : undefined;
  };
  /** A hold refused before its script ran still counts (as the API's rate-limit middleware does). */
  const countRefusedHold = async (c: Context<AppEnv>, userId: UserId, check: RateLimitCheck | undefined) => {
    if (check && !check.counted) await c.var.deps.engine.rateLimits.consume('hold', userId, check).catch(() => undefined);
  };

  // ---- choose seats ----
  const SEAT = 28; // px per seat in the overview drawing
  /**
   * A hold from a web form: the engine's hold with the form's key (a resubmitted form replays it) under the API's hold
   * limits, then the checkout; a refusal counts against the limits as the API's does and `refused` draws the page.
   */
  const webHold = async (
    c: Context<AppEnv>,
    f: { session: WebSession; form: Record<string, string> },
    hold: Pick<CreateBooking, 'eventId' | 'tierId' | 'ticketCount' | 'seatPreferences'>,
    refused: (err: DomainError) => Response | Promise<Response>,
  ) => {
    const check = holdCheck(c);
    try {
      const { reservation } = await c.var.deps.engine.bookings.create({
        ...hold, userId: f.session.userId as UserId, idempotencyKey: `web-${f.form.key}`, rateLimit: check,
      });
      return seeOther(c, `/bookings/${reservation.bookingId}`);
    } catch (err) {
      if (!isDomainError(err)) throw err;
      await countRefusedHold(c, f.session.userId as UserId, check);
      return refused(err);
    }
  };
  const seatsPage = async (c: Context<AppEnv>, eventId: EventId, tierId: string, o: { error?: string } = {}, status: 200 | 400 | 409 | 422 | 429 = 200) => {
    const session = sessionOf(c);
    const { engine } = c.var.deps;
    const ev = await engine.catalog.get(eventId);
    const tier = ev.tiers.find((t) => t.id === tierId && t.seated);
    if (!tier) return c.notFound();
    const sections = (await engine.catalog.seatMaps(eventId)).filter((m) => m.tierId === tier.id);
    const overview = (m: (typeof sections)[number]) =>
      html`<svg class="seatmap" viewBox="0 0 ${m.seatsPerRow * SEAT + 8} ${m.rows * SEAT + 8}" role="img" aria-label="Section ${m.id}: ${m.available} of ${m.rows * m.seatsPerRow} seats free">${Array.from(
        { length: m.rows * m.seatsPerRow },
        (_, i) => html`<rect id="seat-${m.id}-${Math.floor(i / m.seatsPerRow) + 1}-${(i % m.seatsPerRow) + 1}" x="${(i % m.seatsPerRow) * SEAT + 6}" y="${Math.floor(i / m.seatsPerRow) * SEAT + 6}" width="${SEAT - 6}" height="${SEAT - 6}" rx="4" class="${m.seatMap[i] === '.' ? 'free' : 'taken'}"/>`,
      )}</svg>`;
    const picker = (m: (typeof sections)[number]) =>
      Array.from(
        { length: m.rows },
        (_, r) => html`<div class="seatrow"><span class="rowname">Row ${r + 1}</span>${Array.from({ length: m.seatsPerRow }, (_, n) => {
          const free = m.seatMap[r * m.seatsPerRow + n] === '.';
          const id = `${m.id}-${r + 1}-${n + 1}`;
          return html`<label class="seat" title="Row ${r + 1}, seat ${n + 1}"><input type="checkbox" name="seat" value="${id}" aria-label="Row ${r + 1}, seat ${n + 1}${free ? '' : ' (taken)'}" ${free ? '' : 'disabled'}><span aria-hidden="true">${n + 1}</span></label>`;
        })}</div>`,
      );
    return c.html(
      layout({
        title: `Seats · ${ev.name}`,
        page: 'seats',
        session,
        error: o.error,
        body: html`<h1>Choose seats</h1>
<p>${ev.name} · ${tier.name} · <span class="price">${money(tier.price, tier.currency)}</span> each. At most ${ev.maxTicketsPerUser} per buyer.</p>
<p class="muted">Green seats are free; grey ones are taken. The map follows the sale every few seconds.</p>
<p id="seat-status" role="status" class="live" data-seat-poll="${ev.id}"></p>
${sections.map((m) => html`<section class="card"><h2>Section ${m.id}</h2>${overview(m)}</section>`)}
${session
  ? html`<form method="post" action="/events/${ev.id}/seats" data-once>
  ${csrfField(session)}<input type="hidden" name="tierId" value="${tier.id}"><input type="hidden" name="key" value="${newKey()}">
  ${sections.map((m) => html`<fieldset><legend>Section ${m.id}: pick your seats</legend>${picker(m)}</fieldset>`)}
  <button type="submit">Hold the chosen seats</button>
</form>`
  : html`<p><a class="button" href="/signin?next=${encodeURIComponent(`/events/${ev.id}/seats?tier=${tier.id}`)}">Sign in to choose seats</a></p>`}`,
      }),
      status,
    );
  };
  web.get('/events/:eventId/seats', async (c) => {
    const eventId = c.req.param('eventId');
    if (!isEventId(eventId)) return c.notFound();
    return seatsPage(c, eventId, c.req.query('tier') ?? '');
  });
  web.post('/events/:eventId/seats', async (c) => {
    const eventId = c.req.param('eventId');
    if (!isEventId(eventId)) return c.notFound();
    const f = await formOf(c);
    if (f instanceof Response) return f;
    const tierId = f.form.tierId ?? '';
    const seats = [...new Set(f.lists.seat ?? [])];
    if (seats.length === 0 || seats.length > 100 || !seats.every((x) => SEAT_ID.test(x)) || !/^[A-Za-z0-9_-]{8,64}$/.test(f.form.key ?? '')) {
      return seatsPage(c, eventId, tierId, { error: 'Choose at least one seat.' }, 400);
    }
    return webHold(c, f, { eventId, ticketCount: seats.length, seatPreferences: { seatIds: seats } }, (err) => {
      const taken = err.code === 'SEAT_UNAVAILABLE' ? String(err.extra.seatId ?? '') : '';
      const msg = taken ? `Seat ${taken} was just taken by someone else. The map below is up to date: choose again.` : err.detail;
      return seatsPage(c, eventId, tierId, { error: msg }, err.code === 'TICKET_LIMIT' ? 422 : err.code === 'RATE_LIMITED' ? 429 : 409);
    });
  });

  // ---- hold ----
  web.post('/events/:eventId/hold', async (c) => {
    const eventId = c.req.param('eventId');
    if (!isEventId(eventId)) return c.notFound();
    const f = await formOf(c);
    if (f instanceof Response) return f;
    const count = Number(f.form.count);
    if (!Number.isInteger(count) || count < 1 || count > 8 || !/^tr_[a-z0-9]{10}$/.test(f.form.tierId ?? '') || !/^[A-Za-z0-9_-]{8,64}$/.test(f.form.key ?? '')) {
      return eventPage(c, eventId, { error: 'Choose a ticket type and a number of tickets.' }, 400);
    }
    return webHold(c, f, { eventId, tierId: f.form.tierId as TierId, ticketCount: count }, (err) => {
      const status = err.code === 'RATE_LIMITED' ? 429 : err.code === 'TICKET_LIMIT' || err.code === 'IDEMPOTENCY_KEY_REUSED' ? 422 : err.code === 'ADMISSION_REQUIRED' ? 403 : 409;
      return eventPage(c, eventId, { error: err.detail }, status);
    });
  });

  // ---- bookings ----
  const bookingOf = async (c: Context<AppEnv>, session: WebSession): Promise<Booking | null> => {
    const id = c.req.param('bookingId') ?? '';
    if (!isBookingId(id)) return null;
    try {
      return await c.var.deps.engine.bookings.get(id, { userId: session.userId as UserId });
    } catch (err) {
      if (isDomainError(err) && err.code === 'BOOKING_NOT_FOUND') return null;
      throw err;
    }
  };

  const checkout = (c: Context<AppEnv>, session: WebSession, b: Booking, ev: EventWithAvailability, o: { error?: string } = {}, status: 200 | 402 | 409 | 429 | 503 = 200) => {
    const remainingMs = Math.max(0, Date.parse(b.expiresAt ?? '') - Date.now() || 0);
    const tier = ev.tiers.find((t) => t.id === b.tierId);
    const simulated = c.var.deps.engine.providerName === 'simulated';
    return c.html(
      layout({
        title: 'Checkout',
        page: 'checkout',
        session,
        error: o.error,
        body: html`<h1>Checkout</h1>
<section class="card"><h2>${ev.name}</h2>
<p>${b.ticketCount} × ${tier?.name ?? 'ticket'}${b.seats.length ? html` · seats ${b.seats.join(', ')}` : ''}</p>
<p class="price">${money(b.amount, b.currency)}</p>
<p>Your tickets are held for <span class="timer" role="timer" data-countdown data-remaining-ms="${remainingMs}" data-expired-url="/events/${ev.id}?expired=1">${Math.floor(remainingMs / 60000)}:${String(Math.floor(remainingMs / 1000) % 60).padStart(2, '0')}</span> (minutes:seconds).</p></section>
${simulated
  ? html`<form method="post" action="/bookings/${b.bookingId}/pay" data-once class="card">
  ${csrfField(session)}<input type="hidden" name="key" value="${newKey()}">
  <fieldset><legend>Test cards — simulated payments, no money moves</legend>
  ${TEST_CARDS.map((card, i) => html`<label><input type="radio" name="card" value="${card.id}" ${i === 0 ? 'checked' : ''}> ${card.label}</label>`)}
  </fieldset>
  <button type="submit">Pay ${money(b.amount, b.currency)}</button>
</form>`
  : html`<p class="notice">Card payment with this provider is not available in the web app yet.</p>`}
<form method="post" action="/bookings/${b.bookingId}/cancel" data-once>${csrfField(session)}<button class="secondary" type="submit">Cancel this reservation</button></form>`,
      }),
      status,
    );
  };

  const confirmation = async (c: Context<AppEnv>, session: WebSession, b: Booking, ev: EventWithAvailability, notice?: string) => {
    const codes = c.var.deps.engine.tickets.codes(b);
    const qrs = await Promise.all(codes.map((code) => QRCode.toString(code, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })));
    return c.html(
      layout({
        title: 'Your tickets',
        page: 'tickets',
        session,
        notice,
        body: html`<h1>Your tickets</h1>
<section class="card"><h2>${ev.name}</h2><p class="muted">${when(ev.startsAt, ev.timeZone)}<br>${ev.venue}</p>
<p>Booking <code>${b.bookingId}</code> · ${STATUS_TEXT[b.status] ?? b.status}</p>
<p><a class="button" href="/api/bookings/${b.bookingId}/tickets.pdf">Download tickets (PDF)</a>
<a class="button secondary" href="/bookings/${b.bookingId}/calendar.ics">Add to calendar (.ics)</a></p></section>
<ul class="plain">${qrs.map(
          (svg, i) => html`<li class="card"><h3>Ticket ${i + 1}${b.seats[i] ? ` · seat ${b.seats[i]}` : ''}</h3>
<figure class="qr" role="img" aria-label="QR code of ticket ${i + 1}">${raw(svg.replace('<svg ', '<svg aria-hidden="true" '))}</figure></li>`,
        )}</ul>
${REFUNDABLE.has(b.status)
  ? html`<form method="post" action="/bookings/${b.bookingId}/refund" data-once>${csrfField(session)}<button class="secondary" type="submit">Request a refund</button></form>`
  : ''}`,
      }),
    );
  };

  web.get('/bookings', async (c) => {
    const session = sessionOf(c);
    if (!session) return signInFirst(c, '/bookings');
    const { engine } = c.var.deps;
    const list = await engine.bookings.list(session.userId as UserId);
    const events = new Map<string, EventWithAvailability>();
    for (const b of list) if (!events.has(b.eventId)) events.set(b.eventId, await engine.catalog.get(b.eventId));
    return c.html(
      layout({
        title: 'My bookings',
        page: 'bookings',
        session,
        notice: doneNotice(c.req.query('done'), c.req.query('why')),
        body: html`<h1>My bookings</h1>
${list.length === 0 ? html`<p>No bookings yet. <a href="/">Find an event</a>.</p>` : ''}
<ul class="plain">${list.map((b) => {
          const ev = events.get(b.eventId)!;
          return html`<li class="card"><h2><a href="/bookings/${b.bookingId}">${ev.name}</a></h2>
<p>${b.ticketCount} ticket(s)${b.seats.length ? ` · ${b.seats.join(', ')}` : ''} · ${money(b.amount, b.currency)}</p>
<p><strong>${STATUS_TEXT[b.status] ?? b.status}</strong></p>
${PAYABLE.has(b.status) ? html`<form method="post" action="/bookings/${b.bookingId}/cancel" data-once>${csrfField(session)}<button class="secondary" type="submit">Cancel this reservation</button></form>` : ''}
${REFUNDABLE.has(b.status) ? html`<form method="post" action="/bookings/${b.bookingId}/refund" data-once>${csrfField(session)}<button class="secondary" type="submit">Request a refund</button></form>` : ''}</li>`;
        })}</ul>`,
      }),
    );
  });

  web.get('/bookings/:bookingId', async (c) => {
    const session = sessionOf(c);
    if (!session) return signInFirst(c, c.req.path);
    const b = await bookingOf(c, session);
    if (!b) return c.notFound();
    const ev = await c.var.deps.engine.catalog.get(b.eventId);
    if (b.status === 'EXPIRED') return seeOther(c, `/events/${b.eventId}?expired=1`);
    if (HAS_TICKETS.has(b.status)) return confirmation(c, session, b, ev);
    if (c.req.query('paid') && PAYABLE.has(b.status)) {
      // paid: the booking's CONFIRMED state reaches Postgres through the outbox a moment later
      return c.html(layout({ title: 'Confirming', session, refreshSeconds: 1, body: html`<h1>Payment received</h1><p role="status">Confirming your booking…</p>` }));
    }
    if (PAYABLE.has(b.status)) return checkout(c, session, b, ev);
    return c.html(
      layout({
        title: 'Booking',
        session,
        body: html`<h1>${ev.name}</h1><p>Booking <code>${b.bookingId}</code>: <strong>${STATUS_TEXT[b.status] ?? b.status}</strong>.</p>
<p><a href="/events/${ev.id}">Back to the event</a></p>`,
      }),
    );
  });

  web.post('/bookings/:bookingId/pay', async (c) => {
    const f = await formOf(c);
    if (f instanceof Response) return f;
    const b = await bookingOf(c, f.session);
    if (!b) return c.notFound();
    const { engine } = c.var.deps;
    const ev = await engine.catalog.get(b.eventId);
    const card = f.form.card ?? '';
    if (!TEST_CARD_IDS.has(card) || engine.providerName !== 'simulated' || !/^[A-Za-z0-9_-]{8,64}$/.test(f.form.key ?? '')) {
      return checkout(c, f.session, b, ev, { error: 'Choose one of the test cards.' }, 409);
    }
    const userId = f.session.userId as UserId;
    const rl = c.var.deps.config.rateLimit;
    if (rl && (rl.perUser > 0 || rl.perIp > 0)) {
      try {
        await engine.rateLimits.consume('pay', userId, { limits: rateLimits(rl.perUser, rl.perIp, rl.windowSeconds * 1000), ip: ipOf(c) });
      } catch (err) {
        if (!isDomainError(err) || err.code !== 'RATE_LIMITED') throw err;
        return checkout(c, f.session, b, ev, { error: `Too many payment attempts: ${err.detail}.` }, 429);
      }
    }
    const pay = async (): Promise<PayResult> => {
      // a hold made a moment ago is payable once the persist worker recorded it (usually within milliseconds)
      for (let tries = 0; ; tries++) {
        try {
          return await engine.payments.pay({ bookingId: b.bookingId, userId, paymentMethodId: card, holderEmail: f.session.email });
        } catch (err) {
          if (!isDomainError(err) || err.code !== 'BOOKING_NOT_RECORDED' || tries >= 10) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    let r: PayResult;
    try {
      const once = await engine.idempotency.once('pay', userId, `web-${f.form.key}`, `${b.bookingId}|${card}`, async () => {
        const out = await pay();
        return { status: 200, body: out, store: out.outcome !== 'pending' };
      });
      r = once.body;
    } catch (err) {
      if (!isDomainError(err)) throw err;
      const now = await bookingOf(c, f.session);
      if (now && HAS_TICKETS.has(now.status)) return seeOther(c, `/bookings/${b.bookingId}`);
      if (now?.status === 'EXPIRED') return seeOther(c, `/events/${b.eventId}?expired=1`);
      return checkout(c, f.session, now ?? b, ev, { error: err.detail }, 409);
    }
    switch (r.outcome) {
      case 'succeeded':
        return seeOther(c, `/bookings/${b.bookingId}?paid=1`);
      case 'declined':
        if (r.bookingStatus === 'CANCELLED' || r.attemptsLeft === 0) {
          return eventPage(c, b.eventId, { error: `${r.message} That was the last attempt: the reservation is cancelled and its tickets went back on sale.` }, 409);
        }
        return checkout(c, f.session, b, ev, { error: `${r.message} ${r.attemptsLeft} attempt${r.attemptsLeft === 1 ? '' : 's'} left.` }, 402);
      case 'pending':
        return checkout(c, f.session, b, ev, { error: 'The payment provider did not answer. Press Pay again: you will never be charged twice.' }, 503);
      case 'returned':
        return eventPage(c, b.eventId, { error: `The payment came too late for these tickets and was given back: ${r.reason}` }, 409);
    }
  });

  web.post('/bookings/:bookingId/cancel', async (c) => {
    const f = await formOf(c);
    if (f instanceof Response) return f;
    const b = await bookingOf(c, f.session);
    if (!b) return c.notFound();
    try {
      await c.var.deps.engine.bookings.cancel(b.bookingId, f.session.userId as UserId);
      return seeOther(c, '/bookings?done=cancelled');
    } catch (err) {
      if (!isDomainError(err)) throw err;
      return seeOther(c, `/bookings?done=not-cancelled&why=${err.code}`);
    }
  });

  web.post('/bookings/:bookingId/refund', async (c) => {
    const f = await formOf(c);
    if (f instanceof Response) return f;
    const b = await bookingOf(c, f.session);
    if (!b) return c.notFound();
    try {
      const r = await c.var.deps.engine.refunds.request(b.bookingId, f.session.userId as UserId);
      return seeOther(c, `/bookings?done=${r.decision === 'automatic' ? 'refund-automatic' : 'refund-review'}`);
    } catch (err) {
      if (!isDomainError(err)) throw err;
      return seeOther(c, `/bookings?done=no-refund&why=${err.code}`);
    }
  });

  web.get('/bookings/:bookingId/calendar.ics', async (c) => {
    const session = sessionOf(c);
    if (!session) return signInFirst(c, c.req.path);
    const b = await bookingOf(c, session);
    if (!b || !HAS_TICKETS.has(b.status)) return c.notFound();
    const ev = await c.var.deps.engine.catalog.get(b.eventId);
    const base = webConfig(c)?.publicBaseUrl ?? '';
    return c.body(
      bookingIcs({ bookingId: b.bookingId, eventName: ev.name, venue: ev.venue, startsAt: ev.startsAt, tickets: b.ticketCount, url: `${base}/bookings/${b.bookingId}`, now: new Date() }),
      200,
      { 'content-type': 'text/calendar; charset=utf-8', 'content-disposition': `attachment; filename="${b.bookingId}.ics"` },
    );
  });

  return web;
}

