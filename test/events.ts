import type { Engine, EventInput } from '../engine/index.js';

/** A general-admission event (one tier) that is on sale at the fake clock's time. */
export function gaEvent(capacity: number, over: Partial<EventInput> = {}): EventInput {
  return {
    name: 'Test GA',
    category: 'music',
    venue: 'Test Hall',
    startsAt: '2031-06-01T20:00:00Z',
    salesOpenAt: '2029-01-01T00:00:00Z',
    maxTicketsPerUser: 8,
    tiers: [{ name: 'General', price: 4500, currency: 'EUR', capacity }],
    ...over,
  };
}

/** An assigned-seating event: one seated tier with the given sections, plus an optional GA tier. */
export function seatedEvent(sections: { id: string; rows: number; seatsPerRow: number }[], withGa = 0): EventInput {
  const capacity = sections.reduce((n, s) => n + s.rows * s.seatsPerRow, 0);
  return {
    ...gaEvent(1),
    name: 'Test Seated',
    tiers: [
      { name: 'Seats', price: 9000, currency: 'EUR', capacity, seating: { sections } },
      ...(withGa ? [{ name: 'Standing', price: 3000, currency: 'EUR', capacity: withGa }] : []),
    ],
  };
}

export async function createGaEvent(engine: Engine, capacity: number, over: Partial<EventInput> = {}) {
  return engine.createEvent(gaEvent(capacity, over));
}
