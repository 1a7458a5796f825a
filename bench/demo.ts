/**
 * `npm run demo`: the on-sale simulation. A stadium event (default 50,000 seats: a standing floor and seated lower bowl,
 * upper bowl and club sections) with its waiting room on; N simulated buyers (default 200,000) join, half before the
 * opening (drawn into a fair random order with a seed committed in advance) and half after (first come, first served),
 * get admitted, hold, pay with the simulated provider (a share declined with pm_card_chargeDeclined, a share abandoning
 * their holds, which expire after a short HOLD_TTL_MS), and receive their tickets (the notify workers render the PDF and
 * write the e-mail into a temporary outbox folder). A live progress line shows queue depth, admitted, held, sold and
 * delivered. The report (bench/results/demo-<date>.{json,md} and three SVG charts) gives the time to sell out, the
 * time until every ticket was delivered, oversold (must be 0), lost (must be 0: every acknowledged booking reached
 * Postgres), p95 time to book, and the fairness of the admission order (checked against Redis' own records of the
 * draw and the line).
 *
 * The end of the sale (issue 18): tickets that come back (expired, cancelled or declined holds) must still find a buyer.
 * Buyers told sold_out do what people on the web app would: a share of those who wanted the standing floor (the one
 * general-admission tier) join its waitlist (POST /api/events/:id/waitlist), leave the waiting room, look for the
 * offer (a RESERVED booking in GET /api/bookings, every 5-10 s backing off to 20 s) and pay it like any hold; a share of
 * the others stay in line (polling every --max-poll s) for seated returns; the rest look three more times and leave
 * (DELETE /api/queue/:id). The waitlist worker runs with the core workers (offers last --offer-ttl s). The sale is over
 * when everything is sold, or when nothing more can sell: nothing held (no hold, no open offer), no pass outstanding,
 * no returned ticket waiting to be offered, and nothing on general sale or nobody left in line. The report gives the
 * waitlist's joins, offers e-mailed, seen and paid, the tickets sold through it and to buyers who stayed in line, and
 * when and by which path the last tickets sold.
 *
 * Infrastructure: uses the Redis and Postgres at REDIS_URL / DATABASE_URL, or starts them like `npm start` does
 * (scripts/infra.ts); works in its own database (floodgate_bench), schema and key namespace, removed at the end.
 * Processes: one API (bench/server.ts), one workers process for persist, sweeper, admission and payment, and
 * --notify-processes workers processes for notify (ticket PDFs are CPU work), the buyers (bench/crowd.ts).
 *
 * Options: --buyers 200000 --seats 50000 --pre-share 0.5 --post-window 120 --admission-rate 100 --pass-ttl 150
 *          --hold-ttl 30 --decline 0.05 --retry-after-decline 0.5 --abandon 0.05 --max-tickets 4 --sockets 1000
 *          --notify-processes 2 --first-poll-spread <s> --max-poll 60 --delivery-timeout 1800
 *          --persist-batch <PERSIST_BATCH_SIZE; default the engine's 500>
 *          --one-pool (joins, polls and purchases share one pool of --sockets connections, as before 2026-12-07; by
 *          default each has its own, as separate browsers would)
 *          --no-leave (admitted buyers who find nothing, and buyers who give up after sold_out, keep their place and
 *          unused pass until it expires instead of leaving the line)
 *          --waitlist-share 0.3 (of the buyers told sold_out who wanted the floor: join its waitlist)
 *          --stay-share 0.1 (of the other buyers told sold_out: stay in line until the sale is over)
 *          --offer-ttl 90 (WAITLIST_OFFER_TTL_MS in s) --waitlist-poll 5 (first look for the offer after 5-10 s)
 *          --waitlist-poll-max 20 (the look for the offer backs off to every 20 s)
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { asNamespace, type EventId, type TierId } from '../engine/ids.js';
import { eventKeys, simulatedPaymentKeys } from '../engine/keys.js';
import { drawScore } from '../engine/waiting-room/waiting-room.js';
import { loadConfig } from '../platform/config.js';
import { ensurePostgres, ensureRedis, type Stop } from '../scripts/infra.js';
import { listSimulatedPayments } from '../integrations/payments/simulated.js';
import { OFFER_MAIL_KEY_PREFIX } from '../workers/waitlist/waitlist.js';
import { floodgateEventChecks, type Check } from './lib/checks.js';
import { countOutbox, cpuLine, maxOf, minOf, cpuMeter, flags, fmt, machineLoad, onInterrupt, pgDeadlocks, progressLine, readOutbox, RESULTS_DIR, sleep, spearman, startCrowd, startWorkers, stopAll, summarize, today, type CrowdProgress, publish } from './lib/common.js';
import { benchStack, machineFacts, ROOT, say, startServer } from './lib/stack.js';
import { cdf, lineChart } from './lib/svg.js';

const f = flags(process.argv.slice(2));
const buyers = f.num('buyers', 200_000);
const seats = f.num('seats', 50_000);
const preShare = f.num('pre-share', 0.5);
const postWindowSec = f.num('post-window', 120);
// what the backend can serve on this machine: a full purchase (hold + payment) runs at roughly 60-100 per second here
const admissionRate = f.num('admission-rate', 100);
// passes must outlive the longest poll interval, or admitted buyers learn of it too late
const passTtlSec = f.num('pass-ttl', 150);
const holdTtlSec = f.num('hold-ttl', 30);
const declineShare = f.num('decline', 0.05);
const retryAfterDecline = f.num('retry-after-decline', 0.5);
const abandonShare = f.num('abandon', 0.05);
const maxTickets = f.num('max-tickets', 4);
// buyers told sold_out: a share of those who wanted the standing floor join its waitlist, a share of the others stay in line
const waitlistShare = f.num('waitlist-share', 0.3);
const stayShare = f.num('stay-share', 0.1);
const offerTtlSec = f.num('offer-ttl', 90);
const waitlistPollSec = f.num('waitlist-poll', 5);
const waitlistPollMaxSec = f.num('waitlist-poll-max', 20);
const sockets = f.num('sockets', 1000);
const lanes = !f.has('one-pool');
const notifyProcesses = f.num('notify-processes', 2);
const preBuyers = Math.round(buyers * preShare);
// the API takes roughly 3,000 joins/s on this kind of machine: give the pre-opening group the time to get in line
const preWindowSec = f.num('pre-window', Math.max(15, Math.ceil(preBuyers / 2500)));
const firstPollSpreadSec = f.num('first-poll-spread', Math.max(3, Math.round(preBuyers / 4000)));
const maxPollSec = f.num('max-poll', 60);
const deliveryTimeoutSec = f.num('delivery-timeout', 1800);
const persistBatch = f.str('persist-batch', '');
const argv = process.argv.slice(2);
const command = `npm run demo${argv.length ? ` -- ${argv.join(' ')}` : ''}`;

/** The stadium: 10 % standing floor, 40 % lower bowl, 40 % upper bowl, 10 % club, seated in sections of rows x 25. */
function stadium(total: number) {
  const seated = (prefix: string, target: number, rows: number) => {
    const perRow = 25;
    const per = rows * perRow;
    if (target < per) {
      const r = Math.max(1, Math.floor(target / perRow));
      return [{ id: `${prefix}1`, rows: r, seatsPerRow: perRow }];
    }
    return Array.from({ length: Math.floor(target / per) }, (_, i) => ({ id: `${prefix}${i + 1}`, rows, seatsPerRow: perRow }));
  };
  const cap = (s: { rows: number; seatsPerRow: number }[]) => s.reduce((n, x) => n + x.rows * x.seatsPerRow, 0);
  const lower = seated('L', total * 0.4, 20);
  const upper = seated('U', total * 0.4, 20);
  const club = seated('C', total * 0.1, 10);
  const floor = total - cap(lower) - cap(upper) - cap(club);
  return [
    { name: 'Floor (standing)', price: 8900, currency: 'EUR', capacity: floor },
    { name: 'Lower bowl', price: 12900, currency: 'EUR', capacity: cap(lower), seating: { sections: lower } },
    { name: 'Upper bowl', price: 6900, currency: 'EUR', capacity: cap(upper), seating: { sections: upper } },
    { name: 'Club', price: 24900, currency: 'EUR', capacity: cap(club), seating: { sections: club } },
  ].filter((t) => t.capacity > 0);
}

const stops: Stop[] = [];
const config = loadConfig();
const dataDir = resolve(ROOT, config.DATA_DIR);
const r = await ensureRedis(config.REDIS_URL, dataDir, say);
if (r) stops.push(r);
const p = await ensurePostgres(config.DATABASE_URL, dataDir, say);
if (p) stops.push(p);
const stack = await benchStack();
const outboxDir = await mkdtemp(join(tmpdir(), 'floodgate-demo-'));
let cleaning: Promise<void> | undefined;
/** Idempotent: the Ctrl-C handler and the finally below may both call it. */
const cleanup = () =>
  (cleaning ??= (async () => {
    await rm(outboxDir, { recursive: true, force: true });
    await stack.cleanup();
    for (const stop of stops.reverse()) await stop().catch(() => {});
  })());
onInterrupt(cleanup);
const { engine, redis, deps } = stack;
const before = machineLoad();
try {
  say(`stack: database floodgate_bench, schema ${stack.schema}, key namespace ${stack.ns}, outbox ${outboxDir}; load average ${before.loadAverage.join(' ')}`);
  const now = Date.now();
  // the API, the workers and the crowd need a few seconds to start; the pre-opening joins start after that
  const preJoinFromMs = now + 12_000;
  const openAtMs = preJoinFromMs + preWindowSec * 1000;
  const tiers = stadium(seats);
  const capacity = tiers.reduce((n, t) => n + t.capacity, 0);
  const ev = await engine.createEvent({
    name: 'Floodgate Stadium: the big one', category: 'music', venue: 'Floodgate Stadium', startsAt: new Date(now + 60 * 86400_000).toISOString(),
    salesOpenAt: new Date(openAtMs).toISOString(), maxTicketsPerUser: maxTickets, tiers,
    queue: { enabled: true, opensAt: new Date(now).toISOString(), admissionRatePerSecond: admissionRate, passTtlSeconds: passTtlSec },
  });
  const eventId = ev.id as EventId;
  const publishedSeedHash = ev.queue?.seedHash ?? '';
  const k = eventKeys(deps.ns, eventId);
  say(`event ${eventId}: ${fmt(capacity)} seats (${ev.tiers.map((t) => `${t.name} ${fmt(t.capacity)}`).join(', ')}); waiting room open, the draw at the opening ` +
    `(${preWindowSec} s of pre-opening joins); seed hash published: ${publishedSeedHash.slice(0, 16)}...`);

  const env = {
    ...stack.env, HOLD_TTL_MS: String(holdTtlSec * 1000), SWEEP_INTERVAL_MS: '1000', SMS_PROVIDER: 'none', PG_POOL_MAX: '20',
    WAITLIST_OFFER_TTL_MS: String(offerTtlSec * 1000),
    ...(persistBatch ? { PERSIST_BATCH_SIZE: persistBatch } : {}),
  };
  const deadlocks0 = await pgDeadlocks(stack.pool);
  const mail = { MAIL_PROVIDER: 'outbox', OUTBOX_DIR: outboxDir };
  const api = await startServer('floodgate', env);
  const core = await startWorkers('persist,sweeper,admission,payment,waitlist', env, mail);
  const notifiers = await Promise.all(Array.from({ length: notifyProcesses }, () => startWorkers('notify', env, mail)));
  const meter = cpuMeter(() => redis.info('cpu'));
  const pids: Record<string, number> = { api: api.child.pid!, workers: core.pid, ...Object.fromEntries(notifiers.map((n, i) => [`notify${i + 1}`, n.pid])) };

  type Sample = {
    t: number; waiting: number; admitted: number; held: number; sold: number; free: number; delivered: number; passesUnused: number; buyersWaiting: number;
    /** waitlists: buyers on them, open offers (holds made for them), free tickets of tiers whose waitlist is open (about to be offered) */
    waitlisted: number; offersOpen: number; waitlistFree: number;
  };
  const samples: Sample[] = [];
  const admittedBatches: { score: number; members: string[] }[] = [];
  let lastScore = 0;
  let last: CrowdProgress | null = null;
  let soldOutAtMs: number | null = null;
  let crowdDoneAtMs: number | null = null;
  let allDeliveredAtMs: number | null = null;
  const line = progressLine('[demo]');

  say(`${fmt(buyers)} buyers: ${fmt(preBuyers)} join before the opening, ${fmt(buyers - preBuyers)} in the ${postWindowSec} s after; ` +
    `admission ceiling ${admissionRate}/s, passes ${passTtlSec} s, holds ${holdTtlSec} s, ${declineShare * 100} % declined, ${abandonShare * 100} % abandon`);
  const mCpu = await meter.start(pids);
  const crowd = startCrowd(
    {
      mode: 'demo', base: `http://127.0.0.1:${api.port}`, secret: stack.jwtSecret, sockets, timeoutMs: 30_000, userPrefix: `fan-${stack.ns}`, eventId, lanes,
      tiers: ev.tiers.map((t) => ({ id: t.id, weight: t.capacity, ga: !t.seated })), buyers, preShare, openAtMs, preJoinFromMs, postWindowSec, firstPollSpreadSec, maxPollSec,
      declineShare, retryAfterDeclineShare: retryAfterDecline, abandonShare, soldOutRetries: 3, maxTickets, leaveWhenNothing: !f.has('no-leave'),
      waitlistShare, stayShare, waitlistPollSec: [waitlistPollSec, waitlistPollSec * 2], waitlistPollMaxSec,
    },
    (pr) => (last = pr),
  );
  void crowd.result.then(() => (crowdDoneAtMs = Date.now())).catch(() => {});

  // fairness: new passes as the admission worker issues them (score = tick time + pass TTL, one score per tick)
  let watching = true;
  const passWatcher = (async () => {
    while (watching) {
      const got = await redis.zrangebyscore(k.wrPasses, `(${lastScore}`, '+inf', 'WITHSCORES');
      for (let i = 0; i < got.length; i += 2) {
        const score = Number(got[i + 1]);
        const b = admittedBatches.at(-1);
        if (b && b.score === score) b.members.push(got[i]!);
        else admittedBatches.push({ score, members: [got[i]!] });
        lastScore = Math.max(lastScore, score);
      }
      await sleep(100);
    }
  })();

  const gaTiers = ev.tiers.filter((t) => !t.seated).map((t) => t.id as TierId);
  const sample = async (): Promise<Sample> => {
    const m = redis.multi().hgetall(k.inv).hmget(k.wrCfg, 'admitted', 'cursorPre', 'cursorLine').zcard(k.wrPre).zcard(k.wrLine).zcard(k.wrPasses).hlen(k.wrUsed).hkeys(k.wlOffers);
    for (const t of gaTiers) m.zcard(k.wlLine(t));
    const res = await m.exec();
    const [inv, cfg, pre, lineN, passes, used, offerFields, ...lines] = res!.map((x) => x[1]) as [Record<string, string>, (string | null)[], number, number, number, number, string[], ...number[]];
    let waitlistFree = 0;
    gaTiers.forEach((t, j) => (waitlistFree += lines[j]! > 0 ? Number(inv[`free:${t}`] ?? 0) : 0));
    let held = 0;
    let sold = 0;
    let free = 0;
    for (const [field, v] of Object.entries(inv)) {
      if (field.startsWith('held:')) held += Number(v);
      else if (field.startsWith('sold:')) sold += Number(v);
      else if (field.startsWith('free:')) free += Number(v);
    }
    const waiting = Date.now() < openAtMs ? pre + lineN : pre - Number(cfg[1] ?? 0) + lineN - Number(cfg[2] ?? 0);
    const st = ((last as CrowdProgress | null)?.stats ?? {}) as Record<string, number>;
    return {
      t: (Date.now() - openAtMs) / 1000, waiting, admitted: Number(cfg[0] ?? 0), held, sold, free, delivered: await countOutbox(outboxDir), passesUnused: passes - used,
      buyersWaiting: crowdDoneAtMs === null ? (st.waiting ?? 0) : 0,
      waitlisted: lines.reduce((a, b) => a + b, 0), offersOpen: offerFields.filter((x) => !x.startsWith('m:')).length, waitlistFree,
    };
  };

  // the sale: until every buyer is done (the crowd stops waiting people once nothing more can be sold)
  let stuck = 0;
  let saleEndedAtMs: number | null = null;
  let lastSoldAtMs = openAtMs;
  let lastSold = 0;
  while (crowdDoneAtMs === null) {
    const s = await sample();
    samples.push(s);
    if (s.sold > lastSold) {
      lastSold = s.sold;
      lastSoldAtMs = Date.now();
    }
    if (soldOutAtMs === null && s.sold >= capacity) soldOutAtMs = Date.now();
    // nothing more can sell, for 3 samples in a row: nothing held (no hold and no waitlist offer could come back), no pass
    // outstanding, no returned ticket waiting for the waitlist worker to offer it, and either nothing on general sale or
    // nobody left in line to admit (passes are sized to what is left since issue 18, so a single free seat still admits
    // one more person; buyers on a waitlist wait only for tickets that come back, and none can once nothing is held);
    // not before every buyer has arrived (the last joins postWindowSec after the opening)
    const generalFree = s.free - s.waitlistFree;
    stuck = Date.now() > openAtMs + postWindowSec * 1000 + 5000 && s.held === 0 && s.passesUnused === 0 && s.offersOpen === 0 && s.waitlistFree === 0 && (generalFree <= 0 || s.waiting === 0) ? stuck + 1 : 0;
    if (saleEndedAtMs === null && (soldOutAtMs !== null || stuck >= 3)) {
      saleEndedAtMs = Date.now();
      crowd.send({ type: 'sale-over' });
    }
    const lp = last as CrowdProgress | null;
    const st = (lp?.stats ?? {}) as Record<string, number>;
    const ps = lp?.perSecond ?? {};
    line.update(`t=${s.t.toFixed(0)}s queue ${fmt(s.waiting)} | admitted ${fmt(s.admitted)} | held ${fmt(s.held)} | sold ${fmt(s.sold)}/${fmt(capacity)} | ` +
      `delivered ${fmt(s.delivered)} e-mails | joins ${ps.join ?? 0}/s polls ${ps.poll ?? 0}/s holds ${ps.hold ?? 0}/s pays ${ps.pay ?? 0}/s | buyers waiting ${fmt(st.waiting ?? 0)}` +
      (s.waitlisted || s.offersOpen || st.offersSeen ? ` | waitlist ${fmt(s.waitlisted)} offers ${fmt(s.offersOpen)} paid ${fmt(st.offersPaid ?? 0)}` : ''));
    await sleep(1000);
  }
  const result = await crowd.result;
  watching = false;
  await passWatcher;
  const cpuSale = await mCpu.stop();
  line.done();
  const lastSale = await sample();
  say(`sale over: ${fmt(lastSale.sold)} of ${fmt(capacity)} sold${soldOutAtMs ? `, sold out ${((soldOutAtMs - openAtMs) / 1000).toFixed(1)} s after the opening` : ` (not sold out; the last ticket sold ${((lastSoldAtMs - openAtMs) / 1000).toFixed(1)} s after the opening)`}; delivering the tickets`);

  // delivery: every CONFIRMED booking must reach TICKETS_DELIVERED
  const mCpu2 = await meter.start(pids);
  const deliveryStart = Date.now();
  let quiet = 0;
  for (;;) {
    const s = await sample();
    samples.push(s);
    const { rows } = await stack.pool.query<{ confirmed: string; paying: string; delivered: string }>(
      `SELECT count(*) FILTER (WHERE state = 'CONFIRMED') AS confirmed, count(*) FILTER (WHERE state = 'PAYMENT_PENDING') AS paying,
              count(*) FILTER (WHERE state = 'TICKETS_DELIVERED') AS delivered FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    const backlog = (await engine.outbox.backlog(eventId)).entries;
    const waitingForMail = Number(rows[0]!.confirmed);
    line.update(`t=${s.t.toFixed(0)}s delivered ${fmt(Number(rows[0]!.delivered))} bookings, ${fmt(waitingForMail)} confirmed bookings waiting for their e-mail, outbox backlog ${backlog}`);
    quiet = waitingForMail === 0 && Number(rows[0]!.paying) === 0 && backlog === 0 ? quiet + 1 : 0;
    if (quiet >= 2) break;
    if (Date.now() - deliveryStart > deliveryTimeoutSec * 1000) break;
    await sleep(1000);
  }
  line.done();
  const cpuDelivery = await mCpu2.stop();
  // the public fairness record (GET /api/events/:id/queue/fairness): the seed is revealed now that the sale has opened
  const fairness = (await (await fetch(`http://127.0.0.1:${api.port}/api/events/${eventId}/queue/fairness?limit=1`)).json()) as { seed: string | null; seedHash: string };
  await api.stop();
  await Promise.all([core.stop(), ...notifiers.map((n) => n.stop())]);

  // ---------------------------------------------------------------------------------------------------------------
  // The report
  say('checking and writing the report');
  // [member, joinSentAt, admittedSeenAt, heldAt, confirmedAt, tickets, outcome, bookingId, foundNothingAt, toldSoldOutAt, path, waitlistJoinedAt, offerSeenAt]
  type Row = [string, number, number, number, number, number, string, string, number, number, string, number, number];
  const rows = result.rows as Row[];
  const outcomes: Record<string, number> = {};
  for (const row of rows) outcomes[row[6]] = (outcomes[row[6]] ?? 0) + 1;
  const bought = rows.filter((x) => x[6] === 'bought');
  const acknowledged = rows.filter((x) => x[7] !== '');
  // the outbox holds the ticket e-mails and the waitlist offers' e-mails (idempotency key OFFER_MAIL_KEY_PREFIX + booking id)
  const allMessages = await readOutbox(outboxDir);
  const isOffer = (m: { bookingId: string }) => m.bookingId.startsWith(OFFER_MAIL_KEY_PREFIX);
  const offerMails = allMessages.filter(isOffer);
  const messages = allMessages.filter((m) => !isOffer(m));
  const emails = new Map<string, number>();
  for (const msg of messages) emails.set(msg.bookingId, (emails.get(msg.bookingId) ?? 0) + 1);
  const charges = await listSimulatedPayments(redis, simulatedPaymentKeys(asNamespace(stack.ns)));
  const deadlocks = (await pgDeadlocks(stack.pool)) - deadlocks0;
  const store = await floodgateEventChecks(engine, 'demo', eventId, {
    acknowledgedTickets: null, sentTicketsMax: 0, capacity, charges, emailsPerBooking: emails,
  });
  const { rows: pgBookings } = await stack.pool.query<{ id: string; state: string }>('SELECT id, state FROM bookings WHERE event_id = $1', [eventId]);
  const pgState = new Map(pgBookings.map((b) => [b.id, b.state]));
  const lost = acknowledged.filter((x) => !pgState.has(x[7])).length;
  const paidNotConfirmed = bought.filter((x) => !['CONFIRMED', 'TICKETS_DELIVERED'].includes(pgState.get(x[7]) ?? '')).length;
  const soldTickets = Object.values(store.redis).reduce((n, t) => n + t.sold, 0);
  const boughtTickets = bought.reduce((n, x) => n + x[5], 0);
  const undelivered = [...pgState.values()].filter((s) => s === 'CONFIRMED').length;
  const badPdfs = messages.filter((m) => !m.pdfOk).length;
  const lastMailMs = messages.length ? maxOf(messages.map((m) => m.writtenAtMs)) : 0;
  allDeliveredAtMs = undelivered === 0 && messages.length ? lastMailMs : null;
  const states: Record<string, number> = {};
  for (const s of pgState.values()) states[s] = (states[s] ?? 0) + 1;

  // fairness of the admission order, from Redis' own records: the drawn lane and the line, and the passes as issued
  const preOrder = await redis.zrange(k.wrPre, '0', '-1', 'WITHSCORES');
  const lineOrder = await redis.zrange(k.wrLine, '0', '-1');
  const seed = fairness.seed ?? '';
  const seedHashOk = fairness.seedHash === publishedSeedHash && createHash('sha256').update(seed).digest('hex') === publishedSeedHash;
  // people who left the line before their turn (DELETE /api/queue/:id: given up after sold_out, or gone to the
  // waitlist) are skipped by admission (wr:done "left", no pass): the order is checked over the others
  const done = await redis.hgetall(k.wrDone);
  const passed = new Set(admittedBatches.flatMap((b) => b.members));
  const leftBeforeTurn = (m: string) => done[m] === 'left' && !passed.has(m);
  const preRank = new Map<string, number>();
  let drawMismatches = 0;
  for (let i = 0; i < preOrder.length; i += 2) {
    if (!leftBeforeTurn(preOrder[i]!)) preRank.set(preOrder[i]!, preRank.size);
    if (drawScore(seed, preOrder[i]!) !== Number(preOrder[i + 1])) drawMismatches++;
  }
  const lineRank = new Map(lineOrder.filter((m) => !leftBeforeTurn(m)).map((m, i) => [m, i]));
  const admittedPre: { rank: number; batch: number }[] = [];
  const admittedLine: { rank: number; batch: number }[] = [];
  admittedBatches.forEach((b, bi) => {
    for (const m of b.members) {
      if (preRank.has(m)) admittedPre.push({ rank: preRank.get(m)!, batch: bi });
      else if (lineRank.has(m)) admittedLine.push({ rank: lineRank.get(m)!, batch: bi });
    }
  });
  /** Admitted in exactly the lane's order: the admitted set is a prefix of the lane, and no later batch holds an earlier place. */
  const inOrder = (xs: { rank: number; batch: number }[]) => {
    const ranks = new Set(xs.map((x) => x.rank));
    let prefix = true;
    for (let i = 0; i < xs.length; i++) if (!ranks.has(i)) prefix = false;
    let inversions = 0;
    const maxRankByBatch = new Map<number, number>();
    for (const x of xs) maxRankByBatch.set(x.batch, Math.max(maxRankByBatch.get(x.batch) ?? -1, x.rank));
    let maxSoFar = -1;
    for (const b of [...maxRankByBatch.keys()].sort((a, c) => a - c)) {
      const minInBatch = minOf(xs.filter((x) => x.batch === b).map((x) => x.rank));
      if (minInBatch < maxSoFar) inversions++;
      maxSoFar = Math.max(maxSoFar, maxRankByBatch.get(b)!);
    }
    return { admitted: xs.length, prefix, batchInversions: inversions };
  };
  const preFair = inOrder(admittedPre);
  const lineFair = inOrder(admittedLine);
  const lanesInOrder = admittedPre.length === 0 || admittedLine.length === 0 || maxOf(admittedPre.map((x) => x.batch)) <= minOf(admittedLine.map((x) => x.batch));
  // client side: the post-opening group's join order as the buyers sent it vs the line's order in Redis
  const memberJoin = new Map(rows.filter((x) => x[0]).map((x) => [x[0], x[1]]));
  const lineSample = lineOrder.filter((m) => memberJoin.has(m));
  const rho = spearman(lineSample.map((m) => memberJoin.get(m)!), lineSample.map((_, i) => i));

  // admitted from the line (waitlist offers are reported apart: no admission, and the hold is the offer)
  const boughtInLine = bought.filter((x) => x[10] !== 'waitlist');
  const timeToBook = boughtInLine.map((x) => x[4] - x[3]); // hold acknowledged -> payment 200 (includes 1-3 s of typing)
  const joinToBook = boughtInLine.map((x) => x[4] - x[1]);
  const openToBook = boughtInLine.map((x) => x[4] - Math.max(x[1], openAtMs));
  const admissionToBook = boughtInLine.map((x) => x[4] - x[2]);
  const sec = (xs: number[]) => summarize(xs.map((x) => x / 1000));
  const deliveredWithin = allDeliveredAtMs ? (allDeliveredAtMs - openAtMs) / 1000 : null;

  // admitted buyers who found nothing in any tier: by design (issue 3) admission counts held tickets as stock that may
  // come back (unused passes x tickets per pass <= available + held), so this can happen while others hold tickets.
  // Reported with the held tickets of the samples (1 s apart) around each moment, not checked: a 1-s sample cannot
  // prove what was held at the instant of the 409.
  const foundNothingRows = rows.filter((x) => x[6] === 'admitted-found-nothing' && x[8] > 0);
  const heldAround = foundNothingRows.map((x) => {
    const t = (x[8] - openAtMs) / 1000;
    let before = samples[0];
    let after = samples.at(-1);
    for (const s of samples) {
      if (s.t <= t) before = s;
      else {
        after = s;
        break;
      }
    }
    return Math.max(before?.held ?? 0, after?.held ?? 0);
  });
  const admittedSeen = rows.filter((x) => x[2] > 0).length;
  const foundNothing = {
    n: outcomes['admitted-found-nothing'] ?? 0,
    /** of the buyers who saw their admission (issue 18: at most 2 %) */
    share: admittedSeen ? (outcomes['admitted-found-nothing'] ?? 0) / admittedSeen : 0,
    admitted: admittedSeen,
    heldAroundMin: heldAround.length ? minOf(heldAround) : 0,
    heldAroundMax: heldAround.length ? maxOf(heldAround) : 0,
    withNothingHeldAround: heldAround.filter((h) => h === 0).length,
    firstAtSec: foundNothingRows.length ? (minOf(foundNothingRows.map((x) => x[8])) - openAtMs) / 1000 : null,
    lastAtSec: foundNothingRows.length ? (maxOf(foundNothingRows.map((x) => x[8])) - openAtMs) / 1000 : null,
  };

  // the end of the sale (issue 18): from the last seat sold to the last waiting buyer told sold_out. The buyers poll
  // (at most every --max-poll s, backing off while their place does not move), so this is bounded by their poll
  // interval, not by the server's push over the status stream (SSE), which the simulated buyers do not open.
  const toldRows = rows.filter((x) => x[9] > 0);
  const lastToldSoldOutMs = toldRows.length ? maxOf(toldRows.map((x) => x[9])) : null;
  const lineTold = {
    buyersToldSoldOut: toldRows.length,
    lastToldSecAfterLastSale: lastToldSoldOutMs !== null ? (lastToldSoldOutMs - lastSoldAtMs) / 1000 : null,
    stillWaitingWhenTheSaleEnded: outcomes['sold-out'] ?? 0,
  };

  // the last tickets (issue 18): returned tickets reach buyers through the waitlist (general admission) or through the
  // line reopening for those who stayed after being told sold_out
  const viaWaitlist = bought.filter((x) => x[10] === 'waitlist');
  const viaStayed = bought.filter((x) => x[10] === 'stayed');
  const offersSeen = rows.filter((x) => x[12] > 0);
  const pathOf = (x: Row) => (x[10] === 'waitlist' ? 'a waitlist offer' : x[10] === 'stayed' ? 'the line, after being told sold out' : 'the line');
  const lastBought = bought.length ? bought.reduce((a, b) => (b[4] > a[4] ? b : a)) : null;
  const waitlistReport = {
    joins: rows.filter((x) => x[11] > 0).length,
    stillOnTheWaitlistWhenTheSaleEnded: outcomes['waitlist-no-offer'] ?? 0,
    offersEmailed: offerMails.length,
    offersSeen: offersSeen.length,
    offersPaid: viaWaitlist.length,
    ticketsSoldThroughTheWaitlist: viaWaitlist.reduce((n, x) => n + x[5], 0),
    offerSeenToPaidSec: sec(viaWaitlist.map((x) => x[4] - x[12])),
    stayedInLine: { bought: viaStayed.length, tickets: viaStayed.reduce((n, x) => n + x[5], 0) },
  };
  const lastTickets = lastBought
    ? { secAfterOpening: (lastBought[4] - openAtMs) / 1000, by: pathOf(lastBought), tickets: lastBought[5],
        lastTenBy: Object.fromEntries(Object.entries(bought.slice().sort((a, b) => b[4] - a[4]).slice(0, 10).reduce<Record<string, number>>((o, x) => ((o[pathOf(x)] = (o[pathOf(x)] ?? 0) + 1), o), {}))) }
    : null;

  const checks: Check[] = [
    ...store.checks,
    { name: 'demo: oversold 0 (tickets sold <= seats; tickets of paid bookings <= seats)', ok: soldTickets <= capacity && boughtTickets <= capacity, detail: `sold ${soldTickets}, bought by buyers ${boughtTickets}, seats ${capacity}` },
    { name: 'demo: lost 0 (every acknowledged booking reached Postgres)', ok: lost === 0, detail: `${lost} of ${acknowledged.length} acknowledged bookings missing in Postgres` },
    { name: 'demo: every payment answered 200 is CONFIRMED or TICKETS_DELIVERED', ok: paidNotConfirmed === 0, detail: `${paidNotConfirmed} of ${bought.length}` },
    { name: 'demo: every confirmed booking got its e-mail with a PDF', ok: undelivered === 0 && badPdfs === 0, detail: `${undelivered} confirmed bookings without e-mail; ${badPdfs} e-mails without a valid PDF; ${messages.length} e-mails` },
    { name: 'demo: the draw is the committed one (sha256(seed) == the hash published before the opening; every drawn place recomputes)', ok: seedHashOk && drawMismatches === 0, detail: `hash ${seedHashOk ? 'matches' : 'DIFFERS'}; ${drawMismatches} of ${preOrder.length / 2} draw scores differ` },
    { name: 'demo: pre-opening group admitted in exactly the drawn order', ok: preFair.prefix && preFair.batchInversions === 0, detail: JSON.stringify(preFair) },
    { name: 'demo: later arrivals admitted first come, first served (after the whole drawn group)', ok: lineFair.prefix && lineFair.batchInversions === 0 && lanesInOrder, detail: `${JSON.stringify(lineFair)}; drawn group first: ${lanesInOrder}` },
  ];

  const facts = await machineFacts(stack.redis, stack.pool);
  const stamp = today();
  const charts = {
    sales: lineChart({
      title: `Sales: ${fmt(capacity)} seats, ${fmt(buyers)} buyers`, xLabel: 'seconds since the sale opened', yLabel: 'tickets',
      series: [
        { name: 'sold', points: samples.map((s) => [s.t, s.sold]) },
        { name: 'held', points: samples.map((s) => [s.t, s.held]) },
        { name: 'available', points: samples.map((s) => [s.t, s.free]), dashed: true },
        { name: 'tickets e-mailed', points: deliveredTicketsOverTime(messages, bought, openAtMs) },
      ],
      markers: [{ x: 0, label: 'sale opens (the draw)' }, ...(soldOutAtMs ? [{ x: (soldOutAtMs - openAtMs) / 1000, label: 'sold out' }] : [])],
    }),
    queue: lineChart({
      title: 'Waiting room', xLabel: 'seconds since the sale opened', yLabel: 'people',
      series: [
        { name: 'places in line not reached yet', points: samples.map((s) => [s.t, s.waiting]) },
        { name: 'buyers still waiting (client side)', points: samples.map((s) => [s.t, s.buyersWaiting]), dashed: true },
        { name: 'admitted (total)', points: samples.map((s) => [s.t, s.admitted]) },
        { name: 'passes not yet used', points: samples.map((s) => [s.t, s.passesUnused]) },
      ],
      markers: [{ x: 0, label: 'sale opens' }],
    }),
    latency: lineChart({
      title: 'Latency distribution (client side)', xLabel: 'milliseconds (log scale)', yLabel: '% of requests at or below', xLog: true, yMax: 100,
      series: (['join', 'poll', 'hold', 'pay'] as const).map((kind) => ({ name: kind, points: cdf(latencyValues(result, kind)) })),
    }),
  };
  for (const [name, svg] of Object.entries(charts)) await writeFile(join(RESULTS_DIR, `demo-${stamp}-${name}.svg`), svg);

  const L = result.latencyMs;
  const report = {
    scenario: 'demo', command, date: new Date().toISOString(), machine: facts, machineBefore: before, machineAfter: machineLoad(),
    settings: { buyers, seats: capacity, tiers: ev.tiers.map((t) => ({ name: t.name, capacity: t.capacity, seated: t.seated, sections: t.sections.length })),
      preShare, preWindowSec, postWindowSec, admissionRate, passTtlSec, holdTtlSec, declineShare, retryAfterDecline, abandonShare, maxTickets, sockets, notifyProcesses, firstPollSpreadSec, maxPollSec,
      waitlistShare, stayShare, offerTtlSec, waitlistPollSec, waitlistPollMaxSec },
    timeToSellOutSec: soldOutAtMs ? (soldOutAtMs - openAtMs) / 1000 : null,
    lastTicketSoldSecAfterOpening: (lastSoldAtMs - openAtMs) / 1000,
    lastTickets, waitlist: waitlistReport,
    unsoldTickets: capacity - soldTickets,
    saleEndedBecause: soldOutAtMs !== null ? 'sold out' : saleEndedAtMs !== null
      ? 'tickets left, none held (no hold, no waitlist offer), no pass outstanding and nobody left in line to admit for 3 s' : 'every buyer finished',
    soldTickets, boughtTickets, everyTicketDeliveredSecAfterOpening: deliveredWithin, deliveryAfterSaleSec: (Date.now() - deliveryStart) / 1000,
    oversold: Math.max(0, soldTickets - capacity, boughtTickets - capacity), lost, outcomes, bookingsByState: states, emails: messages.length,
    timeToBookSec: { holdToPaid: sec(timeToBook), joinToPaid: sec(joinToBook), openingOrJoinToPaid: sec(openToBook), admittedToPaid: sec(admissionToBook) },
    latencyMs: L, statuses: result.statuses, clientQueueMs: result.clientQueueMs, counters: result.counters,
    postgresDeadlocks: deadlocks, persistBatchSize: persistBatch || 'default (500)',
    fairness: { seedHashOk, drawMismatches, drawnGroup: preFair, laterGroup: lineFair, drawnGroupFirst: lanesInOrder, clientJoinOrderVsLineSpearman: rho, batches: admittedBatches.length },
    cpuPercentOfOneCore: { sale: { ...cpuSale, crowd: Math.round((Number(result.cpuSeconds) / result.durationSec) * 100) }, delivery: cpuDelivery },
    admittedFoundNothing: foundNothing, lineToldSoldOut: lineTold, problems: problemCounts(result.counters),
    samples, checks, ok: checks.every((c) => c.ok),
  };
  const pctRow = (name: string, s: { p50: number; p95: number; p99: number; n: number }, unit: string) => `| ${name} | ${fmt(s.n)} | ${fmt(s.p50, 2)} | **${fmt(s.p95, 2)}** | ${fmt(s.p99, 2)} | ${unit} |`;
  const md = [
    `# On-sale simulation: ${fmt(capacity)} seats, ${fmt(buyers)} buyers, ${report.date.slice(0, 10)}`,
    '',
    `Command: \`${command}\``,
    '',
    `Machine: ${facts.cores} cores (${facts.cpuModel}), ${facts.memoryGiB} GiB, Node ${facts.node}, Redis ${facts.redis}, PostgreSQL ${facts.postgres}. ` +
      `Load average (1/5/15 min) before the run: ${before.loadAverage.join(' / ')}, after: ${machineLoad().loadAverage.join(' / ')}; other users' node processes (tests, simulations) ` +
        `running at the start: ${before.otherNodeProcesses.length}, at the end: ${machineLoad().otherNodeProcesses.length}.`,
    `Processes: one API (bench/server.ts), one workers process (persist, sweeper, admission, payment), ${notifyProcesses} notify workers processes (ticket PDF + e-mail ` +
      `into a temporary outbox folder), the buyers (bench/crowd.ts over ${lanes ? `${sockets} keep-alive connections each for joins, polls and purchases` : `${sockets} keep-alive connections`}), Redis, Postgres: all on this machine.`,
    '',
    `Event: ${ev.tiers.map((t) => `${t.name} ${fmt(t.capacity)}${t.seated ? ` (${t.sections.length} sections, best adjacent seats)` : ''}`).join(', ')}; ` +
      `at most ${maxTickets} tickets per buyer. Waiting room: ${fmt(preBuyers)} buyers join in the ${preWindowSec} s before the opening (drawn with a seed committed in ` +
      `advance), ${fmt(buyers - preBuyers)} in the ${postWindowSec} s after (first come, first served); admission ceiling ${admissionRate}/s, passes valid ${passTtlSec} s. ` +
      `Buyers poll their place at the interval the server's estimate suggests (1.5-${maxPollSec} s; the first poll after the draw spread over ${firstPollSpreadSec} s), ` +
      `book 1-${maxTickets} tickets in their preferred tier (then any tier, then one ticket), type in their card for 1-3 s and pay (a 503 or a timeout is ` +
      `retried after 1-2 s with the same Idempotency-Key, at most 5 tries; a payment whose answer got lost is looked up with GET /api/bookings/:id): ${declineShare * 100} % with a card that is ` +
      `declined (${retryAfterDecline * 100} % of them retry with a good card), ${abandonShare * 100} % never pay (holds expire after ${holdTtlSec} s). ` +
      (f.has('no-leave') ? 'An admitted buyer who finds nothing in any tier keeps the unused pass until it expires. ' : 'An admitted buyer who finds nothing in any tier leaves the line (DELETE /api/queue/:id, the page\'s Leave button), giving the pass back. ') +
      `Buyers told "sold out": ${waitlistShare * 100} % of those who wanted the standing floor join its waitlist (leaving the line; they look for the offer, a hold ` +
      `in their name lasting ${offerTtlSec} s, in their bookings every ${waitlistPollSec}-${waitlistPollSec * 2} s, backing off to ${waitlistPollMaxSec} s, and pay it like any hold), ` +
      `${stayShare * 100} % of the others stay in line (polling every ${maxPollSec} s) until the sale is over, the rest look ` +
      `three more times, ${maxPollSec} s apart, then leave${f.has('no-leave') ? '' : ' (DELETE /api/queue/:id)'}; a buyer whose place does not move backs off (up to ${maxPollSec} s); once nothing more can be sold ` +
      'the page says so and everyone still waiting leaves.',
    '',
    '## Headline',
    '',
    '| figure | value |',
    '|---|---|',
    `| time to sell out (opening -> last seat sold) | **${report.timeToSellOutSec === null ? `not sold out: ${fmt(soldTickets)} of ${fmt(capacity)} sold, the last one ${fmt(report.lastTicketSoldSecAfterOpening, 1)} s after the opening (${report.saleEndedBecause})` : `${fmt(report.timeToSellOutSec, 1)} s`}** |`,
    `| every ticket delivered (opening -> last e-mail with PDF written) | **${deliveredWithin === null ? 'not all delivered' : `${fmt(deliveredWithin, 1)} s`}** (aim: 120 s) |`,
    `| oversold | **${report.oversold}** |`,
    `| lost (acknowledged bookings missing in Postgres) | **${lost}** |`,
    `| time to book p95 (hold acknowledged -> payment 200, 1-3 s of typing included) | **${fmt(report.timeToBookSec.holdToPaid.p95, 2)} s** |`,
    `| pre-opening group admitted in exactly the drawn order | **${preFair.prefix && preFair.batchInversions === 0 ? 'yes' : 'no'}** (${fmt(preFair.admitted)} admitted; draw recomputed from the revealed seed: ${seedHashOk && drawMismatches === 0 ? 'matches' : 'MISMATCH'}) |`,
    `| later arrivals admitted first come, first served | **${lineFair.prefix && lineFair.batchInversions === 0 && lanesInOrder ? 'yes' : 'no'}** (${fmt(lineFair.admitted)} admitted; Spearman rank correlation of the buyers' own join times with the line's order: ${rho.toFixed(4)}) |`,
    `| the last tickets | ${lastTickets ? `the last sold **${fmt(lastTickets.secAfterOpening, 1)} s** after the opening, through ${lastTickets.by}; the last ten sales: ${Object.entries(lastTickets.lastTenBy).map(([k, n]) => `${n} through ${k}`).join(', ')}` : 'none sold'} |`,
    `| sold through the waitlist | **${fmt(waitlistReport.ticketsSoldThroughTheWaitlist)}** tickets: ${fmt(waitlistReport.joins)} buyers joined, ${fmt(waitlistReport.offersEmailed)} offers e-mailed, ` +
      `${fmt(waitlistReport.offersSeen)} seen, ${fmt(waitlistReport.offersPaid)} paid; ${fmt(waitlistReport.stillOnTheWaitlistWhenTheSaleEnded)} still on the waitlist when the sale ended |`,
    `| sold to buyers who stayed in line after "sold out" | **${fmt(waitlistReport.stayedInLine.tickets)}** tickets (${fmt(waitlistReport.stayedInLine.bought)} buyers) |`,
    '',
    '## Buyers',
    '',
    `Outcomes: ${Object.entries(outcomes).sort((a, b) => b[1] - a[1]).map(([o, n]) => `${o} ${fmt(n)}`).join(', ')}.`,
    `Bookings in Postgres by state: ${JSON.stringify(states)}; ${fmt(messages.length)} e-mails written.`,
    '',
    `Error answers by request and problem type (every attempt, retries included): ${Object.entries(report.problems).map(([k, n]) => `${k} ${fmt(n)}`).join(', ') || 'none'}.`,
    '',
    `Admitted but found nothing in any tier: **${fmt(foundNothing.n)}** of ${fmt(foundNothing.admitted)} admitted (**${fmt(foundNothing.share * 100, 1)} %**; issue 18 asks for at most 2 %)` +
      (foundNothing.n
        ? ` (between ${fmt(foundNothing.firstAtSec ?? 0, 1)} s and ${fmt(foundNothing.lastAtSec ?? 0, 1)} s after the opening; tickets held by others in the 1-s samples around ` +
          `those moments: ${fmt(foundNothing.heldAroundMin)}-${fmt(foundNothing.heldAroundMax)}; with nothing held in both samples around it: ${foundNothing.withNothingHeldAround}). ` +
          'Admission counts held tickets as stock that may come back only in the share observed to come back in this sale (issue 18); ' +
          'when those holds are paid instead of released, a buyer admitted against them finds nothing.'
        : '.'),
    '',
    `The end of the sale: ${fmt(lineTold.buyersToldSoldOut)} waiting buyers were told sold_out; the last of them ` +
      (lineTold.lastToldSecAfterLastSale !== null ? `**${fmt(lineTold.lastToldSecAfterLastSale, 1)} s** after the last ticket sold` : 'never') +
      ` (issue 18 asks for 10 s; the simulated buyers poll at most every ${maxPollSec} s and open no status stream, so this is bounded by their polling, ` +
      `not by the server's push); ${fmt(lineTold.stillWaitingWhenTheSaleEnded)} were still waiting when the demo ended the sale.`,
    '',
    '| time to book | bookings | p50 s | p95 s | p99 s | from -> to |',
    '|---|---|---|---|---|---|',
    pctRow('hold -> paid', report.timeToBookSec.holdToPaid, 'hold acknowledged -> payment 200 (typing included)'),
    pctRow('admitted -> paid', report.timeToBookSec.admittedToPaid, 'first poll that said "admitted" -> payment 200'),
    pctRow('opening (or join, if later) -> paid', report.timeToBookSec.openingOrJoinToPaid, 'max(opening, join) -> payment 200'),
    '',
    '| request | count | p50 ms | p95 ms | p99 ms | statuses |',
    '|---|---|---|---|---|---|',
    ...(['join', 'poll', 'hold', 'pay', 'booking_get'] as const).map((kind) => {
      const l = L[kind];
      return l ? `| ${kind} | ${fmt(l.n)} | ${fmt(l.p50, 1)} | ${fmt(l.p95, 1)} | ${fmt(l.p99, 1)} | ${JSON.stringify(result.statuses[kind] ?? {})} |` : `| ${kind} | 0 | | | | |`;
    }),
    '',
    `Postgres deadlocks detected during the run: **${deadlocks}** (PERSIST_BATCH_SIZE ${persistBatch || 'default, 500'}).`,
    '',
    `CPU, percent of one core, during the sale: ${cpuLine(report.cpuPercentOfOneCore.sale)}; while the tickets were being delivered: ${cpuLine(cpuDelivery)}.`,
    '',
    `Charts: [sales over time](demo-${stamp}-sales.svg), [waiting room](demo-${stamp}-queue.svg), [latency distribution](demo-${stamp}-latency.svg).`,
    '',
    `![sales](demo-${stamp}-sales.svg)`,
    '',
    `![queue](demo-${stamp}-queue.svg)`,
    '',
    `![latency](demo-${stamp}-latency.svg)`,
  ].join('\n');
  await publish('demo', report, md, checks, { heading: 'Correctness', also: ` and bench/results/demo-${stamp}-{sales,queue,latency}.svg` });
} catch (err) {
  console.error(`[demo] failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  await cleanup();
}
process.exit(process.exitCode ?? 0);

/** The crowd's `problem:<kind>:<status>:<type>` counters, without the prefix. */
function problemCounts(counters: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counters).filter(([k]) => k.startsWith('problem:')).map(([k, n]) => [k.slice(8), n]).sort((a, b) => Number(b[1]) - Number(a[1])));
}

/** Tickets whose e-mail was written, over seconds since the opening. */
function deliveredTicketsOverTime(messages: { bookingId: string; writtenAtMs: number }[], bought: [string, number, number, number, number, number, string, string, ...(number | string)[]][], openAtMs: number): [number, number][] {
  const tickets = new Map(bought.map((x) => [x[7], x[5]]));
  const ts = messages.map((m) => [m.writtenAtMs, tickets.get(m.bookingId) ?? 1] as const).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [[0, 0]];
  let n = 0;
  let lastSec = -1;
  for (const [at, k] of ts) {
    n += k;
    const s = Math.floor((at - openAtMs) / 1000);
    if (s !== lastSec) {
      out.push([s, n]);
      lastSec = s;
    } else out[out.length - 1] = [s, n];
  }
  return out;
}

function latencyValues(result: Record<string, unknown>, kind: string): number[] {
  return (result.latencySamples as Record<string, number[]> | undefined)?.[kind] ?? [];
}
