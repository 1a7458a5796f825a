import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { createPollLoop } from '../../platform/loop.js';
import type { Engine } from '../../engine/index.js';
import type { EventId } from '../../engine/ids.js';
import type { Metrics } from '../../platform/metrics.js';
import { createPace, type Pace, type PaceOptions } from '../../engine/waiting-room/pace.js';

export type AdmissionOptions = {
  engine: Engine;
  log: Logger;
  metrics?: Metrics;
  tickMs?: number;
  leaseMs?: number;
  /** The pace of admission (engine/waiting-room/pace.ts); absent: admission is bounded by the rate and the stock only. */
  pace?: PaceOptions;
};

/**
 * The admission worker: every tick, for each event with a waiting room, admits people at the event's rate ceiling
 * (a token bucket of at most one second of admissions), never more than the stock can serve (decided inside
 * admitNext). One process at a time admits for an event (a lease), so the rate is the ceiling whatever the number of
 * workers; the script is atomic anyway, so no one is ever admitted twice.
 *
 * Each tick also measures the share of held tickets that comes back (from the event's outbox), tells admitNext
 * whether only scattered single seats are left (passes for one seat each); admit() publishes each change to the
 * open status streams (engine/waiting-room/changes.ts). With `pace`, it also caps the tickets in play (unused passes
 * plus holds) at what the event sells within the hold budget (pace.ts); the floor is one second of admissions at the
 * ceiling, in tickets.
 */
export function createAdmissionWorker(o: AdmissionOptions) {
  const owner = `admission-${randomBytes(6).toString('hex')}`;
  const tickMs = o.tickMs ?? 100;
  const leaseMs = o.leaseMs ?? 5_000;
  // errors start at 0: a panel or rate() sees a series (0 errors) from the start, not "no data"
  o.metrics?.workerErrors.inc({ worker: 'admission' }, 0);
  for (const reason of ['lapsed', 'left'] as const) o.metrics?.waitingRoomPassesUnused.inc({ reason }, 0);
  const credit = new Map<EventId, { at: number; credit: number }>();
  const paces = new Map<EventId, Pace>();

  async function tickEvent(eventId: EventId, now: number): Promise<{ admitted: number; lapsed: number; waiting: number; outstanding: number; waitsMs: number[] } | null> {
    const { engine } = o;
    if (!(await engine.waitingRoom.lease(eventId, owner, leaseMs))) {
      credit.delete(eventId);
      paces.delete(eventId);
      return null;
    }
    const rate = await engine.waitingRoom.rate(eventId);
    if (rate === 0) return null;
    const bucket = credit.get(eventId) ?? { at: now, credit: rate * (tickMs / 1000) };
    bucket.credit = Math.min(rate, bucket.credit + (rate * (now - bucket.at)) / 1000);
    bucket.at = now;
    credit.set(eventId, bucket);
    const [share, singles, activeCap] = await Promise.all([
      engine.waitingRoom.measureHeldShare(eventId),
      engine.waitingRoom.singlesOnly(eventId),
      paceCap(eventId, now, rate),
    ]);
    const r = await engine.waitingRoom.admit(eventId, Math.floor(bucket.credit), { heldSharePermille: share.permille, singles, activeCap });
    if (!r) return null;
    bucket.credit -= r.admitted;
    o.metrics?.waitingRoomHeldShare.set({ event: eventId }, share.permille / 1000);
    if (activeCap) o.metrics?.waitingRoomActiveCap.set({ event: eventId }, activeCap);
    return { admitted: r.admitted, lapsed: r.lapsed, waiting: r.waiting, outstanding: r.outstanding, waitsMs: r.waitsMs };
  }

  /** The pace's cap on tickets in play for this tick (0 = none). */
  async function paceCap(eventId: EventId, now: number, rate: number): Promise<number> {
    if (!o.pace) return 0;
    let pace = paces.get(eventId);
    if (!pace) paces.set(eventId, (pace = createPace(o.pace)));
    const { sold, ticketsPerPass } = await o.engine.waitingRoom.paceInputs(eventId);
    return pace.read(now, sold, Math.max(1, Math.ceil(rate)) * ticketsPerPass).cap;
  }

  /** One pass over every event with a waiting room. */
  async function tick(): Promise<number> {
    let admitted = 0;
    let waiting = 0;
    let outstanding = 0;
    const now = o.engine.waitingRoom.now();
    for (const eventId of await o.engine.waitingRoom.events()) {
      const r = await tickEvent(eventId, now);
      if (!r) continue;
      for (const ms of r.waitsMs) o.metrics?.waitingRoomWait.observe(ms / 1000);
      admitted += r.admitted;
      if (r.lapsed) o.metrics?.waitingRoomPassesUnused.inc({ reason: 'lapsed' }, r.lapsed);
      waiting += r.waiting;
      outstanding += r.outstanding;
    }
    if (o.metrics) {
      o.metrics.waitingRoomAdmitted.inc(admitted);
      o.metrics.waitingRoomWaiting.set(waiting);
      o.metrics.waitingRoomPasses.set(outstanding);
    }
    return admitted;
  }

  // a tick every tickMs; after a failure the pause doubles from 2 x tickMs up to 5 s (as before the shared loop)
  const loop = createPollLoop({
    pass: tick,
    busyMs: tickMs,
    idleMs: tickMs,
    errorMs: 2 * tickMs,
    maxErrorMs: 5_000,
    onError(err) {
      o.metrics?.workerErrors.inc({ worker: 'admission' });
      o.log.warn({ err: { message: (err as Error).message } }, 'admission tick failed; retrying');
    },
  });

  return {
    tick,
    start: () => loop.start(),
    async stop() {
      await loop.stop();
      for (const eventId of await o.engine.waitingRoom.events().catch(() => [] as EventId[])) {
        await o.engine.waitingRoom.lease(eventId, owner, leaseMs, 'drop').catch(() => {});
      }
    },
  };
}
