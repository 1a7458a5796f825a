/**
 * Floodgate waiting-room spike: thousands of people join the queue of one event within seconds, poll their place
 * every 1-2 s until they are admitted (or told it is sold out / their place expired), then book with the admission
 * pass in `X-Admission-Token`.
 *
 * Each iteration is one person (ramping-arrival-rate: new arrivals per second, independent of how slowly the
 * earlier ones are served). Person n uses token n of TOKENS_FILE: one place per user per event, so give at least
 * as many tokens as arrivals (about 25 x PEAK_RATE with the default stages); with fewer, people share a user and
 * a re-join returns that user's existing place.
 *
 * Run (needs k6):
 *   k6 run bench/k6/waiting-room-spike.js \
 *     -e BASE_URL=http://127.0.0.1:3000 \
 *     -e TOKENS_FILE=$PWD/bench/k6/tokens.json \
 *     -e ADMIN_TOKEN=$(npm run -s token -- k6-admin --admin)
 * Tokens: see booking-load-test.js or README.md (`npm run -s token -- <userId>` in a loop).
 *
 * Settings (-e NAME=value):
 *   PEAK_RATE (200 joins/s), CAPACITY (1000 tickets: sells out, so later people must hear "sold_out"),
 *   MAX_WAIT_S (180: a person gives up after this long in the queue), MAX_VUS (3000: each waiting person holds
 *   a VU; arrivals beyond it show up as k6's dropped_iterations), JOIN_P95_MS (1000), POLL_P95_MS (500),
 *   QUEUE_JSON (the `queue` object sent when creating the event; default "{}", "none" leaves it out),
 *   EVENT_ID / TIER_ID (an existing event with a waiting room), plus lib.js's.
 *
 * The queue also has an SSE stream (GET /api/queue/:id/events); k6 has no built-in SSE client, so this script polls,
 * which is the heavier pattern for the server anyway.
 */
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';
import {
  BASE_URL,
  authHeaders,
  book,
  checkAnswered,
  checkInventory,
  classifyAnswer,
  envInt,
  jsonObject,
  params,
  pause,
  problemType,
  randomInt,
  recordAnswer,
  setupEvent,
  soldOutAnswers,
  tokenFor,
  warnIfFewTokens,
} from './lib.js';

const PEAK_RATE = envInt('PEAK_RATE', 200);
const CAPACITY = envInt('CAPACITY', 1000);
const MAX_WAIT_S = envInt('MAX_WAIT_S', 180);
const MAX_VUS = envInt('MAX_VUS', 3000);
const JOIN_P95_MS = envInt('JOIN_P95_MS', 1000);
const POLL_P95_MS = envInt('POLL_P95_MS', 500);
/** Polls that fail in a row before a person stops trying. */
const MAX_POLL_ERRORS = 3;

/** From the join request to the first poll that says `admitted` (ms). */
const timeToAdmission = new Trend('time_to_admission', true);
const queueJoined = new Counter('queue_joined');
const queueAdmitted = new Counter('queue_admitted');
const queueExpired = new Counter('queue_expired');
const queueGaveUp = new Counter('queue_gave_up');

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      preAllocatedVUs: Math.min(MAX_VUS, Math.max(50, PEAK_RATE * 2)),
      maxVUs: MAX_VUS,
      stages: [
        { duration: '5s', target: PEAK_RATE }, // doors open: from nothing to the peak in seconds
        { duration: '20s', target: PEAK_RATE },
        { duration: '5s', target: 0 },
      ],
      // Let people already in the queue finish waiting (and booking) after arrivals stop.
      gracefulStop: `${MAX_WAIT_S + 30}s`,
    },
  },
  thresholds: {
    [`http_req_duration{ep:queue_join}`]: [`p(95)<${JOIN_P95_MS}`],
    [`http_req_duration{ep:queue_poll}`]: [`p(95)<${POLL_P95_MS}`],
    'http_req_duration{ep:booking}': ['p(95)<2000'],
    unexpected_error_rate: ['rate<0.05'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  setupTimeout: '120s',
};

/** @returns {import('./lib.js').SetupData} */
export function setup() {
  warnIfFewTokens(PEAK_RATE * 25, 'a re-join returns the existing place of that user instead of a new one');
  const queue = __ENV.QUEUE_JSON || '{}';
  return setupEvent({
    name: `k6 waiting-room spike ${new Date().toISOString()}`,
    capacity: CAPACITY,
    extra: queue === 'none' ? {} : { queue: JSON.parse(queue) },
  });
}

/**
 * The place in a join or status reply.
 * @typedef {object} Place
 * @property {string} queueId
 * @property {string} status  waiting | admitted | sold_out | expired
 * @property {string} admissionToken
 */

/**
 * @param {Record<string, unknown> | null} body
 * @param {string} [queueId]  the id we polled (status replies need not repeat it)
 * @returns {Place | null}
 */
function placeOf(body, queueId) {
  if (!body) return null;
  const id = typeof body.queueId === 'string' && body.queueId ? body.queueId : queueId;
  if (!id || typeof body.status !== 'string') return null;
  if (!['waiting', 'admitted', 'sold_out', 'expired'].includes(body.status)) return null;
  return {
    queueId: id,
    status: body.status,
    admissionToken: typeof body.admissionToken === 'string' ? body.admissionToken : '',
  };
}

/** One person: join, wait, book. @param {import('./lib.js').SetupData} data */
export default function (data) {
  const token = tokenFor(exec.scenario.iterationInTest);
  const headers = authHeaders(token);
  const startedAt = Date.now();

  // 1. Join.
  const join = http.post(
    `${BASE_URL}/api/events/${data.eventId}/queue`,
    '{}',
    params('POST /api/events/{id}/queue', 'queue_join', headers),
  );
  checkAnswered(join);
  const joined = join.status === 201 || join.status === 200 ? placeOf(jsonObject(join)) : null;
  // 409 "closed" with a problem document is a correct answer once the event has nothing left.
  const closed = join.status === 409 && problemType(join) !== '';
  check(join, { 'joined (201/200 with a queueId) or a clean 409 closed': () => joined !== null || closed });
  if (closed) {
    recordAnswer('POST /api/events/:id/queue', join, 'ok');
    soldOutAnswers.add(1, { where: 'queue_join' });
    return;
  }
  recordAnswer('POST /api/events/:id/queue', join, joined ? 'ok' : classifyAnswer(join, []));
  if (!joined) return;
  queueJoined.add(1);
  let place = joined;

  // 2. Wait: poll every 1-2 s until the place is decided (a join may already be decided: poll at once then).
  let errorsInARow = 0;
  while (place.status === 'waiting' || (place.status === 'admitted' && !place.admissionToken)) {
    if (Date.now() - startedAt > MAX_WAIT_S * 1000) {
      queueGaveUp.add(1);
      return;
    }
    if (place.status === 'waiting') pause(1, 2);
    const poll = http.get(`${BASE_URL}/api/queue/${place.queueId}`, params('GET /api/queue/{id}', 'queue_poll', headers));
    checkAnswered(poll);
    const next = poll.status === 200 ? placeOf(jsonObject(poll), place.queueId) : null;
    recordAnswer('GET /api/queue/:id', poll, next ? 'ok' : classifyAnswer(poll, []));
    if (!next) {
      if (++errorsInARow >= MAX_POLL_ERRORS) return;
      pause(1, 2);
      continue;
    }
    errorsInARow = 0;
    if (next.status === 'admitted' && !next.admissionToken) {
      // Admitted without a pass: the person cannot book. A contract break, counted as an error.
      check(next, { 'admitted with an admissionToken': () => false });
      recordAnswer('GET /api/queue/:id (admitted without admissionToken)', poll, 'error');
      return;
    }
    place = next;
  }

  // 3. Decided.
  if (place.status === 'sold_out') {
    soldOutAnswers.add(1, { where: 'queue' });
    return;
  }
  if (place.status === 'expired') {
    queueExpired.add(1);
    return;
  }
  queueAdmitted.add(1);
  timeToAdmission.add(Date.now() - startedAt);
  check(place, { 'admitted with an admissionToken': (p) => p.admissionToken.length > 0 });
  book(data, token, randomInt(1, 4), { 'X-Admission-Token': place.admissionToken });
}

/** @param {import('./lib.js').SetupData} data */
export function teardown(data) {
  checkInventory(data.eventId);
}
