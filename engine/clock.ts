/**
 * The engine's clock. Scripts are given `script()`: a number (tests drive time with a fake clock) or "" — then the
 * script reads Redis's own clock (TIME), so every process shares one clock and a host whose clock is off can neither
 * prolong nor cut short a hold. `now()` is this process's time, for everything outside the scripts.
 */
export type Clock = { now(): number; script?(): number | '' };

export const systemClock: Clock = { now: () => Date.now(), script: () => '' };

/** The time to hand a script (see Clock). */
export const scriptNow = (c: Clock): number | '' => (c.script ? c.script() : c.now());

export type FakeClock = Clock & { set(ms: number): void; advance(ms: number): void };

export function fakeClock(start = Date.UTC(2030, 0, 1)): FakeClock {
  let t = start;
  return {
    now: () => t,
    script: () => t,
    set: (ms) => {
      t = ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}
