/**
 * The crowd: simulated people driving the real API over HTTP, run in its own process (like bench/load.ts) for the
 * scenarios that are journeys rather than one request repeated: the waiting-room spike, the soak, the end-to-end
 * purchase and the on-sale demo. Input: one JSON document on stdin (see the *In types). Output: one JSON line on
 * stdout. While it runs it sends {type: 'progress', ...} over IPC every second (when started with an IPC channel)
 * and obeys {type: 'sale-over'} (the demo's "sold out for good": everyone still waiting stops).
 *
 * Each person is an async function with timers; requests go through one keep-alive pool (bench/lib/http.ts), or
 * with `lanes` one pool each for joins, polls and purchases.
 * Latency is measured from the moment a request has a connection (client-side queueing is reported apart).
 */
import { httpClient, type Answer } from './lib/http.js';
import { signToken } from './lib/common.js';

type Common = {
  base: string;
  secret: string;
  sockets: number;
  timeoutMs?: number;
  userPrefix: string;
  /** Joins, polls and purchases each get their own pool of `sockets` (bench/lib/http.ts); off: one shared pool. */
  lanes?: boolean;
};
type Ramp = { upSec: number; holdSec: number; downSec: number; peak: number };
export type WaitingRoomIn = Common & {
  mode: 'waiting-room';
  eventId: string;
  tierId: string;
  arrivals: Ramp;
  pollSec: [number, number];
  maxWaitSec: number;
  maxTickets: number;
};
export type SoakIn = Common & { mode: 'soak'; eventId: string; tierId: string; rate: number; durationSec: number; users: number };
export type E2eIn = Common & { mode: 'e2e'; eventId: string; tierId: string; rate: number; durationSec: number; maxInFlight: number; thinkMs: [number, number] };
export type DemoIn = Common & {
  mode: 'demo';
  eventId: string;
  /** Tiers a buyer may want, with how many buyers prefer each; ga: general admission (has a waitlist when sold out). */
  tiers: { id: string; weight: number; ga?: boolean }[];
  buyers: number;
  /** Share of buyers who join before the sale opens (the draw); the rest arrive after, spread over postWindowSec. */
  preShare: number;
  openAtMs: number;
  preJoinFromMs: number;
  postWindowSec: number;
  /** First poll after the draw is spread over this many seconds (the page's jitter), so the opening is not a stampede. */
  firstPollSpreadSec: number;
  maxPollSec: number;
  declineShare: number;
  retryAfterDeclineShare: number;
  abandonShare: number;
  /** An admitted buyer who found nothing in any tier leaves the line (gives the pass back). */
  leaveWhenNothing: boolean;
  /** On "sold out for now", a buyer looks again this many times (maxPollSec apart) before giving up. */
  soldOutRetries: number;
  /**
   * Share of the buyers told sold_out whose preferred tier is general admission who join that tier's waitlist
   * (POST /api/events/:id/waitlist) instead of giving up: they leave the waiting room, check their bookings for the
   * offer (GET /api/bookings, waitlistPollSec apart, backing off to waitlistPollMaxSec) and pay it, until the sale is over.
   */
  waitlistShare: number;
  waitlistPollSec: [number, number];
  waitlistPollMaxSec: number;
  /** Share of the other buyers told sold_out who stay in line (polling maxPollSec apart) until the sale is over. */
  stayShare: number;
  maxTickets: number;
};
type Input = WaitingRoomIn | SoakIn | E2eIn | DemoIn;

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Input;

const http = httpClient(input.base, { sockets: input.sockets, timeoutMs: input.timeoutMs ?? 10_000 });
const t0 = Date.now();
const since = () => (Date.now() - t0) / 1000;
const sleep = (msec: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, msec)));
const between = (a: number, b: number) => a + Math.random() * (b - a);
const randomInt = (a: number, b: number) => Math.floor(between(a, b + 1));
const tokens = new Map<string, string>();
const tokenOf = (user: string) => {
  let t = tokens.get(user);
  if (!t) tokens.set(user, (t = signToken(input.secret, user)));
  return t;
};

// ---------------------------------------------------------------------------------------------------------------
// Recording: latencies by kind, status counts by kind, and (t, ms) pairs for per-window percentiles.

const lat = new Map<string, number[]>();
const series = new Map<string, number[]>();
const statuses = new Map<string, Record<string, number>>();
const queued: number[] = [];
const counters: Record<string, number> = {};
const count = (name: string, n = 1) => (counters[name] = (counters[name] ?? 0) + n);

function rec(kind: string, a: Answer): Answer {
  let l = lat.get(kind);
  if (!l) lat.set(kind, (l = []));
  l.push(a.ms);
  let s = series.get(kind);
  if (!s) series.set(kind, (s = []));
  s.push(Math.round(since() * 100) / 100, Math.round(a.ms * 10) / 10);
  let st = statuses.get(kind);
  if (!st) statuses.set(kind, (st = {}));
  st[a.status] = (st[a.status] ?? 0) + 1;
  // why it failed: the problem type of an error answer (or the client error of a status 0)
  if (a.status >= 400 || a.status === 0) {
    const why = a.body && typeof a.body.type === 'string' ? a.body.type : a.body && typeof a.body.error === 'string' ? a.body.error : '';
    count(`problem:${kind}:${a.status}:${why}`);
  }
  if (a.queuedMs > 1) queued.push(a.queuedMs);
  return a;
}
const laneOf = (kind: string) => (!input.lanes ? 'main' : kind === 'join' || kind === 'poll' ? kind : 'buy');
const call = async (kind: string, method: string, path: string, o: Parameters<typeof http.call>[2] = {}) =>
  rec(kind, await http.call(method, path, { ...o, lane: laneOf(kind) }));
/**
 * As a client told "retry shortly (same Idempotency-Key)" does: on a 503 or a timeout, waits Retry-After (1-2 s) and
 * sends the same request again, at most `tries` times. Every attempt is recorded; `retries:<kind>` counts the repeats.
 * Returns the last answer and the time from the first attempt to it.
 */
async function callRetrying(kind: string, method: string, path: string, o: Parameters<typeof http.call>[2], tries = 5): Promise<Answer & { totalMs: number }> {
  const started = performance.now();
  for (let n = 1; ; n++) {
    const a = await call(kind, method, path, o);
    if ((a.status !== 503 && a.status !== 0) || n >= tries) return { ...a, totalMs: performance.now() - started };
    count(`retries:${kind}`);
    await sleep(between(1000, 2000));
  }
}

const pct = (sorted: ArrayLike<number>, p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : 0);
function summary(xs: number[]) {
  const s = Float64Array.from(xs).sort();
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, avg: r(s.reduce((a, b) => a + b, 0) / (s.length || 1)), p50: r(pct(s, 50)), p95: r(pct(s, 95)), p99: r(pct(s, 99)), max: r(s.length ? s[s.length - 1]! : 0) };
}
/** p95 (and count) per window of `sec` seconds, over every kind together and per kind. */
function windows(sec: number) {
  const out: { from: number; requests: number; p95: number; p50: number; byKind: Record<string, { n: number; p95: number }> }[] = [];
  const all = new Map<number, number[]>();
  const byKind = new Map<number, Map<string, number[]>>();
  for (const [kind, s] of series) {
    for (let i = 0; i < s.length; i += 2) {
      const w = Math.floor(s[i]! / sec);
      if (!all.has(w)) all.set(w, []);
      all.get(w)!.push(s[i + 1]!);
      if (!byKind.has(w)) byKind.set(w, new Map());
      const m = byKind.get(w)!;
      if (!m.has(kind)) m.set(kind, []);
      m.get(kind)!.push(s[i + 1]!);
    }
  }
  for (const w of [...all.keys()].sort((a, b) => a - b)) {
    const xs = Float64Array.from(all.get(w)!).sort();
    out.push({
      from: w * sec,
      requests: xs.length,
      p50: pct(xs, 50),
      p95: pct(xs, 95),
      byKind: Object.fromEntries([...byKind.get(w)!].map(([k, v]) => [k, { n: v.length, p95: pct(Float64Array.from(v).sort(), 95) }])),
    });
  }
  return out;
}
/** Requests finished per second, by kind. */
function perSecond() {
  const out: Record<string, number[]> = {};
  for (const [kind, s] of series) {
    const xs: number[] = [];
    for (let i = 0; i < s.length; i += 2) {
      const t = Math.floor(s[i]!);
      while (xs.length <= t) xs.push(0);
      xs[t]!++;
    }
    out[kind] = xs;
  }
  return out;
}
const isServerError = (a: Answer) => a.status === 0 || a.status >= 500;

/** Open-loop arrivals: calls `person(i)` at `rateAt(t)` per second for `totalSec` seconds (at most maxInFlight at once). */
async function arrivals(rateAt: (t: number) => number, totalSec: number, person: (i: number) => Promise<void>, maxInFlight = Infinity) {
  const running = new Set<Promise<void>>();
  let expected = 0;
  let started = 0;
  let last = performance.now();
  const begin = last;
  for (;;) {
    const now = performance.now();
    const t = (now - begin) / 1000;
    if (t >= totalSec) break;
    expected += (rateAt(t - (now - last) / 2000) * (now - last)) / 1000;
    last = now;
    while (started < Math.floor(expected)) {
      const i = started++;
      if (running.size >= maxInFlight) {
        count('droppedArrivals');
        continue;
      }
      const p = person(i).catch((err: unknown) => {
        count('personErrors');
        if ((counters.personErrors ?? 0) <= 3) process.stderr.write(`\n[crowd] person ${i}: ${(err as Error).stack ?? String(err)}\n`);
      });
      running.add(p);
      void p.finally(() => running.delete(p));
    }
    await sleep(5);
  }
  await Promise.all(running);
  return started;
}
const rampRate = (r: Ramp) => (t: number) =>
  t < r.upSec ? (r.peak * t) / r.upSec : t < r.upSec + r.holdSec ? r.peak : Math.max(0, r.peak * (1 - (t - r.upSec - r.holdSec) / r.downSec));

// progress over IPC (and stderr when run alone)
const progress = (extra: () => Record<string, unknown>) => {
  let lastCounts = new Map<string, number>();
  const timer = setInterval(() => {
    const done: Record<string, number> = {};
    const rates: Record<string, number> = {};
    for (const [k, l] of lat) {
      done[k] = l.length;
      rates[k] = l.length - (lastCounts.get(k) ?? 0);
    }
    lastCounts = new Map([...lat].map(([k, l]) => [k, l.length]));
    const msg = { type: 'progress', t: Math.round(since()), done, perSecond: rates, inFlight: http.inFlight, counters: { ...counters }, ...extra() };
    if (process.send) process.send(msg);
    else process.stderr.write(`\r\x1b[K[crowd] ${JSON.stringify(msg).slice(0, 200)}`);
  }, 1000);
  return () => clearInterval(timer);
};

let saleOver = false;
const saleOverWaiters = new Set<() => void>();
process.on('message', (m: { type?: string }) => {
  if (m?.type === 'sale-over') {
    saleOver = true;
    for (const w of saleOverWaiters) w();
  }
});
/** Sleeps, but wakes early when the sale is over. */
const nap = (msec: number) =>
  new Promise<void>((resolve) => {
    if (saleOver) return resolve();
    const done = () => {
      clearTimeout(t);
      saleOverWaiters.delete(done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, msec));
    saleOverWaiters.add(done);
  });

const idem = (() => {
  let n = 0;
  const run = Math.random().toString(36).slice(2, 8);
  return () => `${run}-${n++}`;
})();

// ---------------------------------------------------------------------------------------------------------------
// Modes

async function waitingRoom(i: WaitingRoomIn) {
  const admissionMs: number[] = [];
  /** When (ms epoch, as the 409 arrived) each admitted person was told nothing was left. */
  const foundNothingAt: number[] = [];
  let tickets = 0;
  const stop = progress(() => ({}));
  const people = await arrivals(rampRate(i.arrivals), i.arrivals.upSec + i.arrivals.holdSec + i.arrivals.downSec, async (n) => {
    const user = `${i.userPrefix}-${n}`;
    const token = tokenOf(user);
    const started = performance.now();
    const join = await call('join', 'POST', `/api/events/${i.eventId}/queue`, { token });
    if (join.status === 409) return void count('closedOnJoin');
    if ((join.status !== 201 && join.status !== 200) || !join.body) return void count('joinFailed');
    count('joined');
    const queueId = String(join.body.queueId);
    let status = String(join.body.status);
    let pass = typeof join.body.admissionToken === 'string' ? join.body.admissionToken : '';
    let errors = 0;
    while (status === 'waiting' || (status === 'admitted' && !pass)) {
      if (performance.now() - started > i.maxWaitSec * 1000) return void count('gaveUp');
      await sleep(between(i.pollSec[0], i.pollSec[1]) * 1000);
      const poll = await call('poll', 'GET', `/api/queue/${queueId}`, { token });
      if (poll.status !== 200 || !poll.body) {
        if (++errors >= 3) return void count('pollFailed');
        continue;
      }
      errors = 0;
      status = String(poll.body.status);
      pass = typeof poll.body.admissionToken === 'string' ? poll.body.admissionToken : '';
    }
    if (status === 'sold_out') return void count('toldSoldOut');
    if (status !== 'admitted') return void count(`ended-${status}`);
    count('admitted');
    admissionMs.push(performance.now() - started);
    let want = randomInt(1, i.maxTickets);
    for (;;) {
      const book = await call('book', 'POST', '/api/bookings', {
        token,
        body: { eventId: i.eventId, tierId: i.tierId, ticketCount: want },
        headers: { 'x-admission-token': pass, 'idempotency-key': idem() },
      });
      if (book.status === 201) {
        count('booked');
        tickets += want;
        return;
      }
      const available = book.status === 409 && book.body && typeof book.body.available === 'number' ? book.body.available : 0;
      if (book.status === 409 && available > 0 && available < want) {
        // fewer left than wanted: a buyer takes what is left
        count('admittedTookFewer');
        want = available;
        continue;
      }
      if (book.status === 409) {
        count('admittedButSoldOut');
        foundNothingAt.push(book.at);
      } else count(`bookStatus${book.status}`);
      return;
    }
  });
  stop();
  return { people, ticketsAcknowledged: tickets, timeToAdmissionMs: summary(admissionMs), foundNothingAt };
}

async function soak(i: SoakIn) {
  let held = 0;
  let cancelled = 0;
  const stop = progress(() => ({}));
  const iterations = await arrivals(() => i.rate, i.durationSec, async () => {
    const r = Math.random();
    if (r < 0.35) {
      const a = await call('events_list', 'GET', '/api/events?status=on_sale');
      if (a.status !== 200) count('unexpected');
    } else if (r < 0.6) {
      const a = await call('event_detail', 'GET', `/api/events/${i.eventId}`);
      if (a.status !== 200) count('unexpected');
    } else {
      const token = tokenOf(`${i.userPrefix}-${randomInt(0, i.users - 1)}`);
      const want = randomInt(1, 4);
      const b = await call('booking', 'POST', '/api/bookings', { token, body: { eventId: i.eventId, tierId: i.tierId, ticketCount: want }, headers: { 'idempotency-key': idem() } });
      if (b.status !== 201 || !b.body) {
        if (b.status !== 409 && b.status !== 422) count('unexpected');
        return;
      }
      held += want;
      const id = String(b.body.bookingId);
      await sleep(between(200, 800));
      const g = await call('booking_get', 'GET', `/api/bookings/${id}`, { token });
      if (g.status !== 200) count('unexpected');
      if (Math.random() >= 0.5) return void count('leftToExpire');
      await sleep(between(200, 800));
      const d = await call('booking_cancel', 'DELETE', `/api/bookings/${id}`, { token });
      if (d.status === 200) cancelled += want;
      else count('unexpected');
    }
  });
  stop();
  return { iterations, ticketsAcknowledged: held, ticketsCancelled: cancelled, windows: windows(10) };
}

async function e2e(i: E2eIn) {
  const confirmed: [string, number, number, number][] = []; // bookingId, tickets, hold sent (ms epoch), confirmed (ms epoch)
  const timeToBook: number[] = [];
  const holdToPaidMinusThink: number[] = [];
  const payTotal: number[] = [];
  let acknowledged = 0;
  const stop = progress(() => ({ confirmed: confirmed.length }));
  const arrived = await arrivals(
    () => i.rate,
    i.durationSec,
    async (n) => {
      const user = `${i.userPrefix}-${n}`;
      const token = tokenOf(user);
      const want = randomInt(1, 4);
      const holdAt = Date.now();
      const started = performance.now();
      const b = await callRetrying('hold', 'POST', '/api/bookings', { token, body: { eventId: i.eventId, tierId: i.tierId, ticketCount: want }, headers: { 'idempotency-key': idem() } });
      if (b.status !== 201 || !b.body) return void count(isServerError(b) ? 'holdErrors' : `hold${b.status}`);
      acknowledged += want;
      const id = String(b.body.bookingId);
      if (i.thinkMs[1] > 0) await sleep(between(i.thinkMs[0], i.thinkMs[1])); // typing in the card details
      const payStarted = performance.now();
      const p = await callRetrying('pay', 'POST', '/api/payments', {
        token,
        body: { bookingId: id, paymentMethodId: 'pm_card_visa', holderName: `Buyer ${n}`, holderEmail: `${user}@example.test` },
        headers: { 'idempotency-key': `pay-${id}` },
      });
      if (p.status !== 200) return void count(isServerError(p) ? 'payErrors' : `pay${p.status}`);
      confirmed.push([id, want, holdAt, p.at]);
      timeToBook.push(performance.now() - started);
      payTotal.push(p.totalMs);
      holdToPaidMinusThink.push(performance.now() - payStarted + b.totalMs);
    },
    i.maxInFlight,
  );
  stop();
  return { arrived, ticketsAcknowledged: acknowledged, confirmed, timeToBookMs: summary(timeToBook), serverTimeToBookMs: summary(holdToPaidMinusThink), payWithRetriesMs: summary(payTotal) };
}

async function demo(i: DemoIn) {
  // per buyer: [member, joinSentAt, admittedSeenAt, bookedAt, confirmedAt, tickets, outcome, bookingId, foundNothingAt,
  // toldSoldOutAt (the last time the buyer's status turned sold_out; 0 = never), path ('' = admitted from the line;
  // 'stayed' = admitted after being told sold_out; 'waitlist' = a waitlist offer), waitlistJoinedAt, offerSeenAt]
  type Row = { m: string; j: number; a: number; h: number; c: number; n: number; o: string; b: string; e: number; s: number; p: string; w: number; f: number };
  const rows: Row[] = new Array(i.buyers);
  const pre = Math.round(i.buyers * i.preShare);
  const weights = i.tiers.reduce((s, t) => s + t.weight, 0);
  const pickTier = () => {
    let r = Math.random() * weights;
    for (const t of i.tiers) if ((r -= t.weight) < 0) return t.id;
    return i.tiers.at(-1)!.id;
  };
  const stats = { waiting: 0, admitted: 0, holding: 0, paid: 0, waitlisted: 0, staying: 0, offersSeen: 0, offersPaid: 0 };
  const gaTiers = new Set(i.tiers.filter((t) => t.ga).map((t) => t.id));

  /**
   * Pays a hold as the page does: the card (a share declined, half of those retried with a good card), a 503 or a
   * timeout retried with the same Idempotency-Key, a lost answer looked up with GET /api/bookings/:id. The last answer.
   */
  const pay = async (id: string, n: number, user: string, token: string): Promise<Answer> => {
    const declined = Math.random() < i.declineShare;
    let p: Answer = await callRetrying('pay', 'POST', '/api/payments', {
      token,
      body: { bookingId: id, paymentMethodId: declined ? 'pm_card_chargeDeclined' : 'pm_card_visa', holderName: `Buyer ${n}`, holderEmail: `${user}@example.test` },
      headers: { 'idempotency-key': `pay-${id}-1` },
    });
    if (p.status === 402 && Math.random() < i.retryAfterDeclineShare) {
      await sleep(between(1000, 2000));
      p = await callRetrying('pay', 'POST', '/api/payments', {
        token,
        body: { bookingId: id, paymentMethodId: 'pm_card_visa', holderName: `Buyer ${n}`, holderEmail: `${user}@example.test` },
        headers: { 'idempotency-key': `pay-${id}-2` },
      });
    }
    if (p.status !== 200 && p.status !== 402) {
      // the answer was lost or refused (a timeout, a 503, or a retry told 409 "already being paid"): the page asks how the
      // booking stands, as a buyer would reload it, until the payment it started has finished
      for (let k = 0; k < 10; k++) {
        const g = await call('booking_get', 'GET', `/api/bookings/${id}`, { token });
        const st = g.status === 200 && g.body ? String(g.body.status) : '';
        if (st === 'CONFIRMED' || st === 'TICKETS_DELIVERED') {
          count('paidSeenOnReload');
          p = { ...g, status: 200 };
          break;
        }
        if (st !== 'PAYMENT_PENDING' && st !== '') break;
        await sleep(between(2000, 4000));
      }
    }
    return p;
  };

  /**
   * On a waitlist (already joined): looks for the offer as someone watching their e-mail would, in their bookings
   * (a RESERVED booking of this event; the offer is a hold in their name), every waitlistPollSec (backing off to
   * waitlistPollMaxSec), and pays it; until the sale is over.
   */
  const waitlister = async (row: Row, n: number, user: string, token: string) => {
    stats.waitlisted++;
    let interval = between(i.waitlistPollSec[0], i.waitlistPollSec[1]);
    let errors = 0;
    for (;;) {
      await nap(interval * 1000 * between(0.85, 1.15));
      interval = Math.min(i.waitlistPollMaxSec, interval * 1.25);
      if (saleOver) {
        stats.waitlisted--;
        return void (row.o = 'waitlist-no-offer');
      }
      const l = await call('bookings_list', 'GET', '/api/bookings', { token });
      const list = l.status === 200 && l.body && Array.isArray(l.body.bookings) ? (l.body.bookings as Record<string, unknown>[]) : null;
      if (!list) {
        if (++errors >= 10) {
          stats.waitlisted--;
          return void (row.o = `waitlist-list-${l.status}`);
        }
        continue;
      }
      errors = 0;
      const offer = list.find((b) => b.eventId === i.eventId && b.status === 'RESERVED');
      if (!offer) continue;
      stats.waitlisted--;
      stats.offersSeen++;
      row.f = Date.now();
      row.h = l.at;
      row.b = String(offer.bookingId);
      row.n = Number(offer.ticketCount);
      row.p = 'waitlist';
      stats.holding++;
      await sleep(between(1000, 3000)); // filling in the payment form
      const p = await pay(row.b, n, user, token);
      stats.holding--;
      if (p.status === 402) return void (row.o = 'declined');
      if (p.status !== 200) return void (row.o = `pay-${p.status}`);
      stats.paid++;
      stats.offersPaid++;
      row.c = p.at;
      row.o = 'bought';
      return;
    }
  };
  const stop = progress(() => ({ stats: { ...stats } }));
  const buyer = async (n: number) => {
    const row: Row = { m: '', j: 0, a: 0, h: 0, c: 0, n: 0, o: '', b: '', e: 0, s: 0, p: '', w: 0, f: 0 };
    rows[n] = row;
    const joinAt = n < pre ? i.preJoinFromMs + (n / pre) * (i.openAtMs - 3000 - i.preJoinFromMs) : i.openAtMs + ((n - pre) / Math.max(1, i.buyers - pre)) * i.postWindowSec * 1000;
    await sleep(joinAt - Date.now());
    if (saleOver) return void (row.o = 'sale-over-before-join');
    const user = `${i.userPrefix}-${n}`;
    const token = tokenOf(user);
    row.j = Date.now();
    const join = await callRetrying('join', 'POST', `/api/events/${i.eventId}/queue`, { token });
    if (join.status === 409) return void (row.o = 'closed');
    if ((join.status !== 201 && join.status !== 200) || !join.body) return void (row.o = `join-${join.status}`);
    const queueId = String(join.body.queueId);
    row.m = queueId.slice(-16);
    stats.waiting++;
    let st = join.body;
    let soldOutSeen = 0;
    let errors = 0;
    let lastAhead = -1;
    let interval = 0;
    let wasSoldOut = false;
    // what this buyer does when told sold_out: join the waitlist (preferred tier general admission), stay in line until
    // the sale is over, or look again soldOutRetries times and leave; decided the first time
    let plan: '' | 'waitlist' | 'stay' | 'leave' = '';
    const preferred = pickTier();
    const want = randomInt(1, i.maxTickets);
    /** Leaves the line (the page's Leave button; DELETE /api/queue/:id), so no pass is given to someone gone. */
    const leave = async () => {
      if (i.leaveWhenNothing) await call('leave', 'DELETE', `/api/queue/${queueId}`, { token });
    };
    for (;;) {
      const status = String(st.status);
      if (status === 'sold_out' && !wasSoldOut) row.s = Date.now();
      wasSoldOut = status === 'sold_out';
      if (status === 'admitted' && typeof st.admissionToken === 'string') break;
      if (status === 'expired' || status === 'closed') {
        stats.waiting--;
        if (plan === 'stay') stats.staying--;
        return void (row.o = `queue-${status}`);
      }
      if (saleOver) {
        stats.waiting--;
        if (plan === 'stay') stats.staying--;
        return void (row.o = plan === 'waitlist' ? 'sold-out-waitlist-not-joined' : 'sold-out');
      }
      let waitMs: number;
      if (Date.now() < i.openAtMs) waitMs = i.openAtMs - Date.now() + Math.random() * i.firstPollSpreadSec * 1000;
      else if (status === 'sold_out') {
        if (!plan) {
          const r = Math.random();
          plan = gaTiers.has(preferred) && r < i.waitlistShare ? 'waitlist' : r < i.stayShare ? 'stay' : 'leave';
          if (plan === 'stay') stats.staying++;
        }
        if (plan === 'waitlist') {
          const wl = await call('waitlist_join', 'POST', `/api/events/${i.eventId}/waitlist`, {
            token, body: { tierId: preferred, ticketCount: want, email: `${user}@example.test` },
          });
          if (wl.status === 201 || wl.status === 200) {
            // on the waitlist: the buyer leaves the waiting room and watches for the offer
            row.w = Date.now();
            stats.waiting--;
            await leave();
            return waitlister(row, n, user, token);
          }
          // 409 not-sold-out: the tier's last tickets are reserved for people admitted ahead (the waitlist opens only
          // once none is left); the buyer stays in line and tries again at the next sold_out
          if (wl.status !== 409) count(`waitlistJoin${wl.status}`);
        } else if (plan === 'leave' && ++soldOutSeen > i.soldOutRetries) {
          stats.waiting--;
          await leave();
          return void (row.o = 'gave-up-sold-out');
        }
        waitMs = i.maxPollSec * 1000 * between(0.8, 1.2);
      } else {
        // the page polls at the interval the server's estimate suggests, and backs off while its place does not move
        const est = typeof st.estimatedWaitSeconds === 'number' ? st.estimatedWaitSeconds : i.maxPollSec;
        const ahead = typeof st.aheadOfYou === 'number' ? st.aheadOfYou : -1;
        interval = ahead >= 0 && ahead === lastAhead ? Math.min(i.maxPollSec, Math.max(1.5, interval * 2)) : Math.min(i.maxPollSec, Math.max(1.5, est * 0.7));
        lastAhead = ahead;
        waitMs = interval * 1000 * between(0.85, 1.15);
      }
      await nap(waitMs);
      if (saleOver) continue;
      const poll = await call('poll', 'GET', `/api/queue/${queueId}`, { token });
      if (poll.status !== 200 || !poll.body) {
        if (++errors >= 5) {
          stats.waiting--;
          if (plan === 'stay') stats.staying--;
          return void (row.o = `poll-${poll.status}`);
        }
        continue;
      }
      errors = 0;
      st = poll.body;
    }
    stats.waiting--;
    if (plan === 'stay') stats.staying--;
    if (row.s > 0) row.p = 'stayed';
    stats.admitted++;
    row.a = Date.now();
    const pass = String(st.admissionToken);
    // hold: the preferred tier, then the others; then fewer tickets
    const order = [preferred, ...i.tiers.map((t) => t.id)].filter((t, k, a) => a.indexOf(t) === k);
    let hold: Answer | null = null;
    let got = 0;
    outer: for (const count of [want, ...(want > 1 ? [1] : [])]) {
      for (const tierId of order) {
        const b = await callRetrying('hold', 'POST', '/api/bookings', {
          token,
          body: { eventId: i.eventId, tierId, ticketCount: count },
          headers: { 'x-admission-token': pass, 'idempotency-key': idem() },
        });
        if (b.status === 201) {
          hold = b;
          got = count;
          break outer;
        }
        if (b.status !== 409) {
          row.o = `hold-${b.status}${b.body && typeof b.body.type === 'string' ? ` ${b.body.type}` : ''}`;
          stats.admitted--;
          return;
        }
      }
    }
    stats.admitted--;
    if (!hold?.body) {
      row.e = Date.now(); // when the last 409 came back
      row.o = 'admitted-found-nothing';
      // nothing in any tier: the buyer leaves (the page's Leave button, DELETE /api/queue/:id), which gives the unused
      // pass back so the admission worker can admit the next person when held tickets come back
      if (i.leaveWhenNothing) await call('leave', 'DELETE', `/api/queue/${queueId}`, { token });
      return;
    }
    row.h = hold.at;
    row.n = got;
    const id = String(hold.body.bookingId);
    row.b = id;
    stats.holding++;
    if (Math.random() < i.abandonShare) {
      stats.holding--;
      return void (row.o = 'abandoned');
    }
    await sleep(between(1000, 3000)); // filling in the payment form
    const p = await pay(id, n, user, token);
    stats.holding--;
    if (p.status === 402) return void (row.o = 'declined');
    if (p.status !== 200) return void (row.o = `pay-${p.status}`);
    stats.paid++;
    row.c = p.at;
    row.o = 'bought';
  };
  const all: Promise<void>[] = [];
  for (let n = 0; n < i.buyers; n++) {
    all.push(
      buyer(n).catch((err: unknown) => {
        count('personErrors');
        if ((counters.personErrors ?? 0) <= 3) process.stderr.write(`\n[crowd] buyer ${n}: ${(err as Error).stack ?? String(err)}\n`);
      }),
    );
  }
  await Promise.all(all);
  stop();
  return { rows: rows.filter(Boolean).map((r) => [r.m, r.j, r.a, r.h, r.c, r.n, r.o, r.b, r.e, r.s, r.p, r.w, r.f]) };
}

let out: Record<string, unknown>;
switch (input.mode) {
  case 'waiting-room':
    out = await waitingRoom(input);
    break;
  case 'soak':
    out = await soak(input);
    break;
  case 'e2e':
    out = await e2e(input);
    break;
  case 'demo':
    out = await demo(input);
    break;
}
http.close();
const durationSec = since();
process.stdout.write(
  JSON.stringify({
    mode: input.mode,
    durationSec,
    latencyMs: Object.fromEntries([...lat].map(([k, v]) => [k, summary(v)])),
    statuses: Object.fromEntries(statuses),
    perSecond: perSecond(),
    clientQueueMs: summary(queued),
    // up to 5,000 latencies per kind, evenly spread over the run, for distribution charts
    latencySamples: Object.fromEntries([...lat].map(([k, v]) => [k, v.filter((_, j) => j % Math.max(1, Math.floor(v.length / 5000)) === 0).map((x) => Math.round(x * 10) / 10)])),
    counters,
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
    ...out,
  }) + '\n',
  () => process.exit(0),
);
