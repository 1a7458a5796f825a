import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { sign } from 'hono/jwt';
import { describe, expect, it } from 'vitest';
import { redisNow } from '../../engine/holds/holds.js';
import { type EventId, type UserId } from '../../engine/ids.js';
import { eventKeys } from '../../engine/keys.js';
import { memberOf } from '../../engine/waiting-room/waiting-room.js';
import { SWEEPER_QUEUE } from '../../integrations/queues.js';
import { gaEvent } from '../events.js';
import { TEST_JWT_SECRET, token } from '../http.js';
import { waitFor } from '../wait.js';
import { cleanups, killHard, onSaleNow, recordFigures, startOwnRedis, startStack, waitDrained } from './harness.js';

const ROOT = join(import.meta.dirname, '..', '..');
const TTL_MS = 60_000;
const SKEWS = { normal: null, ahead2h: '+2h', behind90s: '-90s' } as const;
type Skew = keyof typeof SKEWS;

/** A real process (api/main.ts or workers/main.ts) under `faketime -f <offset>` (or none), on our Redis and schema. */
function startProcess(entry: string, offset: string | null, env: Record<string, string>) {
  const node = [process.execPath, '--import', 'tsx', join(ROOT, entry)];
  const argv = offset ? ['faketime', '-f', offset, ...node] : node;
  const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out };
}

/**
 * F7 (F15 of the plan): one process's clock is off (libfaketime: +2 h, -90 s) next to a correct one. Since the scripts
 * take Redis's own clock (TIME), a hold made by any API process expires TTL after Redis's now, and a sweeper on a fast
 * clock expires nobody early. What still follows the process clock: JWT exp/nbf (30 s tolerance) and the admission
 * pass's signed expiry checked in the API before the script (the script re-checks the pass on Redis's clock).
 */
describe('F7 fault: clock skew on one process (faketime)', () => {
  it('hold expiry follows Redis, not the skewed API or sweeper; JWT and admission checks follow the process clock', { timeout: 120_000 }, async ({ onTestFinished }) => {
    expect(spawnSync('faketime', ['-f', '+0', 'true']).status, 'faketime is missing: run scripts/ensure-tools.sh').toBe(0);
    const own = cleanups(onTestFinished);
    const redis = own(await startOwnRedis(), (r) => r.stop());
    const s = own(await startStack({ redisUrl: redis.url }), (x) => x.close());
    const children = own([] as ChildProcess[], async (cs) => {
      for (const c of cs) await killHard(c);
    });
    const stack = s;
    const admin = redis.admin;
    const env = {
      NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', REDIS_URL: redis.url, DATABASE_URL: stack.databaseUrl, PG_SCHEMA: stack.schema,
      KEY_NAMESPACE: stack.ns, JWT_SECRET: TEST_JWT_SECRET, ADMISSION_SECRET: stack.config.admissionSecret, HOLD_TTL_MS: String(TTL_MS),
      RATE_LIMIT_PER_USER: '0', RATE_LIMIT_PER_IP: '0', LOG_LEVEL: 'info', SWEEP_INTERVAL_MS: '200', WORKERS: 'sweeper',
      // one process per skewed API (the clock is the point here, not the cluster: api/main.test.ts)
      API_PROCESSES: '1',
    };
    const apis = {} as Record<Skew, string>;
    await Promise.all(
      (Object.keys(SKEWS) as Skew[]).map(async (name) => {
        const p = startProcess('api/main.ts', SKEWS[name], env);
        children.push(p.child);
        const line = await waitFor(`the ${name} API listening`, () => {
          if (p.child.exitCode !== null) throw new Error(p.output());
          return p.output().split('\n').find((l) => l.includes('"api listening"'));
        }, 60_000, 50);
        apis[name] = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
      }),
    );
    // each process runs on the clock it was given (its Date header)
    const clockOf = async (name: Skew) => Date.parse((await fetch(`${apis[name]}/health`)).headers.get('date')!) - Date.now();
    const offsets = { normal: await clockOf('normal'), ahead2h: await clockOf('ahead2h'), behind90s: await clockOf('behind90s') };
    expect(Math.abs(offsets.normal)).toBeLessThan(2_000);
    expect(Math.abs(offsets.ahead2h - 7_200_000)).toBeLessThan(2_000);
    expect(Math.abs(offsets.behind90s + 90_000)).toBeLessThan(2_000);

    // 1. holds made through each API expire TTL after Redis's clock
    const ev = await stack.engine.createEvent(gaEvent(100, onSaleNow()));
    const post = async (name: Skew, user: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
      const res = await fetch(`${apis[name]}/api/bookings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await token(user)}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json()) as Record<string, string> };
    };
    const holds: Record<string, { expiresAtMs: number; skewFromRedisTtl: number }> = {};
    for (const name of Object.keys(SKEWS) as Skew[]) {
      const before = await redisNow(admin);
      const r = await post(name, `skew-${name}`, { eventId: ev.id, ticketCount: 1 });
      const after = await redisNow(admin);
      expect(r.status, JSON.stringify(r.json)).toBe(201);
      const exp = Date.parse(r.json.expiresAt!);
      expect(exp).toBeGreaterThanOrEqual(before + TTL_MS);
      expect(exp).toBeLessThanOrEqual(after + TTL_MS);
      expect(Number(await admin.zscore(eventKeys(stack.ns, ev.id).expiry, r.json.bookingId!))).toBe(exp);
      holds[name] = { expiresAtMs: exp, skewFromRedisTtl: exp - (before + TTL_MS) };
    }

    // 2. a sweeper on a clock two hours fast: expires what is due by Redis's clock (a hold made due an hour ago), no other
    const due = await stack.engine.createEvent(gaEvent(10, onSaleNow()));
    const { reservation: stale } = await stack.engine.bookings.create({ userId: 'stale' as UserId, eventId: due.id, ticketCount: 1 });
    // made live, then its deadline moved an hour into the past (by Redis's clock) as if it had been made long ago
    await admin.zadd(eventKeys(stack.ns, due.id).expiry, String((await redisNow(admin)) - 3_600_000), stale.bookingId);
    const sweeper = startProcess('workers/main.ts', SKEWS.ahead2h, env);
    children.push(sweeper.child);
    const queue = own(new Queue(SWEEPER_QUEUE, { connection: admin, prefix: `${stack.ns}:bull` }), (q) => q.close());
    await waitFor('the +2h sweeper to run three times', async () => {
      if (sweeper.child.exitCode !== null) throw new Error(sweeper.output());
      return ((await queue.getJobCounts('completed')).completed ?? 0) >= 3;
    }, 60_000, 100);
    const held = (id: EventId) => stack.workerEngine.inventory.redisState(id).then((t) => Object.values(t)[0]!.held);
    await waitFor('the due hold expired', async () => (await held(due.id)) === 0, 10_000);
    expect(await held(ev.id)).toBe(3); // the three holds above, 60 s from Redis's now, are all still live
    await killHard(sweeper.child);

    // 3. JWT exp / nbf with the 30 s tolerance, on each process's own clock
    const now = Math.floor(Date.now() / 1000);
    const jwt = (claims: Record<string, number>) => sign({ sub: 'jwt-user', ...claims }, TEST_JWT_SECRET, 'HS256');
    const cases = {
      'exp in 10 min': await jwt({ exp: now + 600 }),
      'exp 20 s ago': await jwt({ exp: now - 20 }),
      'exp 45 s ago': await jwt({ exp: now - 45 }),
      'nbf now, exp in 10 min': await jwt({ nbf: now, exp: now + 600 }),
    };
    const jwtResults: Record<string, Record<Skew, number>> = {};
    for (const [label, t] of Object.entries(cases)) {
      jwtResults[label] = {} as Record<Skew, number>;
      for (const name of Object.keys(SKEWS) as Skew[]) {
        jwtResults[label][name] = (await fetch(`${apis[name]}/api/bookings`, { headers: { authorization: `Bearer ${t}` } })).status;
      }
    }
    expect(jwtResults).toEqual({
      'exp in 10 min': { normal: 200, ahead2h: 401, behind90s: 200 }, // a fast clock refuses tokens expiring within its skew
      'exp 20 s ago': { normal: 200, ahead2h: 401, behind90s: 200 }, // inside the 30 s tolerance
      'exp 45 s ago': { normal: 401, ahead2h: 401, behind90s: 200 }, // a slow clock accepts expired tokens for its skew
      'nbf now, exp in 10 min': { normal: 200, ahead2h: 401, behind90s: 401 }, // a slow clock refuses fresh tokens (nbf)
    });

    // 4. waiting-room passes (5 min): the signed expiry is checked on the API's clock before the script checks Redis's
    const queued = await stack.engine.createEvent({
      ...gaEvent(50, onSaleNow()),
      queue: { enabled: true, opensAt: new Date(Date.now() - 120_000).toISOString(), admissionRatePerSecond: 100, passTtlSeconds: 300 },
    });
    const passes = {} as Record<Skew, string>;
    for (const name of Object.keys(SKEWS) as Skew[]) await stack.engine.waitingRoom.join(queued.id, `pass-${name}` as UserId);
    await stack.engine.waitingRoom.admit(queued.id, 10);
    for (const name of Object.keys(SKEWS) as Skew[]) {
      const user = `pass-${name}` as UserId;
      passes[name] = (await stack.engine.waitingRoom.status(`q_${queued.id.slice(3)}_${memberOf(stack.config.admissionSecret, queued.id, user)}`, user)).admissionToken!;
      expect(passes[name]).toBeTruthy();
    }
    const admission = {} as Record<Skew, number>;
    for (const name of Object.keys(SKEWS) as Skew[]) {
      admission[name] = (await post(name, `pass-${name}`, { eventId: queued.id, ticketCount: 1 }, { 'x-admission-token': passes[name] })).status;
    }
    expect(admission).toEqual({ normal: 201, ahead2h: 403, behind90s: 201 });

    await waitDrained(stack.workerEngine, [ev.id, due.id, queued.id]);
    const report = await stack.workerEngine.checkInvariants({ eventIds: [ev.id, due.id, queued.id], drained: true });
    expect(report.violations).toEqual([]);
    await recordFigures('F7-clock-skew', {
      processClockOffsetsMs: offsets, holdExpiryVsRedisTtlMs: Object.fromEntries(Object.entries(holds).map(([k, v]) => [k, v.skewFromRedisTtl])),
      sweeperAhead2h: { dueHoldExpired: true, liveHoldsKept: 3 }, jwtStatus: jwtResults, admissionPassStatus: admission,
      invariantViolations: report.violations.length,
    });
  });
});
