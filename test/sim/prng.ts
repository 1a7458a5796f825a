/**
 * The simulation's only source of randomness: mulberry32, a 32-bit PRNG that is small, fast and gives the same
 * sequence for the same seed on every machine. Each concern (which operation runs, which faults strike) draws from
 * its own stream derived from the seed, so adding a fault kind does not reshuffle the operations of a seed.
 */
export type Rng = {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(xs: readonly T[]): T;
  /** Picks by weight: [[value, weight], ...]. */
  weighted<T>(table: readonly (readonly [T, number])[]): T;
  /** k distinct items of xs (k clamped to xs.length), in drawn order. */
  sample<T>(xs: readonly T[], k: number): T[];
};

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Rng = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: (xs) => {
      if (xs.length === 0) throw new Error('pick from an empty list');
      return xs[Math.floor(next() * xs.length)]!;
    },
    weighted: (table) => {
      const total = table.reduce((s, [, w]) => s + w, 0);
      let r = next() * total;
      for (const [v, w] of table) {
        if (r < w) return v;
        r -= w;
      }
      return table[table.length - 1]![0];
    },
    sample: (xs, k) => {
      const pool = [...xs];
      const out = [];
      for (let i = 0; i < k && pool.length > 0; i++) out.push(pool.splice(Math.floor(next() * pool.length), 1)[0]!);
      return out;
    },
  };
  return rng;
}

/** A stream of its own for one concern of one seed (golden-ratio salt, then mixed). */
export const streamOf = (seed: number, salt: number): Rng => mulberry32((seed ^ Math.imul(salt + 1, 0x9e3779b9)) >>> 0);
