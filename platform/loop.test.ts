import { describe, expect, it } from 'vitest';
import { createPollLoop, type LoopTimers } from './loop.js';

/** Timers fired by hand: each pause the loop asks for is recorded; `nextPause()` resolves once the loop is pausing. */
function handTimers() {
  const pending = new Map<number, () => void>();
  const asked: number[] = [];
  let seen = 0;
  let waiting: (() => void) | undefined;
  let id = 0;
  const timers: LoopTimers = {
    setTimeout(fn, ms) {
      pending.set(++id, fn);
      asked.push(ms);
      waiting?.();
      return id;
    },
    clearTimeout: (h) => void pending.delete(h as number),
  };
  return {
    timers,
    asked,
    pending,
    /** The next pause the loop asks for (one already asked for and not yet returned counts). */
    async nextPause(): Promise<number> {
      while (asked.length <= seen) await new Promise<void>((r) => (waiting = r));
      return asked[seen++]!;
    },
    /** Ends every pending pause, as the clock would. */
    fire() {
      const fns = [...pending.values()];
      pending.clear();
      for (const fn of fns) fn();
    },
  };
}

/** A promise to resolve from outside. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('createPollLoop', () => {
  it('runs passes back to back while they do work, then pauses with a doubling idle pause up to its ceiling', async () => {
    const t = handTimers();
    const work = [3, 1, 2];
    let passes = 0;
    const loop = createPollLoop({ pass: async () => (passes++, work.shift() ?? 0), idleMs: 5, maxIdleMs: 40, errorMs: 100, timers: t.timers });
    loop.start();
    const pauses: number[] = [];
    for (let i = 0; i < 5; i++) {
      pauses.push(await t.nextPause());
      t.fire();
    }
    await t.nextPause();
    await loop.stop();
    // three passes with work and no pause between them, then idle passes: 5, 10, 20, 40, 40 (and a sixth pause asked)
    expect(pauses).toEqual([5, 10, 20, 40, 40]);
    expect(passes).toBe(3 + 6);
  });

  it('starts the idle series again after a pass that did work, and pauses busyMs after work', async () => {
    const t = handTimers();
    const work = [0, 0, 4, 0];
    const loop = createPollLoop({ pass: async () => work.shift() ?? 0, busyMs: 7, idleMs: 5, maxIdleMs: 100, errorMs: 100, timers: t.timers });
    loop.start();
    for (let i = 0; i < 4; i++) {
      await t.nextPause();
      t.fire();
    }
    await loop.stop();
    expect(t.asked.slice(0, 4)).toEqual([5, 10, 7, 5]);
  });

  it('reports each failed pass to onError with a doubling error pause, and starts the series again after a success', async () => {
    const t = handTimers();
    const outcomes: (Error | number)[] = [new Error('a'), new Error('b'), new Error('c'), 0, new Error('d')];
    const reported: [string, number][] = [];
    const loop = createPollLoop({
      pass: async () => {
        const o = outcomes.shift() ?? 0;
        if (o instanceof Error) throw o;
        return o;
      },
      idleMs: 5,
      errorMs: 100,
      maxErrorMs: 300,
      onError: (err, retryInMs) => reported.push([(err as Error).message, retryInMs]),
      timers: t.timers,
    });
    loop.start();
    for (let i = 0; i < 5; i++) {
      await t.nextPause();
      t.fire();
    }
    await loop.stop();
    expect(reported).toEqual([['a', 100], ['b', 200], ['c', 300], ['d', 100]]);
    expect(t.asked.slice(0, 5)).toEqual([100, 200, 300, 5, 100]);
  });

  it('goes on when onError itself throws', async () => {
    const t = handTimers();
    let passes = 0;
    const loop = createPollLoop({
      pass: async () => {
        passes++;
        throw new Error('down');
      },
      idleMs: 5,
      errorMs: 50,
      onError: () => {
        throw new Error('the hook failed too');
      },
      timers: t.timers,
    });
    loop.start();
    await t.nextPause();
    t.fire();
    await t.nextPause();
    await loop.stop();
    expect(passes).toBe(2);
  });

  it('wake() ends a pause at once', async () => {
    const t = handTimers();
    let passes = 0;
    const loop = createPollLoop({ pass: async () => void passes++, idleMs: 60_000, errorMs: 60_000, timers: t.timers });
    loop.start();
    await t.nextPause();
    expect(passes).toBe(1);
    loop.wake();
    await t.nextPause();
    await loop.stop();
    expect(passes).toBe(2);
    expect(t.pending.size).toBe(0);
  });

  it('wake() during a pass skips the pause after it', async () => {
    const t = handTimers();
    const gate = deferred();
    let passes = 0;
    const loop = createPollLoop({
      pass: async () => {
        if (++passes === 1) await gate.promise;
      },
      idleMs: 60_000,
      errorMs: 60_000,
      timers: t.timers,
    });
    loop.start();
    loop.wake();
    gate.resolve();
    await t.nextPause();
    await loop.stop();
    // the first pass was woken: the second ran without a pause, and only the second asked for one
    expect([passes, t.asked.length]).toEqual([2, 1]);
  });

  it('stop() waits for the pass in flight and runs no other', async () => {
    const t = handTimers();
    const gate = deferred();
    const started = deferred();
    let passes = 0;
    let finished = 0;
    const loop = createPollLoop({
      pass: async () => {
        passes++;
        started.resolve();
        await gate.promise;
        finished++;
      },
      idleMs: 5,
      errorMs: 5,
      timers: t.timers,
    });
    loop.start();
    await started.promise;
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    gate.resolve();
    await stopping;
    expect([passes, finished, t.asked.length]).toEqual([1, 1, 0]);
  });

  it('stop() during a pause ends it at once (no wait for the timer)', async () => {
    const t = handTimers();
    let passes = 0;
    const loop = createPollLoop({ pass: async () => void passes++, idleMs: 60_000, errorMs: 60_000, timers: t.timers });
    loop.start();
    await t.nextPause();
    await loop.stop();
    expect([passes, t.pending.size]).toEqual([1, 0]);
  });

  it('start() is a no-op while running, and the loop can be started again after stop()', async () => {
    const t = handTimers();
    let passes = 0;
    const loop = createPollLoop({ pass: async () => void passes++, idleMs: 10, errorMs: 10, timers: t.timers });
    loop.start();
    loop.start();
    await t.nextPause();
    expect(passes).toBe(1);
    await loop.stop();
    loop.start();
    await t.nextPause();
    await loop.stop();
    expect(passes).toBe(2);
  });
});
