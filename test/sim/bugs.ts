import { eventKeys } from '../../engine/keys.js';
import type { OutboxEntry } from '../../engine/outbox/outbox.js';
import { note, type Sim } from './context.js';

/**
 * The deliberate bugs (SimOptions.bug, test/sim/options.ts), planted in the system under test to prove the simulation
 * catches them. plantBug runs once after the world setup; its beforeStep runs before every step. lossy-persist lives
 * in the persist worker (test/sim/workers.ts calls loseARelease).
 */
export function plantBug(sim: Sim): { beforeStep(step: number): Promise<void> } {
  const { o, setup, redis, ns, engine } = sim;
  const tamperAt = o.bug === 'tamper-counter' ? setup.int(Math.floor(o.steps / 4), Math.max(Math.floor(o.steps / 4), Math.floor((3 * o.steps) / 4))) : -1;
  if (o.bug === 'double-release') {
    const release = engine.holds.release.bind(engine.holds);
    engine.holds.release = async (eventId, bookingId, by) => {
      const r = await release(eventId, bookingId, by);
      await redis.hincrby(eventKeys(ns, eventId).inv, `free:${r.tierId}`, r.ticketCount);
      return r;
    };
  }
  return {
    async beforeStep(step) {
      if (step !== tamperAt) return;
      await redis.hincrby(eventKeys(ns, sim.sc.open.id).inv, `held:${sim.sc.gaTier}`, 1);
      note(sim, '(bug) a stray HINCRBY held +1 on the standing tier');
    },
  };
}

/** lossy-persist: loses the first release of the batch (an expiry or a cancel): Postgres keeps holding what Redis freed. */
export function loseARelease(entries: OutboxEntry[]): OutboxEntry[] {
  const lost = entries.findIndex((e) => e.type === 'ReservationExpired' || e.type === 'BookingCancelled');
  return lost >= 0 ? entries.filter((_, i) => i !== lost) : entries;
}
