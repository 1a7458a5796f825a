/**
 * Floodgate booking load test: 1,000 virtual users trying to book the same event at once
 * (the seed's "Performance Testing": booking-flow.md).
 *
 * The seed writes it as `k6 run booking-load-test.js --vus 1000 --duration 30s --stage "0s:0,10s:1000,20s:1000,30s:0"`,
 * i.e. a ramp to 1,000 users over 10 s, 10 s at 1,000, a ramp down over 10 s. That profile is built into
 * `options.stages` below, so no flags are needed (CLI --vus/--duration/--stage would override it).
 *
 * Run (needs k6; https://grafana.com/docs/k6/latest/set-up/install-k6/):
 *   k6 run bench/k6/booking-load-test.js \
 *     -e BASE_URL=http://127.0.0.1:3000 \
 *     -e TOKENS_FILE=$PWD/bench/k6/tokens.json \
 *     -e ADMIN_TOKEN=$(npm run -s token -- k6-admin --admin)
 *   Give TOKENS_FILE as an absolute path: k6 does not resolve relative paths against your shell's directory.
 *
 * Tokens (the API's JWT_SECRET must be the one the API runs with; `npm run token` reads it from the env):
 *   one user:    npm run -s token -- alice                  -> -e TOKEN=<that jwt>
 *   many users:  for i in $(seq 1 1000); do npm run -s token -- "k6-user-$i"; done > bench/k6/tokens.txt
 *                (one token per line is accepted as TOKENS_FILE too; a JSON array of strings is the documented form)
 *   Tokens last 12 h by default (`--ttl <seconds>` to change). VU n uses token n; with fewer tokens than VUs,
 *   VUs share users and the per-user cap answers 422 ticket-limit (counted, not an error).
 *
 * Settings (-e NAME=value): VUS (1000), CAPACITY (2000 tickets; sells out mid-run so both paths are loaded),
 * MAX_PER_USER (server default), SEATED=1 (assigned seating, booking the best adjacent seats),
 * THINK_MS (1000, mean pause between attempts), EVENT_ID / TIER_ID (use an existing event), plus lib.js's.
 *
 * Pass/fail: p95 of every request < 2 s; real errors (5xx, timeouts, unexpected 4xx, malformed 201s) < 5% of
 * booking attempts; a correct "sold out" 409 is not an error. teardown() checks capacity == available + held + sold.
 */
import {
  book,
  checkInventory,
  envInt,
  envNumber,
  pause,
  randomInt,
  setupEvent,
  tokenForVu,
  warnIfFewTokens,
} from './lib.js';

const VUS = envInt('VUS', 1000);
const CAPACITY = envInt('CAPACITY', 2000);
const MAX_PER_USER = envInt('MAX_PER_USER', 0);
const THINK_S = envNumber('THINK_MS', 1000) / 1000;

/** @type {import('k6/options').Options} */
export const options = {
  stages: [
    { duration: '10s', target: VUS },
    { duration: '10s', target: VUS },
    { duration: '10s', target: 0 },
  ],
  thresholds: {
    http_req_duration: ['p(95)<2000'],
    // Real errors only: sold-out 409s, ticket-limit 422s and 429s are classified separately (see lib.js).
    unexpected_error_rate: ['rate<0.05'],
    // Guards against a run that "passes" because nothing was ever booked (e.g. everything throttled).
    bookings_created: ['count>0'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  setupTimeout: '120s',
};

/** @returns {import('./lib.js').SetupData} */
export function setup() {
  warnIfFewTokens(VUS);
  return setupEvent({
    name: `k6 booking load ${new Date().toISOString()}`,
    capacity: CAPACITY,
    maxTicketsPerUser: MAX_PER_USER > 0 ? MAX_PER_USER : undefined,
    seated: __ENV.SEATED === '1' || __ENV.SEATED === 'true',
  });
}

/** One attempt: 1-4 tickets, then a pause as a person would (refresh, try again). @param {import('./lib.js').SetupData} data */
export default function (data) {
  book(data, tokenForVu(), randomInt(1, 4));
  pause(THINK_S * 0.5, THINK_S * 1.5);
}

/** @param {import('./lib.js').SetupData} data */
export function teardown(data) {
  checkInventory(data.eventId);
}
