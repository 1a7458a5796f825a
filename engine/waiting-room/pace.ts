/**
 * The pace of admission (issue 12): how many tickets may be in play at once (those the unused passes may take plus
 * those held) so that a buyer admitted now still pays well inside the hold's lifetime, however fast the backend is
 * at this moment.
 *
 * By Little's law the time a ticket spends in play is (tickets in play) / (tickets sold per second). Keeping
 *   tickets in play <= sold per second x budget x hold lifetime
 * keeps that time at most `budget` of the hold's lifetime. Admitting more than that only moves the line from the
 * waiting room, where it costs nothing, into the shop: payments queue behind each other, holds expire while their
 * buyers wait for an answer, their seats go back and are sold again (the full-size demo of 2026-12-04: 26,653 of
 * 46,756 holds expired). The rate is measured from the event's own sold counter over the last `windowMs`; until
 * there is a measure (the opening), and whenever it is lower, the cap is `floor`.
 *
 * One pace per event in the process that holds the event's admission lease; a new holder measures afresh (it starts
 * at the floor, which admits less for a few seconds and never oversells: the stock limit in admitNext still applies).
 */
export type PaceOptions = {
  /** The hold lifetime (HOLD_TTL_MS). */
  holdTtlMs: number;
  /** The share of the hold lifetime that a ticket may spend in play on average (ADMISSION_HOLD_BUDGET, 0 < budget <= 1). */
  budget: number;
  /** How far back the sold rate is measured. */
  windowMs: number;
};

export type PaceReading = { cap: number; soldPerSecond: number | null };

export function createPace(o: PaceOptions) {
  if (!(o.budget > 0 && o.budget <= 1)) throw new RangeError(`budget must be in (0, 1], got ${o.budget}`);
  const samples: { at: number; sold: number }[] = [];
  return {
    /** The cap for this tick, from the event's sold total now; `floor` is the least it ever is. */
    read(now: number, sold: number, floor: number): PaceReading {
      samples.push({ at: now, sold });
      // keep the newest sample that is at least windowMs old as the reference, and everything after it
      while (samples.length > 2 && now - samples[1]!.at >= o.windowMs) samples.shift();
      const ref = samples[0]!;
      const spanMs = now - ref.at;
      if (spanMs < Math.min(3_000, o.windowMs)) return { cap: floor, soldPerSecond: null };
      const soldPerSecond = Math.max(0, sold - ref.sold) / (spanMs / 1000);
      return { cap: Math.max(floor, Math.ceil((soldPerSecond * o.budget * o.holdTtlMs) / 1000)), soldPerSecond };
    },
  };
}
export type Pace = ReturnType<typeof createPace>;
