/**
 * Shared helpers for the Floodgate k6 scripts.
 *
 * k6 runs these files as plain ES modules; the JSDoc types are checked with `npm run typecheck:k6`
 * (tsc against @types/k6). Module top-level code runs in k6's init context, once per VU: that is where
 * files are opened and custom metrics are declared.
 *
 * Environment (`k6 run -e NAME=value ...`):
 *   BASE_URL         API origin, default http://127.0.0.1:3000
 *   TOKENS_FILE      absolute path of a JSON array of bearer tokens (or one token per line); VU n uses token n
 *   TOKEN            a single bearer token for every VU (when there is no TOKENS_FILE)
 *   ADMIN_TOKEN      admin bearer token; setup() creates a fresh event with it (POST /api/admin/events)
 *   EVENT_ID         use this existing event instead of creating one (TIER_ID picks the tier, default: the first)
 *   REQUEST_TIMEOUT  per-request timeout, default 10s; a timeout counts as an error
 *   LOG_ERRORS       how many unexpected answers each VU prints, default 3
 */
import http from 'k6/http';
import { check, fail, sleep } from 'k6';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { Counter, Rate, Trend } from 'k6/metrics';

/** @typedef {import('k6/http').Response} Response */
/** @typedef {{ [name: string]: string }} Tags */

/**
 * @typedef {object} Tier
 * @property {string} id
 * @property {string} name
 * @property {number} capacity
 * @property {number} available
 * @property {number} held
 * @property {number} sold
 * @property {boolean} seated
 */
/**
 * @typedef {object} EventInfo
 * @property {string} id
 * @property {string} name
 * @property {string} status
 * @property {number} maxTicketsPerUser
 * @property {Tier[]} tiers
 */
/**
 * @typedef {object} Reservation
 * @property {string} bookingId
 * @property {string} status
 * @property {string} eventId
 * @property {string} tierId
 * @property {number} ticketCount
 * @property {string[]} seats
 * @property {string} expiresAt
 */
/**
 * What setup() hands to every iteration.
 * @typedef {object} SetupData
 * @property {string} eventId
 * @property {string} tierId
 * @property {boolean} seated    the tier has assigned seats: bookings ask for the best adjacent seats
 * @property {string} runId      makes Idempotency-Keys unique across runs
 * @property {boolean} created   setup() created the event (false when EVENT_ID was given)
 */
/**
 * How a booking attempt ended.
 * - created:      201 with a well-formed reservation
 * - sold_out:     a correct "no": 409 insufficient-inventory / seat-unavailable / no-adjacent-seats
 * - ticket_limit: a correct "no": 422 ticket-limit (the per-user cap; happens when VUs share a user)
 * - throttled:    429, the server shedding load on purpose
 * - error:        everything else: 5xx, timeouts and connection errors (status 0), any other 4xx, a malformed 201
 * @typedef {'created' | 'sold_out' | 'ticket_limit' | 'throttled' | 'error'} BookingOutcome
 */
/** @typedef {'ok' | 'throttled' | 'error'} AnswerOutcome */

// ---------------------------------------------------------------------------------------------------------------
// Configuration

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
export const REQUEST_TIMEOUT = __ENV.REQUEST_TIMEOUT || '10s';
const LOG_ERRORS = envInt('LOG_ERRORS', 3);

/**
 * A numeric environment setting with a default.
 * @param {string} name
 * @param {number} fallback
 * @returns {number}
 */
export function envNumber(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * A whole-number environment setting with a default.
 * @param {string} name
 * @param {number} fallback
 * @returns {number}
 */
export function envInt(name, fallback) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new Error(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  return n;
}

// 409/422/429 are answers the API gives on purpose under load; marking them "expected" keeps k6's built-in
// http_req_failed about transport errors, 5xx and genuinely wrong requests. Our own error rate is stricter.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 409, 422, 429));

// ---------------------------------------------------------------------------------------------------------------
// Tokens (read once in the init context, shared read-only by all VUs)

/** @type {string[]} */
export const TOKENS = new SharedArray('floodgate-bearer-tokens', loadTokens);

/** @returns {string[]} */
function loadTokens() {
  const file = __ENV.TOKENS_FILE;
  /** @type {unknown[]} */
  let list;
  if (file) {
    const text = open(file).trim();
    if (text.startsWith('[') || text.startsWith('{')) {
      const parsed = JSON.parse(text);
      const arr = Array.isArray(parsed) ? parsed : parsed && Array.isArray(parsed.tokens) ? parsed.tokens : null;
      if (!arr) throw new Error(`${file}: expected a JSON array of tokens (or {"tokens": [...]})`);
      list = arr;
    } else {
      list = text.split(/\r?\n/);
    }
  } else if (__ENV.TOKEN) {
    list = [__ENV.TOKEN];
  } else {
    throw new Error(
      'no bearer tokens: pass -e TOKENS_FILE=/absolute/path/tokens.json (a JSON array) or -e TOKEN=<jwt>. ' +
        'Make one with `npm run -s token -- <userId>` (see bench/k6/README.md).',
    );
  }
  const tokens = list
    .filter((t) => typeof t === 'string')
    .map((t) => String(t).trim().replace(/^Bearer\s+/i, ''))
    .filter((t) => t.length > 0);
  if (tokens.length === 0) throw new Error(`${file || 'TOKEN'}: no tokens found`);
  return tokens;
}

/**
 * The token of the n-th simulated user (wraps around when there are fewer tokens than users).
 * @param {number} n  zero-based user number
 * @returns {string}
 */
export function tokenFor(n) {
  const t = TOKENS[((n % TOKENS.length) + TOKENS.length) % TOKENS.length];
  if (t === undefined) throw new Error('no tokens loaded');
  return t;
}

/** The token of the current VU: VU 1 uses the first token, VU 2 the second, ... @returns {string} */
export function tokenForVu() {
  return tokenFor(exec.vu.idInTest - 1);
}

/**
 * Warns (once, from setup) when simulated users outnumber tokens: VUs then share a user.
 * @param {number} users
 * @param {string} [consequence]
 */
export function warnIfFewTokens(users, consequence) {
  if (TOKENS.length < users) {
    console.warn(
      `${TOKENS.length} token(s) for up to ${users} simulated users: users share accounts, so ` +
        (consequence || 'expect 422 ticket-limit answers (counted as ticket_limit_answers, not as errors)') +
        '. Generate more tokens for a realistic crowd.',
    );
  }
}

/**
 * @param {string} token
 * @param {{ [name: string]: string }} [extra]
 * @returns {{ [name: string]: string }}
 */
export function authHeaders(token, extra = {}) {
  return { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...extra };
}

/**
 * Request params: timeout plus tags. `name` groups URLs that carry ids (one time series, not one per id);
 * `ep` is a short label that thresholds filter on, e.g. `http_req_duration{ep:booking}`.
 * @param {string} name
 * @param {string} ep
 * @param {{ [name: string]: string }} [headers]
 * @returns {import('k6/http').Params}
 */
export function params(name, ep, headers) {
  return { headers: headers || {}, tags: { name, ep }, timeout: REQUEST_TIMEOUT };
}

// ---------------------------------------------------------------------------------------------------------------
// Custom metrics

/** Bookings answered 201 with a well-formed reservation. */
export const bookingsCreated = new Counter('bookings_created');
/** Tickets in those bookings. */
export const ticketsReserved = new Counter('tickets_reserved');
/** Correct "sold out" answers (409 insufficient-inventory / seat-unavailable / no-adjacent-seats, queue sold_out). */
export const soldOutAnswers = new Counter('sold_out_answers');
/** Correct 422 ticket-limit answers (VUs sharing a user reach the per-user cap). */
export const ticketLimitAnswers = new Counter('ticket_limit_answers');
/** 429 answers: the server shedding load. Not errors, but watch them. */
export const throttledAnswers = new Counter('throttled_answers');
/** Real errors: 5xx, timeouts/connection errors, unexpected 4xx, malformed success bodies. */
export const unexpectedErrors = new Counter('unexpected_errors');
/** Share of classified requests that were real errors; the scripts' error-rate thresholds use this. */
export const unexpectedErrorRate = new Rate('unexpected_error_rate');
/** Latency of POST /api/bookings, tagged with its outcome. */
export const bookingLatency = new Trend('booking_latency', true);

// ---------------------------------------------------------------------------------------------------------------
// Reading answers

/** The answers that mean "correctly sold out" for a booking. */
export const SOLD_OUT_TYPES = Object.freeze([
  '/problems/insufficient-inventory',
  '/problems/seat-unavailable',
  '/problems/no-adjacent-seats',
]);

/**
 * A response header, looked up case-insensitively.
 * @param {Response} res
 * @param {string} name
 * @returns {string}
 */
export function header(res, name) {
  const want = name.toLowerCase();
  for (const k of Object.keys(res.headers || {})) {
    if (k.toLowerCase() === want) return String(res.headers[k]);
  }
  return '';
}

/**
 * The body as a JSON object, or null (empty, not JSON, or not an object).
 * @param {Response} res
 * @returns {Record<string, unknown> | null}
 */
export function jsonObject(res) {
  if (typeof res.body !== 'string' || res.body.length === 0) return null;
  try {
    const v = JSON.parse(res.body);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch (_err) {
    return null;
  }
}

/**
 * The `type` of an application/problem+json answer, or '' when the answer is not a problem document.
 * @param {Response} res
 * @returns {string}
 */
export function problemType(res) {
  if (!header(res, 'Content-Type').toLowerCase().includes('application/problem+json')) return '';
  const p = jsonObject(res);
  return p && typeof p.type === 'string' ? p.type : '';
}

/** @param {Response} res 409 with a sold-out problem type. @returns {boolean} */
export function isSoldOut(res) {
  return res.status === 409 && SOLD_OUT_TYPES.includes(problemType(res));
}

/** @param {Response} res 422 ticket-limit. @returns {boolean} */
export function isTicketLimit(res) {
  return res.status === 422 && problemType(res) === '/problems/ticket-limit';
}

/** @param {Response} res no HTTP answer at all: timeout, refused or reset connection. @returns {boolean} */
export function isTransportError(res) {
  return res.status === 0;
}

/** @param {unknown} v @returns {v is string} */
const isStr = (v) => typeof v === 'string' && v.length > 0;
/** @param {unknown} v @returns {v is number} */
const isInt = (v) => typeof v === 'number' && Number.isInteger(v);

/**
 * The reservation in a 201 answer, or null when the body is not one (a malformed success is an error).
 * @param {Response} res
 * @param {number} [ticketCount] when given, the reservation must be for exactly this many tickets
 * @returns {Reservation | null}
 */
export function reservationOf(res, ticketCount) {
  const b = jsonObject(res);
  if (!b) return null;
  if (!isStr(b.bookingId) || b.status !== 'RESERVED' || !isStr(b.eventId) || !isStr(b.tierId)) return null;
  if (!isInt(b.ticketCount) || (ticketCount !== undefined && b.ticketCount !== ticketCount)) return null;
  if (!Array.isArray(b.seats) || !isStr(b.expiresAt)) return null;
  return {
    bookingId: b.bookingId,
    status: b.status,
    eventId: b.eventId,
    tierId: b.tierId,
    ticketCount: b.ticketCount,
    seats: b.seats.map(String),
    expiresAt: b.expiresAt,
  };
}

/**
 * An Event document (GET /api/events/:id, POST /api/admin/events), or null.
 * @param {unknown} v
 * @returns {EventInfo | null}
 */
export function asEvent(v) {
  if (v === null || typeof v !== 'object') return null;
  const e = /** @type {Record<string, unknown>} */ (v);
  if (!isStr(e.id) || !Array.isArray(e.tiers)) return null;
  /** @type {Tier[]} */
  const tiers = [];
  for (const raw of e.tiers) {
    if (raw === null || typeof raw !== 'object') return null;
    const t = /** @type {Record<string, unknown>} */ (raw);
    if (!isStr(t.id)) return null;
    tiers.push({
      id: t.id,
      name: String(t.name),
      capacity: Number(t.capacity),
      available: Number(t.available),
      held: Number(t.held),
      sold: Number(t.sold),
      seated: t.seated === true,
    });
  }
  return {
    id: e.id,
    name: String(e.name),
    status: String(e.status),
    maxTicketsPerUser: Number(e.maxTicketsPerUser),
    tiers,
  };
}

/**
 * A short, single-line description of an answer for logs (never includes request headers or tokens).
 * @param {Response} res
 * @returns {string}
 */
export function describeAnswer(res) {
  if (res.status === 0) return `no answer (${res.error_code}: ${res.error})`;
  const body = typeof res.body === 'string' ? res.body.replace(/\s+/g, ' ').slice(0, 300) : '';
  return `HTTP ${res.status} ${body}`;
}

let errorsLogged = 0;

/**
 * Prints an unexpected answer, at most LOG_ERRORS times per VU.
 * @param {string} what
 * @param {Response} res
 */
export function logUnexpected(what, res) {
  if (errorsLogged >= LOG_ERRORS) return;
  errorsLogged++;
  console.warn(`[vu ${exec.vu.idInTest}] unexpected answer to ${what}: ${describeAnswer(res)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Classifying and recording

/**
 * @param {Response} res
 * @param {number} [ticketCount]
 * @returns {BookingOutcome}
 */
export function classifyBooking(res, ticketCount) {
  if (res.status === 201) return reservationOf(res, ticketCount) ? 'created' : 'error';
  if (isSoldOut(res)) return 'sold_out';
  if (isTicketLimit(res)) return 'ticket_limit';
  if (res.status === 429) return 'throttled';
  return 'error';
}

/**
 * Classifies any other request: one of `okStatuses` is fine, 429 is shedding, everything else is an error.
 * @param {Response} res
 * @param {number[]} okStatuses
 * @returns {AnswerOutcome}
 */
export function classifyAnswer(res, okStatuses) {
  if (okStatuses.includes(res.status)) return 'ok';
  if (res.status === 429) return 'throttled';
  return 'error';
}

/**
 * Counts a non-booking answer in the shared error rate (and logs it when unexpected).
 * @param {string} what
 * @param {Response} res
 * @param {AnswerOutcome} outcome
 */
export function recordAnswer(what, res, outcome) {
  unexpectedErrorRate.add(outcome === 'error');
  check(res, { 'no unexpected error': () => outcome !== 'error' });
  if (outcome === 'throttled') throttledAnswers.add(1);
  if (outcome === 'error') {
    unexpectedErrors.add(1);
    logUnexpected(what, res);
  }
}

/**
 * The common checks every request should pass: some answer arrived, and it was not a server error.
 * @param {Response} res
 * @param {Tags} [tags]
 */
export function checkAnswered(res, tags) {
  check(
    res,
    {
      'no 5xx': (r) => r.status < 500,
      'answered (no timeout or connection error)': (r) => r.status !== 0,
    },
    tags,
  );
}

/**
 * POST /api/bookings with a fresh Idempotency-Key; records metrics and runs the booking checks.
 * @param {SetupData} data
 * @param {string} token
 * @param {number} ticketCount
 * @param {{ [name: string]: string }} [extraHeaders]  e.g. X-Admission-Token
 * @returns {{ res: Response, outcome: BookingOutcome, reservation: Reservation | null }}
 */
export function book(data, token, ticketCount, extraHeaders = {}) {
  /** @type {Record<string, unknown>} */
  const body = { eventId: data.eventId, tierId: data.tierId, ticketCount };
  if (data.seated) body.seatPreferences = { adjacent: true };
  const res = http.post(
    `${BASE_URL}/api/bookings`,
    JSON.stringify(body),
    params('POST /api/bookings', 'booking', authHeaders(token, { 'Idempotency-Key': idempotencyKey(data.runId), ...extraHeaders })),
  );
  const outcome = classifyBooking(res, ticketCount);
  recordBooking(res, outcome, ticketCount);
  return { res, outcome, reservation: outcome === 'created' ? reservationOf(res) : null };
}

/**
 * Metrics and checks for one booking answer.
 * @param {Response} res
 * @param {BookingOutcome} outcome
 * @param {number} ticketCount
 */
export function recordBooking(res, outcome, ticketCount) {
  bookingLatency.add(res.timings.duration, { outcome });
  unexpectedErrorRate.add(outcome === 'error');
  switch (outcome) {
    case 'created':
      bookingsCreated.add(1);
      ticketsReserved.add(ticketCount);
      break;
    case 'sold_out':
      soldOutAnswers.add(1);
      break;
    case 'ticket_limit':
      ticketLimitAnswers.add(1);
      break;
    case 'throttled':
      throttledAnswers.add(1);
      break;
    case 'error':
      unexpectedErrors.add(1);
      logUnexpected('POST /api/bookings', res);
      break;
  }
  checkAnswered(res);
  check(res, { 'no unexpected error': () => outcome !== 'error' });
  // Conditional checks, so each reads as a property of that kind of answer and should stay at 100%.
  if (res.status === 201) check(res, { 'booked (201)': () => outcome === 'created' });
  if (res.status === 409) check(res, { 'sold out is a clean 409': () => outcome === 'sold_out' });
}

// ---------------------------------------------------------------------------------------------------------------
// Ids and pacing

/** A short id unique to this run (called from setup; travels to VUs in SetupData). @returns {string} */
export function newRunId() {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

let keysMade = 0;

/**
 * An Idempotency-Key unique across runs, scenarios, VUs and iterations: [A-Za-z0-9_.:-], at most 255 chars.
 * @param {string} runId
 * @returns {string}
 */
export function idempotencyKey(runId) {
  keysMade++;
  const scenario = exec.scenario.name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 40);
  return `k6-${runId}-${scenario}-${exec.vu.idInTest}-${exec.vu.iterationInInstance}-${keysMade}`;
}

/** @param {number} min @param {number} max inclusive @returns {number} */
export function randomInt(min, max) {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** Sleeps a random time in [min, max) seconds. @param {number} min @param {number} max */
export function pause(min, max) {
  sleep(min + Math.random() * (max - min));
}

// ---------------------------------------------------------------------------------------------------------------
// Events: create in setup(), check the books in teardown()

/**
 * @typedef {object} EventOptions
 * @property {string} name
 * @property {number} capacity             tickets in the single tier
 * @property {number} [maxTicketsPerUser]  1..100; omitted: the server's default
 * @property {boolean} [seated]            assigned seating (one section, 20 seats a row; capacity rounds up to a full row)
 * @property {Record<string, unknown>} [extra]  more top-level fields, e.g. { queue: {...} }
 */

/**
 * A POST /api/admin/events body: one tier, starting in 30 days, on sale now.
 * @param {EventOptions} o
 * @returns {Record<string, unknown>}
 */
export function eventSpec(o) {
  const perRow = 20;
  const rows = Math.ceil(o.capacity / perRow);
  const capacity = o.seated ? rows * perRow : o.capacity;
  /** @type {Record<string, unknown>} */
  const tier = { name: 'General', price: 4500, currency: 'EUR', capacity };
  if (o.seated) tier.seating = { sections: [{ id: 'A', rows, seatsPerRow: perRow }] };
  /** @type {Record<string, unknown>} */
  const spec = {
    name: o.name,
    category: 'load-test',
    venue: 'k6',
    startsAt: new Date(Date.now() + 30 * 86400000).toISOString(),
    tiers: [tier],
    ...(o.extra || {}),
  };
  if (o.maxTicketsPerUser !== undefined) spec.maxTicketsPerUser = o.maxTicketsPerUser;
  return spec;
}

/**
 * POST /api/admin/events; aborts the test (from setup) if the server does not create it.
 * @param {string} adminToken
 * @param {Record<string, unknown>} spec
 * @returns {EventInfo}
 */
export function createEvent(adminToken, spec) {
  const res = http.post(`${BASE_URL}/api/admin/events`, JSON.stringify(spec), {
    ...params('POST /api/admin/events', 'admin'),
    headers: authHeaders(adminToken),
    timeout: '60s',
  });
  if (res.status !== 201) fail(`POST /api/admin/events: ${describeAnswer(res)}`);
  const ev = asEvent(jsonObject(res));
  if (!ev || ev.tiers.length === 0) fail(`POST /api/admin/events: 201 without an event with tiers: ${describeAnswer(res)}`);
  return ev;
}

/**
 * GET /api/events/:id, or null when it does not answer 200 with an event.
 * @param {string} eventId
 * @returns {EventInfo | null}
 */
export function getEvent(eventId) {
  const res = http.get(`${BASE_URL}/api/events/${encodeURIComponent(eventId)}`, params('GET /api/events/{id}', 'admin'));
  return res.status === 200 ? asEvent(jsonObject(res)) : null;
}

/**
 * The event for the run: EVENT_ID (+ TIER_ID) if given, else a new one made with ADMIN_TOKEN.
 * @param {EventOptions} o
 * @returns {SetupData}
 */
export function setupEvent(o) {
  const runId = newRunId();
  /** @type {EventInfo} */
  let ev;
  let created = false;
  if (__ENV.EVENT_ID) {
    const found = getEvent(__ENV.EVENT_ID);
    if (!found) fail(`EVENT_ID=${__ENV.EVENT_ID}: GET /api/events/${__ENV.EVENT_ID} did not return the event`);
    ev = found;
  } else {
    if (!__ENV.ADMIN_TOKEN) {
      fail('set -e ADMIN_TOKEN=<admin jwt> (npm run -s token -- k6-admin --admin) to create the event, or -e EVENT_ID=<id> to use one');
    }
    ev = createEvent(__ENV.ADMIN_TOKEN, eventSpec(o));
    created = true;
  }
  const tier = __ENV.TIER_ID ? ev.tiers.find((t) => t.id === __ENV.TIER_ID) : ev.tiers[0];
  if (!tier) fail(`event ${ev.id} has no tier ${__ENV.TIER_ID || ''}`);
  console.info(
    `${created ? 'created' : 'using'} event ${ev.id} tier ${tier.id}: capacity ${tier.capacity}, ` +
      `available ${tier.available}, ${tier.seated ? 'assigned seats' : 'general admission'}, ` +
      `max ${ev.maxTicketsPerUser} tickets per user`,
  );
  return { eventId: ev.id, tierId: tier.id, seated: tier.seated, runId, created };
}

/**
 * Invariant 1 from the outside, for teardown(): every tier satisfies capacity == available + held + sold and no
 * counter is below zero. Also prints the final counts.
 * @param {string} eventId
 */
export function checkInventory(eventId) {
  const ev = getEvent(eventId);
  check(ev, { 'event readable after the run': (e) => e !== null });
  if (!ev) return;
  for (const t of ev.tiers) {
    console.info(`event ${ev.id} tier ${t.id}: capacity ${t.capacity} = available ${t.available} + held ${t.held} + sold ${t.sold}?`);
    check(t, {
      'inventory adds up (capacity == available + held + sold)': (x) => x.capacity === x.available + x.held + x.sold,
      'no inventory counter below zero': (x) => x.available >= 0 && x.held >= 0 && x.sold >= 0,
    });
  }
}
