/**
 * Floodgate soak test: a steady, moderate arrival rate for a long time (default 50 iterations/s for 30 min),
 * to find what only shows up over time: leaks, a growing Redis/outbox/queue backlog, the sweeper falling behind,
 * connection-pool exhaustion, latency creep.
 *
 * Each iteration is one visitor doing one thing:
 *   35%  browse the catalog     GET /api/events?status=on_sale
 *   25%  look at the event      GET /api/events/:id
 *   40%  book 1-4 tickets       POST /api/bookings, then GET /api/bookings/:id (the owner must see it at once),
 *        then cancel half of them (DELETE /api/bookings/:id) so stock returns right away; the other half are left
 *        to expire (HOLD_TTL_MS, 15 min by default), which keeps the expiry sweeper busy too.
 *
 * Run (needs k6):
 *   k6 run bench/k6/soak.js \
 *     -e BASE_URL=http://127.0.0.1:3000 \
 *     -e TOKENS_FILE=$PWD/bench/k6/tokens.json \
 *     -e ADMIN_TOKEN=$(npm run -s token -- k6-admin --admin) \
 *     -e DURATION=30m
 * Tokens: see booking-load-test.js or README.md. Each booking uses a random token of the file, so a few hundred
 * users are plenty; with very few, the per-user cap answers 422 ticket-limit (counted, not an error).
 *
 * Settings (-e NAME=value): RATE (50 iterations/s), DURATION (30m), CAPACITY (50000: large enough that the
 * event never sells out at the default rate; lower it to soak the sold-out path), MAX_PER_USER (100),
 * MAX_VUS (500), EVENT_ID / TIER_ID, plus lib.js's.
 *
 * Pass/fail: p95 of every request < 500 ms; real errors < 1% of requests. teardown() checks the inventory adds up.
 */
import http from 'k6/http';
import { check } from 'k6';
import {
  BASE_URL,
  TOKENS,
  asEvent,
  authHeaders,
  book,
  checkAnswered,
  checkInventory,
  classifyAnswer,
  envInt,
  jsonObject,
  params,
  pause,
  randomInt,
  recordAnswer,
  setupEvent,
  tokenFor,
  warnIfFewTokens,
} from './lib.js';

const RATE = envInt('RATE', 50);
const DURATION = __ENV.DURATION || '30m';
const CAPACITY = envInt('CAPACITY', 50000);
const MAX_PER_USER = envInt('MAX_PER_USER', 100);
const MAX_VUS = envInt('MAX_VUS', 500);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      // A booking iteration takes ~1-2 s (two short pauses), so RATE x 2 VUs cover the steady state.
      preAllocatedVUs: Math.min(MAX_VUS, Math.max(10, RATE * 2)),
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    http_req_duration: ['p(95)<500'],
    unexpected_error_rate: ['rate<0.01'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  setupTimeout: '120s',
};

/** @returns {import('./lib.js').SetupData} */
export function setup() {
  warnIfFewTokens(50);
  return setupEvent({
    name: `k6 soak ${new Date().toISOString()}`,
    capacity: CAPACITY,
    maxTicketsPerUser: MAX_PER_USER,
  });
}

/** @param {import('./lib.js').SetupData} data */
export default function (data) {
  const r = Math.random();
  if (r < 0.35) browse();
  else if (r < 0.6) details(data);
  else bookAndMaybeCancel(data);
}

function browse() {
  const res = http.get(`${BASE_URL}/api/events?status=on_sale`, params('GET /api/events', 'events_list'));
  checkAnswered(res);
  const body = res.status === 200 ? jsonObject(res) : null;
  const ok = body !== null && Array.isArray(body.events);
  check(res, { 'catalog listed (200 with events)': () => ok });
  recordAnswer('GET /api/events', res, ok ? 'ok' : classifyAnswer(res, []));
}

/** @param {import('./lib.js').SetupData} data */
function details(data) {
  const res = http.get(`${BASE_URL}/api/events/${data.eventId}`, params('GET /api/events/{id}', 'event_detail'));
  checkAnswered(res);
  const ev = res.status === 200 ? asEvent(jsonObject(res)) : null;
  const ok = ev !== null && ev.id === data.eventId && ev.tiers.every((t) => t.available >= 0);
  check(res, { 'event details (200, live availability >= 0)': () => ok });
  recordAnswer('GET /api/events/:id', res, ok ? 'ok' : classifyAnswer(res, []));
}

/** @param {import('./lib.js').SetupData} data */
function bookAndMaybeCancel(data) {
  const token = tokenFor(randomInt(0, TOKENS.length - 1));
  const headers = authHeaders(token);
  const { reservation } = book(data, token, randomInt(1, 4));
  if (!reservation) return;
  const id = reservation.bookingId;

  // The owner sees the booking at once (Postgres, or the live hold before the persist worker has caught up).
  pause(0.2, 0.8);
  const got = http.get(`${BASE_URL}/api/bookings/${id}`, params('GET /api/bookings/{id}', 'booking_get', headers));
  checkAnswered(got);
  const b = got.status === 200 ? jsonObject(got) : null;
  const seen = b !== null && b.bookingId === id && typeof b.status === 'string';
  check(got, { 'own booking readable (200)': () => seen });
  recordAnswer('GET /api/bookings/:id', got, seen ? 'ok' : classifyAnswer(got, []));

  // Half the holds are given back at once; the rest expire on their own.
  if (Math.random() >= 0.5) return;
  pause(0.2, 0.8);
  const del = http.del(`${BASE_URL}/api/bookings/${id}`, null, params('DELETE /api/bookings/{id}', 'booking_cancel', headers));
  checkAnswered(del);
  const d = del.status === 200 ? jsonObject(del) : null;
  const cancelled = d !== null && d.status === 'CANCELLED';
  check(del, { 'cancelled (200 CANCELLED)': () => cancelled });
  recordAnswer('DELETE /api/bookings/:id', del, cancelled ? 'ok' : classifyAnswer(del, []));
}

/** @param {import('./lib.js').SetupData} data */
export function teardown(data) {
  checkInventory(data.eventId);
}
