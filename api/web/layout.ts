import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { CSRF_FIELD } from '../middleware/session.js';
import type { CLIENT_PAGES } from '../routes/client-timings.js';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;
/** The signed-in buyer as a page sees them: who, and the CSRF token their forms carry. */
export type WebSession = { userId: string; email: string; csrf: string };

/** Formats minor units (cents) in the tier's currency. */
export const money = (minor: number, currency: string) => new Intl.NumberFormat('en-GB', { style: 'currency', currency }).format(minor / 100);

/** The event's start in its own time zone. */
export const when = (iso: string, timeZone: string) =>
  new Intl.DateTimeFormat('en-GB', { weekday: 'short', day: 'numeric', month: 'long', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone, timeZoneName: 'short' }).format(new Date(iso));

/** The hidden CSRF field every state-changing form of a signed-in page carries. */
export const csrfField = (s: WebSession) => html`<input type="hidden" name="${CSRF_FIELD}" value="${s.csrf}">`;

/**
 * One page: every interpolated value is escaped by hono/html (only `raw` markup the server made itself, such as a QR
 * code's SVG, is not). Styles and the one script are files of this origin; no inline script.
 */
export function layout(o: { title: string; page?: (typeof CLIENT_PAGES)[number]; session: WebSession | null; body: Html; notice?: string | undefined; error?: string | undefined; refreshSeconds?: number }): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${o.refreshSeconds ? html`<meta http-equiv="refresh" content="${o.refreshSeconds}">` : ''}
<title>${o.title} · Floodgate</title>
<link rel="stylesheet" href="/assets/web.css">
<script src="/assets/web.js" defer></script>
</head>
<body data-page="${o.page ?? 'other'}">
<header>
  <a class="brand" href="/">Floodgate</a>
  <nav aria-label="Account">
    ${o.session
      ? html`<a href="/bookings">My bookings</a>
    <form method="post" action="/signout">${csrfField(o.session)}<button class="link" type="submit">Sign out</button></form>`
      : html`<a href="/signin">Sign in</a>`}
  </nav>
</header>
<main id="main">
${o.notice ? html`<p class="notice" role="status">${o.notice}</p>` : ''}
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
${o.body}
</main>
</body>
</html>`;
}
