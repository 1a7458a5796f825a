/**
 * The correctness checks of every benchmark run. Each check is a named pass/fail with the figures behind it; a run
 * whose checks do not all pass exits 1 and says so in capitals (reportChecks). bench/checks.test.ts runs these
 * against deliberately broken stores and servers to prove they fail when they should.
 */
import type { ChargeRecord, Engine, InvariantReport } from '../../engine/index.js';
import type { EventId } from '../../engine/ids.js';
import type { Pool } from '../../platform/pg.js';

export type Check = { name: string; ok: boolean; detail: string };
export type TierState = { cap: number; free: number; held: number; sold: number };

const sumTiers = (s: Record<string, TierState>) =>
  Object.values(s).reduce((a, t) => ({ cap: a.cap + t.cap, free: a.free + t.free, held: a.held + t.held, sold: a.sold + t.sold }), { cap: 0, free: 0, held: 0, sold: 0 });

/**
 * Oversold seats as the buyers see them: tickets acknowledged with a 201 beyond the capacity (only meaningful when the
 * run started from a fresh event), plus, per tier in the store, held + sold beyond capacity.
 */
export function oversold(o: { capacity: number; acknowledgedTickets: number | null; store?: Record<string, TierState> }): number {
  const client = o.acknowledgedTickets === null ? 0 : Math.max(0, o.acknowledgedTickets - o.capacity);
  const store = Object.values(o.store ?? {}).reduce((n, t) => n + Math.max(0, t.held + t.sold - t.cap), 0);
  return Math.max(client, store);
}

/** `acknowledgedTickets: null` when tickets come back during the run (cancel, expiry): only the store is checked then. */
export function oversellCheck(label: string, o: { capacity: number; acknowledgedTickets: number | null; store?: Record<string, TierState> }): Check {
  const n = oversold(o);
  const s = o.store ? sumTiers(o.store) : null;
  return {
    name: `${label}: oversold seats = 0`,
    ok: n === 0,
    detail: `oversold ${n}; capacity ${o.capacity}` + (o.acknowledgedTickets === null ? '' : `, tickets acknowledged (201) ${o.acknowledgedTickets}`) + (s ? `, store held ${s.held} + sold ${s.sold}` : ''),
  };
}

/** Counters add up per tier: capacity == available + held + sold, nothing below zero. */
export function countersCheck(label: string, store: Record<string, TierState>): Check {
  const bad = Object.entries(store).filter(([, t]) => t.cap !== t.free + t.held + t.sold || t.free < 0 || t.held < 0 || t.sold < 0);
  return {
    name: `${label}: capacity == available + held + sold, nothing below zero`,
    ok: bad.length === 0,
    detail: bad.length ? bad.map(([id, t]) => `${id} ${JSON.stringify(t)}`).join('; ') : `${Object.keys(store).length} tier(s) add up`,
  };
}

/**
 * Every 201 is a ticket in the store, and nothing is held that no request asked for. The load generator stops counting
 * at the end of its run while the server still answers the requests in flight, so the store may hold a little more
 * than was acknowledged, but never less, and never more than was sent.
 */
export function acknowledgedCheck(label: string, o: { acknowledgedTickets: number; sentTicketsMax: number; storeTickets: number }): Check {
  const ok = o.storeTickets >= o.acknowledgedTickets && o.storeTickets <= o.sentTicketsMax;
  return {
    name: `${label}: every acknowledged ticket is in the store, none without a request`,
    ok,
    detail: `acknowledged ${o.acknowledgedTickets} <= in store ${o.storeTickets} <= requested at most ${o.sentTicketsMax}`,
  };
}

/** Redis and Postgres hold the same counters after the drain (tier by tier). */
export function agreementCheck(label: string, redis: Record<string, TierState>, postgres: Record<string, TierState>): Check {
  const tiers = new Set([...Object.keys(redis), ...Object.keys(postgres)]);
  const diff: string[] = [];
  for (const t of tiers) {
    const a = redis[t];
    const b = postgres[t];
    if (!a || !b || a.cap !== b.cap || a.free !== b.free || a.held !== b.held || a.sold !== b.sold) {
      diff.push(`${t}: redis ${JSON.stringify(a ?? null)} vs postgres ${JSON.stringify(b ?? null)}`);
    }
  }
  return { name: `${label}: Redis and Postgres agree after the drain`, ok: diff.length === 0, detail: diff.length ? diff.join('; ') : `${tiers.size} tier(s) equal` };
}

export function invariantsCheck(label: string, r: InvariantReport): Check {
  return {
    name: `${label}: checkInvariants`,
    ok: r.ok,
    detail: r.ok ? `no violations (${JSON.stringify(r.figures)})` : `${r.violations.length} violation(s): ${r.violations.slice(0, 5).join(' | ')}`,
  };
}

/** The pg-lock baseline keeps its counters in Postgres only: they must equal what its bookings hold. */
export async function pgLockState(pg: Pool, eventId: EventId) {
  const { rows } = await pg.query<{ id: string; capacity: number; reserved: number; sold: number; held_b: string; sold_b: string; bookings: string }>(
    `SELECT t.id, t.capacity, t.reserved, t.sold,
            COALESCE(sum(b.ticket_count) FILTER (WHERE st.holds = 'held'), 0) AS held_b,
            COALESCE(sum(b.ticket_count) FILTER (WHERE st.holds = 'sold'), 0) AS sold_b,
            count(b.id) AS bookings
       FROM tiers t LEFT JOIN bookings b ON b.tier_id = t.id LEFT JOIN booking_states st ON st.state = b.state
      WHERE t.event_id = $1 GROUP BY t.id`,
    [eventId],
  );
  return rows.map((r) => ({ tier: r.id, capacity: r.capacity, reserved: r.reserved, sold: r.sold, heldByBookings: Number(r.held_b), soldByBookings: Number(r.sold_b), bookings: Number(r.bookings) }));
}
export type PgLockState = Awaited<ReturnType<typeof pgLockState>>;

export function pgLockCheck(label: string, state: PgLockState): Check {
  const bad = state.filter((t) => t.reserved !== t.heldByBookings || t.sold !== t.soldByBookings || t.reserved + t.sold > t.capacity || t.reserved < 0 || t.sold < 0);
  return {
    name: `${label}: Postgres counters equal its bookings, within capacity`,
    ok: bad.length === 0,
    detail: state.map((t) => `${t.tier}: reserved ${t.reserved} (bookings hold ${t.heldByBookings}), sold ${t.sold} (${t.soldByBookings}), capacity ${t.capacity}, ${t.bookings} bookings`).join('; '),
  };
}

/**
 * The store-side checks for one Floodgate event after its outbox was drained: counters, acknowledged vs held, and
 * checkInvariants with `drained` (outbox empty, Redis == Postgres).
 */
export async function floodgateEventChecks(
  engine: Engine,
  label: string,
  eventId: EventId,
  o: { acknowledgedTickets: number | null; sentTicketsMax: number; capacity: number; charges?: ChargeRecord[]; emailsPerBooking?: Map<string, number> },
): Promise<{ checks: Check[]; redis: Record<string, TierState>; postgres: Record<string, TierState>; invariants: InvariantReport }> {
  const redis = await engine.inventory.redisState(eventId);
  const postgres = await engine.inventory.postgresState(eventId);
  const inv = await engine.checkInvariants({ eventIds: [eventId], drained: true, ...(o.charges ? { charges: o.charges } : {}), ...(o.emailsPerBooking ? { emailsPerBooking: o.emailsPerBooking } : {}) });
  const s = sumTiers(redis);
  const checks = [
    oversellCheck(label, { capacity: o.capacity, acknowledgedTickets: o.acknowledgedTickets, store: redis }),
    countersCheck(`${label} (Redis)`, redis),
    ...(o.acknowledgedTickets === null ? [] : [acknowledgedCheck(label, { acknowledgedTickets: o.acknowledgedTickets, sentTicketsMax: o.sentTicketsMax, storeTickets: s.held + s.sold })]),
    agreementCheck(label, redis, postgres),
    invariantsCheck(label, inv),
  ];
  return { checks, redis, postgres, invariants: inv };
}

/** The same for a pg-lock event (its Redis side is never used: Postgres is checked against its bookings). */
export async function pgLockEventChecks(
  engine: Engine,
  pg: Pool,
  label: string,
  eventId: EventId,
  o: { acknowledgedTickets: number; sentTicketsMax: number; capacity: number },
): Promise<{ checks: Check[]; state: PgLockState; invariants: InvariantReport }> {
  const state = await pgLockState(pg, eventId);
  const inv = await engine.checkInvariants({ eventIds: [eventId] });
  const inStore = state.reduce((n, t) => n + t.reserved + t.sold, 0);
  const asStore: Record<string, TierState> = Object.fromEntries(state.map((t) => [t.tier, { cap: t.capacity, free: t.capacity - t.reserved - t.sold, held: t.reserved, sold: t.sold }]));
  const checks = [
    oversellCheck(label, { capacity: o.capacity, acknowledgedTickets: o.acknowledgedTickets, store: asStore }),
    pgLockCheck(label, state),
    acknowledgedCheck(label, { acknowledgedTickets: o.acknowledgedTickets, sentTicketsMax: o.sentTicketsMax, storeTickets: inStore }),
    invariantsCheck(label, inv),
  ];
  return { checks, state, invariants: inv };
}

/** Prints every check; on any failure prints a loud banner and sets the exit code to 1. Returns whether all passed. */
export function reportChecks(checks: Check[], log: (line: string) => void = (l) => console.log(l), alarm: (text: string) => void = (t) => console.error(t)): boolean {
  const failed = checks.filter((c) => !c.ok);
  for (const c of checks) log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name} (${c.detail})`);
  if (failed.length) {
    const bar = '!'.repeat(78);
    alarm(`\n${bar}\n!!! CORRECTNESS CHECK FAILED: ${failed.length} of ${checks.length} checks\n${failed.map((c) => `!!!   ${c.name}: ${c.detail}`).join('\n')}\n${bar}\n`);
    process.exitCode = 1;
  }
  return failed.length === 0;
}

/** Markdown lines for the results file. */
export function checksMarkdown(checks: Check[]): string[] {
  const failed = checks.filter((c) => !c.ok).length;
  return [
    failed ? `**CORRECTNESS CHECK FAILED: ${failed} of ${checks.length} checks.**` : `All ${checks.length} correctness checks passed.`,
    '',
    '| check | result | figures |',
    '|---|---|---|',
    ...checks.map((c) => `| ${c.name} | ${c.ok ? 'pass' : '**FAIL**'} | ${c.detail.replace(/\|/g, '/')} |`),
  ];
}
