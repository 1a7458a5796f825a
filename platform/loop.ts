/** The timer functions a loop pauses with (tests inject their own, to fire pauses by hand). */
export type LoopTimers = {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
};

/** Node's timers, unreferenced: a pausing loop never keeps a process alive on its own. */
const NODE_TIMERS: LoopTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export type PollLoopOptions = {
  /** One pass. A number above 0 says it did work; anything else (0, nothing) is an idle pass. */
  pass: () => Promise<number | void>;
  /** Pause after a pass that did work (default 0: the next pass at once). */
  busyMs?: number;
  /** Pause after an idle pass; doubled for each idle pass in a row, up to `maxIdleMs` (default: `idleMs`, no growth). */
  idleMs: number;
  maxIdleMs?: number;
  /** Pause after a failed pass; doubled for each failure in a row, up to `maxErrorMs` (default: `errorMs`). A pass
   *  that succeeds starts the series again. */
  errorMs: number;
  maxErrorMs?: number;
  /** Told of each failed pass and the pause before the next one (count it, log it). An error it throws is ignored. */
  onError?: (err: unknown, retryInMs: number) => void;
  timers?: LoopTimers;
};

export type PollLoop = {
  /** Starts the loop (a no-op while it runs). */
  start(): void;
  /** Runs the next pass now: ends the pause, or (during a pass) skips the pause after it. */
  wake(): void;
  /** Ends the loop: ends the pause at once and resolves when the pass in flight (if any) has finished. */
  stop(): Promise<void>;
};

/** `start`, doubled `n` times, at most `max` (the exponent is capped: 2^n stays finite however long the series). */
const grown = (start: number, max: number, n: number) => Math.min(start * 2 ** Math.min(n, 30), max);

/**
 * One poll loop for the workers that poll (reconcile; persist and admission to follow): runs `pass` again and again
 * until stopped, pausing between passes: `busyMs` after work, a growing idle pause after nothing, a growing error
 * pause after a failure (reported to `onError`, never thrown: the loop goes on).
 */
export function createPollLoop(o: PollLoopOptions): PollLoop {
  const timers = o.timers ?? NODE_TIMERS;
  const busyMs = o.busyMs ?? 0;
  const maxIdleMs = o.maxIdleMs ?? o.idleMs;
  const maxErrorMs = o.maxErrorMs ?? o.errorMs;
  let running = false;
  /** Bumped by each start(): a loop stopped and started again before its last pass ended leaves after that pass. */
  let generation = 0;
  let loop: Promise<void> | undefined;
  /** wake() was called since the current pass began: no pause after it. */
  let woken = false;
  let endPause: (() => void) | undefined;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (ms <= 0) return resolve();
      const end = () => {
        timers.clearTimeout(handle);
        endPause = undefined;
        resolve();
      };
      const handle = timers.setTimeout(end, ms);
      endPause = end;
    });

  async function run(gen: number) {
    let idle = 0;
    let failed = 0;
    while (running && gen === generation) {
      woken = false;
      let wait: number;
      try {
        const done = await o.pass();
        failed = 0;
        if (typeof done === 'number' && done > 0) {
          idle = 0;
          wait = busyMs;
        } else {
          wait = grown(o.idleMs, maxIdleMs, idle++);
        }
      } catch (err) {
        wait = grown(o.errorMs, maxErrorMs, failed++);
        try {
          o.onError?.(err, wait);
        } catch {
          // a failing hook must not end the loop
        }
      }
      if (running && gen === generation && !woken) await pause(wait);
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run(++generation);
    },
    wake() {
      if (!running) return;
      woken = true;
      endPause?.();
    },
    async stop() {
      running = false;
      endPause?.();
      await loop;
    },
  };
}
